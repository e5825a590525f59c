"""Cross-validation of one model: data -> folds -> one `train_fold` per fold -> the run folder.

Folds are trained independently (`folds_to_run`), possibly by several processes; the run's `oof.csv`,
`test.csv`, `summary.csv` and `scores.json` are assembled as soon as every fold has finished.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from kit import metrics
from kit.cache import cached_images
from kit.config import TrainConfig
from kit.data import EMBEDDED_DATA, Competition, load_competition
from kit.data.subsets import excluded_rows, with_groups_file
from kit.distributed import barrier, current, main_first
from kit.extra import check_folds, check_unchanged, describe, fold_extra, plan_extra
from kit.folds import folds_file_name, get_or_create_folds
from kit.losses import resolve_loss
from kit.model import create_model
from kit.runs import FOLD, ID, check_coverage, file_sha256, read_folds, read_json, write_csv, write_json
from kit.autotune import choose_channels_last
from kit.sampling import check_rare_batches
from kit.runtime import Runtime, resolve_runtime
from kit.train import FoldData, train_fold

# config keys that change speed, not results: processes sharing a run may differ in them
RUNTIME_KEYS = {"device", "amp", "channels_last", "num_workers", "eval_batch_size", "cache_dir"}


class RunError(RuntimeError):
    pass


def load_data(cfg: TrainConfig) -> Competition:
    comp = load_competition(cfg.data or EMBEDDED_DATA, id_col=cfg.id_col, label_col=cfg.label_col,
                            label_cols=cfg.label_cols, label_sep=cfg.label_sep, path_col=cfg.path_col,
                            group_col=cfg.group_col, task=cfg.task, image_dir=cfg.image_dir,
                            test_image_dir=cfg.test_image_dir, channels=cfg.channels)
    excluded_rows(comp, cfg.exclude_ids)  # a bad --exclude-ids file fails here, before any work
    return with_groups_file(comp, cfg.groups_file)


def cached_inputs(cfg: TrainConfig, comp: Competition, log=print) -> tuple[np.ndarray, np.ndarray | None]:
    """Train and test images decoded once into the cache: this is also where an undecodable file is found,
    so it runs before a run folder is claimed."""
    images = cached_images(comp.train_paths, cfg.img_size, cfg.cache_dir, cfg.input_channels, comp.train_ids,
                           where=str(comp.train_source), log=log)
    test_images = cached_images(comp.test_paths, cfg.img_size, cfg.cache_dir, cfg.input_channels, comp.test_ids,
                                where=str(comp.test_source), log=log) if comp.test_paths else None
    return images, test_images


def run_description(cfg: TrainConfig, comp: Competition, folds_path: Path) -> dict:
    return {"kind": "run", "name": cfg.run_name, "task": comp.task, "classes": comp.classes,
            "data": comp.describe(), "folds_file": str(folds_path), "folds_sha256": file_sha256(folds_path),
            "excluded_ids": comp.train_ids[excluded_rows(comp, cfg.exclude_ids)].tolist(), "train": asdict(cfg)}


def resolve_memory_format(cfg: TrainConfig, n_classes: int, runtime: Runtime, log=print) -> Runtime:
    """channels_last as given, else measured for this model, size and batch on this machine (cached)."""
    if runtime.channels_last is not None:
        return runtime
    def make():
        return create_model(cfg.model, n_classes, False, None, cfg.drop_rate, cfg.drop_path_rate,
                            in_chans=cfg.input_channels, log=lambda *a: None)
    return replace(runtime, channels_last=choose_channels_last(
        make, runtime.device, cfg.batch_size, cfg.img_size, cfg.input_channels, cfg.model, cfg.cache_dir, log))


def check_run_dir(run_dir: Path, cfg: TrainConfig, folds_path: Path, overwrite: bool) -> None:
    """Refuse to mix a run with a different config, or to redo a finished one, unless told to (no writes).
    The folds file is compared by name: it encodes the data's hash, K, the fold seed and the groups."""
    config_path = run_dir / "config.json"
    if overwrite or not config_path.exists():
        return
    old, new = read_json(config_path), asdict(cfg)
    differing = sorted(k for k in set(old.get("train", {})) | set(new)
                       if k not in RUNTIME_KEYS and old["train"].get(k) != new.get(k))
    if Path(old.get("folds_file", "")).name != folds_path.name:
        differing.append("folds_file")
    if differing:
        raise RunError(f"{run_dir} holds a run with another config (differs in {differing}); "
                       f"pick another --name or pass --overwrite")
    if (run_dir / "oof.csv").exists():
        raise RunError(f"{run_dir} is a finished run; pass --overwrite to train it again")


