"""Blend finished runs into a new run-like folder, a submission, and the leaderboard.

    python -m kit.blend                      # every finished run (kind "run") under oof/, default method
    python -m kit.blend --runs a b c --method stack --name blend1 [--oof-dir oof] [--tune-dir tune]
        [--submissions-dir submissions] [--thresholds FILE | --threshold-metric NAME] [--metric M]
        [--param KEY=VALUE ...] [--overwrite] [--seed 0]

Writes `oof/<name>/` (config.json with kind "blend", oof.csv, test.csv, weights.json, scores.json) so a
blend can be thresholded, scored and blended again like a run, then `submissions/<name>.csv`, then prints
and saves the leaderboard. Runs must share the folds file, task, classes and test ids.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from kit.blend.blenders import BLENDERS, DEFAULT_METHOD, make_blender
from kit.blend.recipe import write_recipe
from kit.leaderboard import write_leaderboard
from kit.metrics import GREATER_IS_BETTER, METRIC_FORMS, MULTICLASS, all_scores, metric_argument
from kit.runs import FOLD, ID, RunPredictions, finished_runs, load_run, read_json, write_csv, write_json
from kit.submission import choose_thresholds, write_submission
from kit.tune.thresholds import DEFAULT_THRESHOLD_METRIC, check_metric, tune_run_thresholds


class BlendInputError(ValueError):
    """Runs that cannot be blended together, or a blend that would overwrite something."""


def default_runs(oof_dir: str | Path) -> list[str]:
    """Names of every finished run (kind "run", not blends) under `oof_dir`."""
    names = [p.name for p in finished_runs(oof_dir) if read_json(p / "config.json").get("kind", "run") == "run"]
    if not names:
        raise BlendInputError(f"no finished runs under {oof_dir}")
    return names


def check_compatible(runs: list[RunPredictions]) -> None:
    """Same folds file (by sha256), task, classes and test ids for every run, else an error naming them."""
    def describe(key):
        return ", ".join(f"{r.name}: {key(r)}" for r in runs)

    def folds_of(r):
        return f"{r.config['folds_file']} (sha256 {str(r.config.get('folds_sha256'))[:12]})"
    if len({r.config.get("folds_sha256") for r in runs}) > 1:
        raise BlendInputError("runs were made on different folds files, so their OOF rows are not comparable: "
                              + describe(folds_of))
    if len({r.task for r in runs}) > 1:
        raise BlendInputError("runs have different tasks: " + describe(lambda r: r.task))
    if len({tuple(sorted(r.classes)) for r in runs}) > 1:
        raise BlendInputError("runs have different classes: " + describe(lambda r: r.classes))
    has_test = [r.test is not None for r in runs]
    if any(has_test) and not all(has_test):
        raise BlendInputError("only some runs have test.csv: " + describe(lambda r: r.test is not None))
    if all(has_test) and len({frozenset(r.test[ID]) for r in runs}) > 1:
        first = set(runs[0].test[ID])

        def difference(r):
            ids = set(r.test[ID])
            return f"{len(ids - first)} ids not in {runs[0].name}, {len(first - ids)} of its ids missing"
        raise BlendInputError("test ids differ between runs: " + describe(difference))


def blend_runs(runs: list[RunPredictions], blender) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Fit `blender` on the runs' OOF; return the blend's (oof, test) frames in the run file format."""
    check_compatible(runs)
    first, classes = runs[0], runs[0].classes
    blender.fit([r.oof[classes].to_numpy(np.float64) for r in runs], first.labels(), first.oof[FOLD].to_numpy())
    oof = first.oof[[ID, FOLD]].reset_index(drop=True)
    oof[classes] = blender.oof_
    if first.test is None:
        return oof, None
    test = first.test[[ID]].reset_index(drop=True)
    aligned = [r.test.set_index(ID).loc[test[ID], classes].to_numpy(np.float64) for r in runs]
    test[classes] = blender.predict(aligned)
    return oof, test


