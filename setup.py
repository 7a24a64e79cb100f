"""Packaging for tb-metal: a TensorBoard plugin, Keras callback and CLI for per-layer profiles."""

from setuptools import find_packages, setup

setup(
    name="tb-metal",
    version="0.1.0",
    description=(
        "Per-Keras-layer GPU/CPU time and CPU-fallback finder for TensorFlow profiles, "
        "Metal first: a TensorBoard tab, a training callback and a CLI."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tb_metal_plugin", "tb_metal_plugin.*"]),
    package_data={"tb_metal_plugin": ["proto/*.proto", "data/*.json", "static/*"]},
    install_requires=[
        # Viewing traces needs only these: never TensorFlow.
        "protobuf>=4.21",
        "click>=8.0",
        "tensorboard>=2.12",
        "werkzeug>=2.0",
    ],
    extras_require={
        # Recording profiles (the training callback) needs TensorFlow. On Apple
        # silicon that is tensorflow(-macos) plus Apple's Metal plugin.
        "record": [
            "tensorflow-cpu>=2.15; sys_platform == 'linux'",
            "tensorflow>=2.15; sys_platform == 'darwin'",
            "tensorflow-metal; sys_platform == 'darwin' and platform_machine == 'arm64'",
            "keras>=3.0",
            "tensorboard-plugin-profile>=2.15",
        ],
        "profile-tab": ["tensorboard-plugin-profile>=2.15"],
        "test": [
            "pytest>=7",
            "ruff>=0.5",
            "tensorflow-cpu>=2.15; sys_platform == 'linux'",
            "tensorflow>=2.15; sys_platform == 'darwin'",
            "keras>=3.0",
            "tensorboard-plugin-profile>=2.15",
            "playwright>=1.40",
        ],
    },
    entry_points={
        "console_scripts": ["tb-metal=tb_metal_plugin.cli:main"],
        "tensorboard_plugins": ["metal=tb_metal_plugin.plugin:MetalPlugin"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: TensorFlow",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
