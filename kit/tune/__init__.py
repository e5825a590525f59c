"""Tuning on out-of-fold predictions: per-class decision thresholds / biases for accuracy or any F-beta
(`kit.tune.thresholds`, exact sweeps in `kit.tune.fbeta` and `kit.tune.biases`); `python -m kit.tune hparams`
dispatches to the Optuna hyperparameter search of `kit.tune.hparams`. `main` is the `python -m kit.tune` CLI."""
from kit.tune.cli import main

__all__ = ["main"]