def weights_report(blender, run_names: list[str], classes: list[str], task: str) -> dict:
    """What the blender learned, JSON-able: weights per run, per-fold weights, stacker coefficients."""
    if hasattr(blender, "coef_"):  # a stacker: coefficients per class, per feature (a run's logit of a class)
        every = task == MULTICLASS or getattr(blender, "features", "class") == "all"
        features = [f"{r}:{c}" for r in run_names for c in classes] if every else run_names
        def named(coef):
            return {c: dict(zip(features, map(float, row))) for c, row in zip(classes, coef)}
        return {"coef": named(blender.coef_), "intercept": dict(zip(classes, map(float, blender.intercept_))),
                "fold_coef": {str(k): named(coef) for k, coef in blender.fold_weights_.items()}}
    def per_run(values):
        return dict(zip(run_names, map(float, values)))
    report = {"weights": per_run(blender.weights_),
              "fold_weights": {str(k): per_run(w) for k, w in blender.fold_weights_.items()}}
    for attr in ("counts_", "single_scores_", "score_"):  # hill climbing: what was selected and why
        if hasattr(blender, attr):
            value = getattr(blender, attr)
            report[attr.rstrip("_")] = per_run(value) if np.ndim(value) else float(value)
    return report


def blend_scores(oof: pd.DataFrame, runs: list[RunPredictions]) -> dict:
    """Overall and per-fold OOF metrics of the blend (keys as kit.cv writes them) and of each input run."""
    first, classes = runs[0], runs[0].classes
    Y, P, folds = first.labels(), oof[classes].to_numpy(np.float64), oof[FOLD].to_numpy()
    return {"task": first.task, "overall": all_scores(Y, P, first.task),
            "folds": {str(k): all_scores(Y[folds == k], P[folds == k], first.task)
                      for k in np.unique(folds)},
            "runs": {r.name: all_scores(Y, r.oof_matrix(), r.task) for r in runs}}


def write_blend(out_dir: Path, runs: list[RunPredictions], method: str, blender,
                oof: pd.DataFrame, test: pd.DataFrame | None) -> None:
    first = runs[0]
    names = [r.name for r in runs]
    config = {"kind": "blend", "name": out_dir.name, "task": first.task, "classes": first.classes,
              "data": first.config["data"], "folds_file": first.config["folds_file"],
              "folds_sha256": first.config.get("folds_sha256"), "runs": names, "method": method,
              "params": blender.get_params(deep=False)}
    write_csv(oof, out_dir / "oof.csv")
    if test is not None:
        write_csv(test, out_dir / "test.csv")
    elif (out_dir / "test.csv").exists():
        (out_dir / "test.csv").unlink()  # a stale test.csv from an overwritten blend would not match
    write_json(weights_report(blender, names, first.classes, first.task), out_dir / "weights.json")
    recipe, arrays = blender.recipe_()  # what kit.predict applies to fresh member predictions
    write_recipe(out_dir, {**recipe, "method": method, "runs": names, "classes": first.classes}, arrays)
    write_json(blend_scores(oof, runs), out_dir / "scores.json")
    write_json(config, out_dir / "config.json")  # last: the folder counts as finished once it exists


BLEND_FILES = {"config.json", "oof.csv", "test.csv", "weights.json", "scores.json", "recipe.json", "recipe.npz"}


def check_destination(out_dir: Path, run_names: list[str], submission: Path, overwrite: bool) -> None:
    """Refuse before any work: overwriting an input, a training run, or anything without --overwrite."""
    if out_dir.name in run_names:
        raise BlendInputError(f"blend name {out_dir.name!r} is one of its input runs; choose another --name")
    if out_dir.exists():
        config = out_dir / "config.json"
        kind = read_json(config).get("kind") if config.exists() else None
        foreign = sorted(p.name for p in out_dir.iterdir()
                         if p.name not in BLEND_FILES and not p.name.startswith("."))
        if kind not in (None, "blend") or foreign:
            raise BlendInputError(f"{out_dir} holds something other than a blend (kind {kind!r}, "
                                  f"files {foreign}); choose another --name")
    for path in (out_dir, submission):
        if path.exists() and not overwrite:
            raise BlendInputError(f"{path} exists; pass --overwrite to replace it")


