"""python -m kit.tune hparams --model efficientnet_b0 --trials 30 : Optuna search of training hyperparameters.

The objective is suggest -> train through kit.cv's own code (reporting the validation metric each epoch so the
pruner can stop bad trials) -> return the metric of the held-out predictions of the folds used. The study
lives in a storage (journal:tune/<study>.log by default, or a database URL) and resumes when rerun. The kit's
defaults are the first trial, so the best trial is never worse than the default. Any kit.cv flag typed here
is fixed (not searched), e.g. `--epochs 10 --img-size 96`.

Several workers can share one study: start the same command several times (on this machine, or on machines
sharing the journal file's disk or a PostgreSQL server), or pass `--workers K`. `--trials` counts the study's
trials, not each worker's. A worker that dies mid-trial stops beating; after `--grace-period` another worker
fails its trial and enqueues it again (`--max-retry`).
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
from dataclasses import asdict, replace
from pathlib import Path

import optuna
import pandas as pd

from kit import metrics
from kit.config import TrainConfig, add_config_flags, resolve_config
from kit.runs import ID, read_json, write_json
from kit.tune.studies import (Heartbeat, check_storage_spec, counted_trials, create_or_load, default_storage,
                         first_trial_value, open_storage, retried_numbers, retry_stale_trial, run_worker,
                         spawn_workers)

SEARCHED = ("lr", "weight_decay", "batch_size", "epochs", "img_size", "drop_rate", "drop_path_rate", "aug",
            "label_smoothing", "balance", "balance_target", "opt")


def family(model: str) -> str:
    name = model.split("/")[-1].lower()
    for fam in ("vit", "deit", "swin", "convnext", "efficientnet", "resnet", "regnet", "mobilenet"):
        if fam in name:
            return "transformer" if fam in ("vit", "deit", "swin") else fam
    return "other"


def float_param(trial: optuna.Trial, name: str, low: float, high: float, base: float | None,
                log: bool = False) -> float | None:
    """A float whose range always holds the base value; a base of None (the library default) becomes a
    yes/no choice first, so the default trial really is the default."""
    if base is None and not trial.suggest_categorical(f"{name}_set", [False, True]):
        return None
    if base is not None:
        low, high = min(low, base), max(high, base)
    return trial.suggest_float(name, low, high, log=log)


def suggest(trial: optuna.Trial, base: TrainConfig, fixed: set[str]) -> dict:
    """Sample the searched keys; ranges follow the model family (transformers want smaller lr, more drop-path).
    Returns the config overrides of this trial."""
    attention = family(base.model) in ("transformer", "convnext")
    space = {
        "opt": lambda: trial.suggest_categorical("opt", ["adamw", "lion"]),
        "weight_decay": lambda: float_param(trial, "weight_decay", 1e-4, 0.3, base.weight_decay, log=True),
        "batch_size": lambda: trial.suggest_categorical("batch_size", sorted({16, 32, 64, base.batch_size})),
        "epochs": lambda: trial.suggest_int("epochs", max(2, base.epochs // 2), base.epochs * 2),
        "img_size": lambda: trial.suggest_categorical(
            "img_size", sorted({max(32, base.img_size - 32), base.img_size, base.img_size + 32})),
        "drop_rate": lambda: float_param(trial, "drop_rate", 0.0, 0.5, base.drop_rate),
        "drop_path_rate": lambda: float_param(trial, "drop_path_rate", 0.0, 0.4 if attention else 0.2,
                                              base.drop_path_rate),
        "aug": lambda: trial.suggest_categorical("aug", ["light", "medium", "strong"]),
        "label_smoothing": lambda: float_param(trial, "label_smoothing", 0.0, 0.2, base.label_smoothing),
        "balance": lambda: trial.suggest_categorical("balance", ["none", "class-weight", "sampler", "selective"]),
    }
    params = {k: make() for k, make in space.items() if k not in fixed}
    opt = params.get("opt", base.opt)
    if "lr" not in fixed:  # Lion needs a ~3-10x smaller step than AdamW
        low, high = (1e-5, 1e-3) if opt == "lion" else ((5e-5, 3e-3) if attention else (1e-4, 1e-2))
        if opt == base.opt:  # the range holds the default, so trial 0 can be exactly the default
            low, high = min(low, base.lr), max(high, base.lr)
        params["lr"] = trial.suggest_float(f"lr_{opt}", low, high, log=True)
    if "balance_target" not in fixed and params.get("balance", base.balance) == "selective":
        params["balance_target"] = trial.suggest_categorical(
            "balance_target", sorted({"uniform", "train", "0.5", base.balance_target}))
    return params


def default_trial(base: TrainConfig, fixed: set[str]) -> dict:
    """The kit's defaults in the sampler's parameter names, enqueued as trial 0."""
    values = {k: getattr(base, k) for k in ("opt", "weight_decay", "batch_size", "epochs", "img_size", "aug",
                                            "label_smoothing", "balance") if k not in fixed}
    for name in ("drop_rate", "drop_path_rate"):
        if name not in fixed:
            values.update({f"{name}_set": False} if getattr(base, name) is None else {name: getattr(base, name)})
    if "lr" not in fixed:
        values[f"lr_{base.opt}"] = base.lr
    if "balance_target" not in fixed and base.balance == "selective":
        values["balance_target"] = base.balance_target
    return values


def heldout_score(run_dir: Path, folds_used: list[int], folds_file: str, classes: list[str], task: str,
                  metric: str) -> float:
    """The metric on the concatenated held-out predictions of the folds the trial trained."""
    oof = pd.concat([pd.read_csv(run_dir / f"fold{k}" / "oof.csv", dtype={ID: str}) for k in folds_used])
    truth = pd.read_csv(folds_file, dtype={ID: str}).set_index(ID).loc[oof[ID]]
    return metrics.score(metric, truth[classes].to_numpy(), oof[classes].to_numpy(), task)


def objective(trial: optuna.Trial, base: TrainConfig, fixed: set[str], folds_used: list[int], trials_dir: Path,
              metric: str) -> float:
    from kit.crossval import run_cv  # torch is imported only when a trial trains

    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")   # who to blame, who to kill
    overrides = suggest(trial, base, fixed)
    trial.set_user_attr("config", overrides)
    cfg = replace(base, **overrides, name=trial_name(trial.number), oof_dir=str(trials_dir))

    def report(fold: int, epoch: int, score: float) -> None:
        # one step per epoch of the whole trial, so trials line up step for step for the pruner
        trial.report(score, step=folds_used.index(fold) * cfg.epochs + epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    run_dir = trials_dir / cfg.run_name
    try:
        run_cv(cfg, folds_to_run=folds_used, overwrite=True, quiet=True, on_epoch=report, log=lambda *a: None)
        config = read_json(run_dir / "config.json")
        return heldout_score(run_dir, folds_used, config["folds_file"], list(config["classes"]),
                             config["task"], metric)
    finally:
        for ckpt in run_dir.glob("fold*/*.pt"):
            ckpt.unlink()  # checkpoints of a trial are not worth their disk; predictions are kept


def trial_name(number: int) -> str:
    """The trial's run folder under tune/<study>/: a retried trial has a new number, so a new folder."""
    return f"trial-{number}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kit.tune hparams", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30, help="trials of the study, all workers together")
    parser.add_argument("--timeout", type=float, default=None, help="seconds for this call")
    parser.add_argument("--folds-to-use", type=int, nargs="+", default=[0], help="folds each trial trains")
    parser.add_argument("--study", default=None, help="study name (default: <model>)")
    parser.add_argument("--storage", default=None,
                        help="journal:PATH or a database URL (sqlite:///..., postgresql://...); default "
                             "journal:<tune-dir>/<study>.log, or <tune-dir>/<study>.db if that study exists")
    parser.add_argument("--workers", type=int, default=1, help="worker processes to start on this machine")
    parser.add_argument("--heartbeat", type=float, default=60.0,
                        help="seconds between heartbeats of a running trial (0: none, a dead worker's trial "
                             "then stays RUNNING)")
    parser.add_argument("--grace-period", type=float, default=None,
                        help="seconds without a heartbeat before a trial is failed and retried "
                             "(default: 2 x --heartbeat)")
    parser.add_argument("--max-retry", type=int, default=2, help="retries of a trial whose worker died")
    parser.add_argument("--tune-dir", default="tune")
    parser.add_argument("--pruner", choices=["median", "halving", "none"], default="median")
    parser.add_argument("--config", help="base config file; flags override it")
    add_config_flags(parser)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        base = resolve_config(args, args.config)
        study_name = args.study or base.run_name
        tune_dir = Path(args.tune_dir)
        storage_spec = args.storage or default_storage(tune_dir, study_name)
        check_storage_spec(storage_spec)
        check_counts(args, base)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    fixed = {k for k in SEARCHED if getattr(args, k, None) is not None}
    # everything about the data is checked before the first trial trains
    from kit.crossval import load_data
    comp = load_data(base)
    metric = base.metric or metrics.DEFAULT_METRIC[comp.task]
    trials_dir = tune_dir / study_name
    grace = args.grace_period or 2 * args.heartbeat
    on_stale = retry_stale_trial(args.max_retry, lambda number: trials_dir / trial_name(number))
    heartbeat = Heartbeat(args.heartbeat or None, grace, on_stale)
    tune_dir.mkdir(parents=True, exist_ok=True)
    try:
        storage = open_storage(storage_spec, heartbeat)
    except Exception as err:  # a missing database driver, an unreachable server, a bad URL: all said the same way
        hint = ' (PostgreSQL: pip install "psycopg[binary]", URL postgresql+psycopg://...)' \
            if isinstance(err, ImportError) else ""
        print(f"error: cannot open --storage {storage_spec}: {err}{hint}", file=sys.stderr)
        return 2
    pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
              "halving": optuna.pruners.SuccessiveHalvingPruner(), "none": optuna.pruners.NopPruner()}[args.pruner]
    direction = "maximize" if metrics.GREATER_IS_BETTER[metric] else "minimize"
    study = create_or_load(storage, study_name, direction, base.seed, pruner, default_trial(base, fixed))
    if args.workers > 1:
        failed = spawn_workers("kit.tune.hparams", argv, args.workers)
        return failed or write_best(study, base, fixed, tune_dir, study_name, metric)
    run_worker(study, lambda t: objective(t, base, fixed, args.folds_to_use, trials_dir, metric),
               args.trials, args.timeout, catch=(RuntimeError,), poll=min(args.heartbeat, 5.0) or None)
    return write_best(study, base, fixed, tune_dir, study_name, metric)


