"""Exact threshold search vs Optuna TPE on the same synthetic multi-label OOF, for several F-beta metrics.

    .venv/bin/python bench/thresholds.py [--rows 100000] [--classes 28] [--trials 200] [--seed 0]
                                         [--metrics macro_f1 micro_f1 samples_f1 samples_f2]

macro F-beta: the exact per-class sweep vs plain TPE over one threshold per class. micro / samples F-beta:
the kit's exact coordinate ascent from the per-class solution vs TPE started from that same solution (the
kit's method before: the per-class solution enqueued as trial 0, kept unless a trial beats it). A second
independent draw from the same generator ("fresh") shows how each set of thresholds generalises. Timings
are wall-clock, side by side in one process; methods that start from the per-class solution include its time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.metrics import MULTILABEL, decide, decision_metric, metric_name, parse_metric  # noqa: E402
from kit.tune.thresholds import fit_thresholds, threshold_metric  # noqa: E402


def optuna_thresholds(Y, P, metric: str, seed: int = 0, n_trials: int = 200,
                      initial: np.ndarray | None = None) -> np.ndarray:
    """Seeded TPE search over all C multi-label thresholds in [0, 1]; `initial` is tried first and kept
    unless a trial beats it strictly (what kit.tune did for micro / samples F1 before the exact ascent)."""
    import optuna

    n_classes = Y.shape[1]

    def objective(trial):
        values = np.array([trial.suggest_float(f"t{c:03d}", 0.0, 1.0) for c in range(n_classes)])
        return decision_metric(metric, Y, decide(P, MULTILABEL, values))

    optuna.logging.set_verbosity(optuna.logging.WARNING)   # one INFO line per trial is noise here
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    if initial is not None:
        study.enqueue_trial({f"t{c:03d}": float(np.clip(v, 0, 1)) for c, v in enumerate(initial)})
    study.optimize(objective, n_trials=n_trials)
    found = np.array([study.best_params[f"t{c:03d}"] for c in range(n_classes)])
    if initial is not None and study.best_value <= decision_metric(metric, Y, decide(P, MULTILABEL, initial)):
        return np.asarray(initial, dtype=np.float64)
    return found


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


def compare(metric: str, Y, P, trials: int, seed: int) -> list[tuple[str, np.ndarray, float]]:
    """(method, thresholds, seconds) rows for one metric: default, the kit's exact fit, TPE."""
    average, beta = parse_metric(metric)
    rows = [("default 0.5", np.full(Y.shape[1], 0.5), 0.0)]
    if average == "macro":
        exact, t_exact = timed(lambda: fit_thresholds(Y, P, MULTILABEL, metric))
        tpe, t_tpe = timed(lambda: optuna_thresholds(Y, P, metric, seed=seed, n_trials=trials))
        return rows + [("exact per-class search", exact, t_exact), (f"Optuna TPE, {trials} trials", tpe, t_tpe)]
    per_class_metric = metric_name(f"macro_f{beta}")
    start, t_start = timed(lambda: fit_thresholds(Y, P, MULTILABEL, per_class_metric))
    exact, t_exact = timed(lambda: fit_thresholds(Y, P, MULTILABEL, metric))
    tpe, t_tpe = timed(lambda: optuna_thresholds(Y, P, metric, seed=seed, n_trials=trials, initial=start))
    return rows + [(f"per-class start ({per_class_metric} thresholds)", start, t_start),
                   ("exact coordinate ascent", exact, t_exact),
                   (f"Optuna TPE, {trials} trials, from the per-class start", tpe, t_start + t_tpe)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=28)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metrics", nargs="+", default=["macro_f1", "micro_f1", "samples_f1", "samples_f2"])
    args = parser.parse_args(argv)

    profile = class_profile(args.classes, args.seed)
    Y, P = synthetic_oof(args.rows, profile, args.seed + 1)
    Y_fresh, P_fresh = synthetic_oof(args.rows, profile, args.seed + 2)
    positives = Y.sum(axis=0)
    print(f"synthetic multi-label OOF: {args.rows} rows x {args.classes} classes, positives per class "
          f"min {int(positives.min())} / median {int(np.median(positives))} / max {int(positives.max())}")
    print("\n| metric | method | seconds | metric (fitted rows) | metric (fresh draw) |\n|---|---|---:|---:|---:|")
    summary = []
    for metric in map(metric_name, args.metrics):
        scores = []
        for name, values, seconds in compare(metric, Y, P, args.trials, args.seed):
            fitted = threshold_metric(metric, Y, P, MULTILABEL, values)
            fresh = threshold_metric(metric, Y_fresh, P_fresh, MULTILABEL, values)
            scores.append((fitted, fresh, seconds))
            print(f"| {metric} | {name} | {seconds:.2f} | {fitted:.4f} | {fresh:.4f} |", flush=True)
        (e_fit, e_fresh, e_sec), (o_fit, o_fresh, o_sec) = scores[-2], scores[-1]
        summary.append(f"{metric}: exact - Optuna {e_fit - o_fit:+.4f} fitted, {e_fresh - o_fresh:+.4f} fresh; "
                       f"Optuna / exact time {o_sec / e_sec:.0f}x")
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
