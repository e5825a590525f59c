"""Exact per-class threshold search vs Optuna TPE on the same synthetic multi-label OOF.

    .venv/bin/python bench/thresholds.py [--rows 100000] [--classes 28] [--trials 200] [--seed 0]

Both methods maximise macro F1 over one threshold per class. A second independent draw from the same
generator ("fresh") shows how each set of thresholds generalises. Timings are wall-clock, side by side in
one process.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.metrics import MULTILABEL  # noqa: E402
from kit.thresholds import fit_thresholds, optuna_thresholds, threshold_metric  # noqa: E402


def class_profile(n_classes: int, seed: int) -> dict[str, np.ndarray]:
    """Per-class prevalence (log-uniform 0.1%..30%: several rare classes), separation and calibration."""
    rng = np.random.default_rng(seed)
    return {"prevalence": np.exp(rng.uniform(np.log(0.001), np.log(0.3), n_classes)),
            "separation": rng.uniform(1.0, 4.0, n_classes),     # positives' logit shift over negatives'
            "offset": rng.normal(-1.5, 1.0, n_classes)}          # miscalibration: 0.5 is rarely the best cut


def synthetic_oof(n_rows: int, profile: dict[str, np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Y = (rng.random((n_rows, len(profile["prevalence"]))) < profile["prevalence"]).astype(np.float64)
    logits = profile["offset"] + profile["separation"] * Y + rng.normal(0.0, 1.0, Y.shape)
    P = 1 / (1 + np.exp(-logits))
    scale = 10.0 ** (6 - np.floor(np.log10(P)))                 # 7 significant digits, as oof.csv stores them
    return Y, np.round(P * scale) / scale


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=28)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    profile = class_profile(args.classes, args.seed)
    Y, P = synthetic_oof(args.rows, profile, args.seed + 1)
    Y_fresh, P_fresh = synthetic_oof(args.rows, profile, args.seed + 2)
    positives = Y.sum(axis=0)
    print(f"synthetic multi-label OOF: {args.rows} rows x {args.classes} classes, positives per class "
          f"min {int(positives.min())} / median {int(np.median(positives))} / max {int(positives.max())}")

    exact, t_exact = timed(lambda: fit_thresholds(Y, P, MULTILABEL, "macro_f1"))
    tpe, t_tpe = timed(lambda: optuna_thresholds(Y, P, "macro_f1", seed=args.seed, n_trials=args.trials))
    rows = [("default 0.5", np.full(args.classes, 0.5), 0.0),
            ("exact per-class search", exact, t_exact),
            (f"Optuna TPE, {args.trials} trials", tpe, t_tpe)]

    def macro(Yx, Px, values):
        return threshold_metric("macro_f1", Yx, Px, MULTILABEL, values)

    print("\n| method | seconds | macro F1 (fitted rows) | macro F1 (fresh draw) |\n|---|---:|---:|---:|")
    scores = {}
    for name, values, seconds in rows:
        scores[name] = (macro(Y, P, values), macro(Y_fresh, P_fresh, values))
        print(f"| {name} | {seconds:.2f} | {scores[name][0]:.4f} | {scores[name][1]:.4f} |")
    (e_fit, e_fresh), (o_fit, o_fresh) = scores[rows[1][0]], scores[rows[2][0]]
    print(f"\ntime ratio Optuna / exact: {t_tpe / t_exact:.0f}x")
    print(f"macro F1 exact - Optuna: {e_fit - o_fit:+.4f} on the fitted rows, "
          f"{e_fresh - o_fresh:+.4f} on a fresh draw")


if __name__ == "__main__":
    main()
