"""Models: the registry (registry.py), word alignment (align.py), predictors (predictor.py,
encoder.py) and training recipes (training.py). Import the submodules directly: this package
stays light so that `nerbench models list` does not load torch."""