def parse_params(items: list[str]) -> dict:
    """KEY=VALUE strings -> dict; values parsed as JSON when possible (numbers, true/false, null)."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BlendInputError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def print_weights(report: dict) -> None:
    if "weights" in report:
        print("weights:\n" + pd.Series(report["weights"]).to_string(float_format=lambda v: f"{v:.4f}"))
    if "coef" in report:
        print("stacker coefficients (rows: classes):\n"
              + pd.DataFrame(report["coef"]).T.to_string(float_format=lambda v: f"{v:.3f}"))


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m kit.blend", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", default=None,
                        help="run/blend names under --oof-dir (default: every run, no blends)")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=sorted(BLENDERS))
    parser.add_argument("--name", default=None, help="output name (default: blend-<method>)")
    parser.add_argument("--oof-dir", default="oof")
    parser.add_argument("--tune-dir", default="tune")
    parser.add_argument("--submissions-dir", default="submissions")
    parser.add_argument("--thresholds", default=None,
                        help="thresholds file for the submission (default: fit on the blend's own honest OOF "
                             "and write tune/<name>/thresholds.json)")
    parser.add_argument("--no-thresholds", action="store_true",
                        help="submit at 0.5 / argmax instead of tuned thresholds")
    parser.add_argument("--threshold-metric", default=None, type=metric_argument, metavar="NAME",
                        help=f"metric the blend's own thresholds maximise (default {DEFAULT_THRESHOLD_METRIC}): "
                             f"{METRIC_FORMS}")
    parser.add_argument("--metric", default=None, choices=sorted(GREATER_IS_BETTER),
                        help="hill-climbing metric and leaderboard sort key (default: the task's)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="blender parameter")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        return run_blend(args)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from e


def run_blend(args: argparse.Namespace) -> Path:
    oof_dir = Path(args.oof_dir)
    names = args.runs or default_runs(oof_dir)
    name = args.name or f"blend-{args.method}"
    out_dir, submission = oof_dir / name, Path(args.submissions_dir) / f"{name}.csv"
    check_destination(out_dir, names, submission, args.overwrite)
    if args.thresholds is not None and not Path(args.thresholds).exists():
        raise BlendInputError(f"thresholds file {args.thresholds} does not exist")
    if args.threshold_metric is not None and (args.thresholds is not None or args.no_thresholds):
        raise BlendInputError("--threshold-metric applies to thresholds fitted on the blend; it cannot be "
                              "combined with --thresholds FILE or --no-thresholds")
    threshold_metric = args.threshold_metric or DEFAULT_THRESHOLD_METRIC
    params = parse_params(args.param)
    accepted = BLENDERS[args.method]._get_param_names()
    for key, value in (("metric", args.metric), ("seed", args.seed)):
        if key in accepted and key not in params:
            params[key] = value
    runs = [load_run(oof_dir / n) for n in names]
    check_metric(threshold_metric, runs[0].task)   # e.g. micro_f1 of a multi-class blend: refuse before fitting
    blender = make_blender(args.method, runs[0].task, **params)
    print(f"blending {len(runs)} run(s) with {args.method}: {', '.join(names)}")
    oof, test = blend_runs(runs, blender)
    write_blend(out_dir, runs, args.method, blender, oof, test)
    print_weights(read_json(out_dir / "weights.json"))
    overall = read_json(out_dir / "scores.json")["overall"]
    print(f"wrote {out_dir}  honest OOF: " + ", ".join(f"{k}={v:.4f}" for k, v in overall.items()))
    if test is not None:
        blend = load_run(out_dir)
        if args.thresholds is None and not args.no_thresholds:
            # a new blend has no thresholds yet: fit them now on its honest OOF (as kit.tune would)
            tune_run_thresholds(out_dir, args.tune_dir, threshold_metric)
        thresholds = None if args.no_thresholds else choose_thresholds(blend, args.tune_dir, args.thresholds)
        print(f"wrote {write_submission(blend, submission, thresholds, args.overwrite)}")
    write_leaderboard(oof_dir, args.tune_dir, args.submissions_dir, args.metric)
    return out_dir


if __name__ == "__main__":
    main()