def claim_run_dir(run_dir: Path, description: dict, overwrite: bool) -> None:
    """Write the run's config.json. With `overwrite` an existing run is first set aside and deleted only
    once the new config is written: called after every check has passed, so a refused run costs nothing."""
    if run_dir.exists() and overwrite:
        old = run_dir.with_name(f".{run_dir.name}.replaced-{os.getpid()}")
        run_dir.rename(old)
        write_json(description, run_dir / "config.json")
        shutil.rmtree(old)
        return
    write_json(description, run_dir / "config.json")


def fold_is_done(run_dir: Path, fold: int) -> bool:
    return (run_dir / f"fold{fold}" / "oof.csv").exists()


def prepare_run(cfg: TrainConfig, todo: list[int], resume: bool, overwrite: bool, claim: bool = True, log=print):
    """Everything before training: validate, decode into the cache, write the folds file, claim the run.
    Returns (competition, images, test images, folds, runtime, run folder, extra-rows plan)."""
    # --- validate everything before any work: data, folds, loss, model and weights, run folder
    comp = load_data(cfg)
    run_dir = Path(cfg.oof_dir) / cfg.run_name
    bad = [k for k in todo if not 0 <= k < cfg.folds]
    if bad:
        raise RunError(f"--fold {bad} out of range: the run has folds 0..{cfg.folds - 1}")
    resolve_loss(cfg.loss, comp.task)  # a loss the task cannot use (asl on multi-class) fails now
    if cfg.batch_sampler == "rare":  # rare labels that cannot fit in a batch fail now, not in fold 0
        check_rare_batches(comp.Y, cfg.batch_size, cfg.rare_per_batch, f"{comp.root}: train labels")
    # an unknown model name or an unusable --weights file must fail here, not after --overwrite emptied the run
    create_model(cfg.model, len(comp.classes), cfg.pretrained, cfg.weights, cfg.drop_rate, cfg.drop_path_rate,
                 in_chans=cfg.input_channels, log=lambda *a, **k: None)
    interrupted = [k for k in todo if (run_dir / f"fold{k}" / "last.pt").exists() and not fold_is_done(run_dir, k)]
    if interrupted and not resume and not overwrite:
        raise RunError(f"{run_dir}: folds {interrupted} were interrupted; pass --resume to continue them "
                       f"or --overwrite to start the run again")
    folds_name = folds_file_name(comp, cfg.folds, cfg.fold_seed)  # hashes the labels and groups: once
    check_run_dir(run_dir, cfg, Path(cfg.folds_dir) / folds_name, overwrite)
    extra = plan_extra(cfg, comp, folds_name, log=log)  # kit/extra/
    # --- decode + resize once, shared by every fold (and every later run at this size); checks every image
    images, test_images = cached_inputs(cfg, comp, log=log)
    # --- only now write anything: the folds (once per data, K and seed), then the run's config
    folds_path = get_or_create_folds(comp, cfg.folds, cfg.fold_seed, Path(cfg.folds_dir))
    runtime = resolve_memory_format(cfg, len(comp.classes), resolve_runtime(cfg.device, cfg.amp, cfg.channels_last,
                                                                            cfg.num_workers), log)
    check_folds(extra, folds_path)  # pseudo-label source / teacher on this very folds file
    extra_description = describe(extra)
    if not overwrite:
        check_unchanged(run_dir, extra_description)
    if claim:
        description = run_description(cfg, comp, folds_path)
        claim_run_dir(run_dir, {**description, "extra": extra_description} if extra.active else description,
                      overwrite)
    return comp, images, test_images, read_folds(folds_path), runtime, run_dir, extra