def check_counts(args: argparse.Namespace, base: TrainConfig) -> None:
    bad_folds = [k for k in args.folds_to_use if not 0 <= k < base.folds]
    if bad_folds:
        raise ValueError(f"--folds-to-use {bad_folds} out of range 0..{base.folds - 1}")
    for flag, value, low in (("--trials", args.trials, 1), ("--workers", args.workers, 1),
                             ("--heartbeat", args.heartbeat, 0), ("--max-retry", args.max_retry, 0)):
        if value < low:
            raise ValueError(f"{flag} {value}: must be at least {low}")
    if args.grace_period is not None and args.grace_period <= args.heartbeat:
        raise ValueError(f"--grace-period {args.grace_period}: must be longer than --heartbeat {args.heartbeat}, "
                         "or every running trial would look dead")


def write_best(study: optuna.Study, base: TrainConfig, fixed: set[str], tune_dir: Path, study_name: str,
               metric: str) -> int:
    """tune/<study>.json: a full kit.cv config (`--config`); tune/<study>-summary.json: what was found.
    Every worker writes both when it stops (atomically); a view older than the one on disk is not written."""
    trials = study.get_trials()
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        print("no trial finished", file=sys.stderr)
        return 1
    n_counted = len(counted_trials(trials))
    summary_path = tune_dir / f"{study_name}-summary.json"
    if summary_path.exists() and read_json(summary_path).get("n_counted", 0) > n_counted:
        print(f"{summary_path} already holds a later view of study {study_name} (another worker's): kept")
        return 0
    best = study.best_trial
    params = best.user_attrs["config"]
    tuned = replace(base, **params, name=f"{base.run_name}-tuned")
    try:
        importances = optuna.importance.get_param_importances(study) if len(done) >= 3 else {}
    except (RuntimeError, ValueError):
        importances = {}
    default = first_trial_value(trials)
    count = {state.name.lower(): sum(t.state == state for t in trials) for state in optuna.trial.TrialState}
    summary = {"study": study_name, "metric": metric, "best_value": best.value, "best_trial": best.number,
               "default_value": default, "params": params, "fixed": sorted(fixed),
               "n_trials": len(trials), "n_counted": n_counted, "n_complete": count["complete"],
               "n_pruned": count["pruned"], "n_failed": count["fail"], "n_retried": len(retried_numbers(trials)),
               "importances": importances}
    write_json(asdict(tuned), tune_dir / f"{study_name}.json")
    write_json(summary, summary_path)
    print(f"study {study_name}: {summary['n_complete']} complete, {summary['n_pruned']} pruned, "
          f"{summary['n_failed']} failed ({summary['n_retried']} retried) of {summary['n_trials']} trials; "
          f"best {metric} {best.value:.4f} (trial {best.number}; default "
          f"{'n/a' if default is None else f'{default:.4f}'})")
    print(f"best params: {params}")
    if importances:
        print("importances: " + ", ".join(f"{k} {v:.2f}" for k, v in importances.items()))
    print(f"retrain on all folds: python -m kit.cv --config {tune_dir / study_name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
