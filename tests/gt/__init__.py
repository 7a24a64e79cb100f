"""Independent ground truth for op -> (layer, phase) attribution, and its corpus.

`python -m tests.gt record OUTDIR` records the corpus (traces + labels JSON per model;
`--set heldout` records the held-out models of models_c.py instead),
`python -m tests.gt score OUTDIR` scores tb_metal_plugin (whatever is on sys.path)
against it. Nothing here imports tb_metal_plugin except the scorer (its public API) and
the recorder's callback mode (`MetalProfileCallback`).
"""