def run_cv(cfg: TrainConfig, folds_to_run: list[int] | None = None, resume: bool = False,
           overwrite: bool = False, quiet: bool = False, on_epoch=None, log=print) -> dict | None:
    """Train the requested folds (default all) of `cfg`; returns the run's scores once every fold exists.

    `on_epoch(fold, epoch, score)` is forwarded to the training loop (Optuna pruning). Under torchrun, rank 0
    prepares and writes, every rank trains its share of each batch (kit.distributed)."""
    dist = current()
    todo = list(range(cfg.folds)) if folds_to_run is None else list(folds_to_run)
    comp, images, test_images, folds, runtime, run_dir, extra = main_first(dist, lambda: prepare_run(
        cfg, todo, resume, overwrite and dist.main, claim=dist.main, log=log))
    fold_of = folds.set_index(ID).loc[comp.train_ids, FOLD].to_numpy()
    trained_on = ~excluded_rows(comp, cfg.exclude_ids)  # excluded rows are still validated (kit.data.subsets)

    for k in todo:
        if fold_is_done(run_dir, k):
            log(f"fold {k}: already finished, skipped")
            continue
        data = FoldData(k, comp.task, images, comp.Y, np.flatnonzero((fold_of != k) & trained_on),
                        np.flatnonzero(fold_of == k), test_images)
        data.extra = fold_extra(extra, k, comp, data.train_rows, test_images, str(runtime.device), log=log)
        result = train_fold(cfg, data, runtime, run_dir / f"fold{k}", resume, quiet=quiet, log=log,
                            on_epoch=None if on_epoch is None else lambda e, s, k=k: on_epoch(k, e, s))
        if dist.main:
            write_fold_outputs(run_dir / f"fold{k}", k, comp, data.valid_rows, result)
            log(f"fold {k}: best {cfg.metric or metrics.DEFAULT_METRIC[comp.task]} {result.best_score:.4f} "
                f"at epoch {result.best_epoch}")
        barrier(dist)
    if not dist.main:
        return None
    if all(fold_is_done(run_dir, k) for k in range(cfg.folds)):
        return assemble_run(run_dir, cfg.folds, comp, folds, log=log)
    log(f"{run_dir}: folds {[k for k in range(cfg.folds) if not fold_is_done(run_dir, k)]} still to run")
    return None


def write_fold_outputs(fold_dir: Path, fold: int, comp: Competition, valid_rows: np.ndarray, result) -> None:
    """Fold predictions, then its summary; `oof.csv` last, since its presence marks the fold finished."""
    if result.test_probs is not None:
        write_csv(prediction_frame(comp.test_ids, result.test_probs, comp.classes), fold_dir / "test.csv")
    write_csv(pd.DataFrame(result.history), fold_dir / "summary.csv")
    oof = prediction_frame(comp.train_ids[valid_rows], result.valid_probs, comp.classes)
    oof.insert(1, FOLD, fold)
    write_csv(oof, fold_dir / "oof.csv")
    (fold_dir / "last.pt").unlink(missing_ok=True)  # resume state is dead weight once the fold is done


def prediction_frame(ids, probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(probs, columns=classes)
    frame.insert(0, ID, np.asarray(ids, dtype=str))
    return frame


def assemble_run(run_dir: Path, n_folds: int, comp: Competition, folds: pd.DataFrame, log=print) -> dict:
    """Merge the folds into `oof.csv` (checked: every train row once), `test.csv` (fold mean) and scores."""
    fold_dirs = [run_dir / f"fold{k}" for k in range(n_folds)]
    oof = pd.concat([pd.read_csv(d / "oof.csv", dtype={ID: str}) for d in fold_dirs], ignore_index=True)
    check_coverage(oof[ID], folds[ID], f"{run_dir}/fold*/oof.csv vs folds file")
    oof = oof.set_index(ID).loc[folds[ID]].reset_index()
    Y = folds[comp.classes].to_numpy(dtype=np.float64)
    P = oof[comp.classes].to_numpy(dtype=np.float64)
    scores = {"overall": metrics.all_scores(Y, P, comp.task), "folds": {}}
    for k in range(n_folds):
        mask = oof[FOLD].to_numpy() == k
        scores["folds"][str(k)] = metrics.all_scores(Y[mask], P[mask], comp.task)
    if (fold_dirs[0] / "test.csv").exists():
        tests = [pd.read_csv(d / "test.csv", dtype={ID: str}) for d in fold_dirs]
        mean = np.mean([t[comp.classes].to_numpy() for t in tests], axis=0)
        write_csv(prediction_frame(tests[0][ID], mean, comp.classes), run_dir / "test.csv")
    write_csv(pd.concat([pd.read_csv(d / "summary.csv") for d in fold_dirs]), run_dir / "summary.csv")
    write_json(scores, run_dir / "scores.json")
    write_csv(oof, run_dir / "oof.csv")  # last: its presence marks the run complete
    log(format_scores(run_dir.name, scores))
    return scores


def format_scores(name: str, scores: dict) -> str:
    names = list(scores["overall"])
    lines = [f"{name}: OOF scores", "  fold  " + "  ".join(f"{n:>9}" for n in names)]
    for k, s in scores["folds"].items():
        lines.append(f"  {k:>4}  " + "  ".join(f"{s[n]:9.4f}" for n in names))
    lines.append("   all  " + "  ".join(f"{scores['overall'][n]:9.4f}" for n in names))
    return "\n".join(lines)
