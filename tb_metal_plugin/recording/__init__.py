"""Helpers that run inside a training process (they need TensorFlow and Keras)."""
