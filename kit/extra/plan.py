"""A run's extra training rows, checked before any work (`plan_extra`) and built per fold (`fold_extra`).

    --pseudo NAME          test rows with NAME's predictions as targets (honest: fold k's from fold-k models)
    --extra-data DIR       another competition's labelled rows join every fold's training
    --teacher NAME         the fold's rows learn (1 - alpha) label + alpha teacher (honest: fold-k models)
Every source must share this run's folds file; nothing here is ever validated or written to oof.csv.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit.extra import sources
from kit.extra.rows import ExtraPart, FoldExtra, confidence, hard_targets, smooth
from kit.extra.sources import SourceError

SOFT_LOSSES = ("bce", "ce")  # the losses linear in the target: mixing targets = mixing the losses


@dataclass
class ExtraPlan:
    """What `plan_extra` checked, for `fold_extra` to build from."""
    cfg: object
    task: str
    classes: list[str]
    pseudo: dict | None = None      # source config
    teacher: dict | None = None
    extra: object | None = None     # the --extra-data Competition
    extra_Y: np.ndarray | None = None
    extra_images: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return bool(self.pseudo or self.teacher or self.extra is not None)

    @property
    def soft(self) -> bool:
        return bool(self.teacher or (self.pseudo and not self.cfg.pseudo_hard))


def check_options(cfg, task: str) -> None:
    """Combinations refused up front, each with the reason."""
    problems = []
    if not 0 <= cfg.pseudo_min_confidence <= 1:
        problems.append(f"pseudo_min_confidence must be in [0, 1] (got {cfg.pseudo_min_confidence})")
    if cfg.pseudo_weight <= 0:
        problems.append(f"pseudo_weight must be > 0 (got {cfg.pseudo_weight})")
    if not 0 < cfg.distill_alpha <= 1:
        problems.append(f"distill_alpha must be in (0, 1] (got {cfg.distill_alpha})")
    if cfg.extra_class_map and not cfg.extra_data:
        problems.append("--extra-class-map needs --extra-data")
    pseudo_options = (cfg.pseudo_mode != "honest", cfg.pseudo_min_confidence != 0, cfg.pseudo_weight != 1,
                      cfg.pseudo_hard)
    if any(pseudo_options) and not cfg.pseudo:
        problems.append("--pseudo-mode / --pseudo-min-confidence / --pseudo-weight / --pseudo-hard need --pseudo")
    if (cfg.distill_alpha != 0.5 or cfg.distill_mode != "honest") and not cfg.teacher:
        problems.append("--distill-alpha / --distill-mode need --teacher")
    soft = cfg.teacher or (cfg.pseudo and not cfg.pseudo_hard)
    if soft and (cfg.loss or "auto") not in (*SOFT_LOSSES, "auto"):
        problems.append(f"soft targets (--pseudo / --teacher) need a loss linear in the target (bce / ce), "
                        f"not {cfg.loss}")
    if cfg.pseudo and cfg.balance in ("sampler", "selective"):
        problems.append(f"--balance {cfg.balance} draws or weights rows by their labels, and pseudo-labelled "
                        f"rows have none; use class-weight (computed from the labelled rows) or none")
    if cfg.teacher and cfg.balance == "selective":
        problems.append("--balance selective weights a batch by its hard labels, which distillation replaces "
                        "with soft targets; use class-weight, sampler or none")
    if (cfg.pseudo or cfg.extra_data) and getattr(cfg, "batch_sampler", "plain") != "plain":
        problems.append("--batch-sampler rare composes batches from the fold's labelled rows only; use plain "
                        "with --pseudo / --extra-data")
    if problems:
        raise ValueError("invalid extra-rows options: " + "; ".join(problems))


def _check_source(oof_dir: Path, name: str, flag: str, comp, folds_name: str, n_folds: int) -> dict:
    config = sources.source_config(oof_dir, name)
    where = f"{flag} {name} ({Path(oof_dir) / name})"
    if config.get("task") != comp.task or sorted(config.get("classes", [])) != sorted(comp.classes):
        raise SourceError(f"{where}: task/classes {config.get('task')} {config.get('classes')} differ from this "
                          f"run's {comp.task} {comp.classes}")
    if Path(config.get("folds_file", "")).name != folds_name:
        raise SourceError(f"{where} was made on folds file {config.get('folds_file')}, this run uses "
                          f"{folds_name}: fold k of the source would not be fold k of this run")
    for run, leaf in sources.leaf_runs(oof_dir, name).items():
        if leaf.get("train", {}).get("folds", n_folds) != n_folds:
            raise SourceError(f"{where}: member {run} has {leaf['train']['folds']} folds, this run {n_folds}")
    return config


def _extra_competition(cfg, comp):
    """The --extra-data folder's rows with labels in this run's classes (mapped by --extra-class-map)."""
    from kit.data import load_competition

    extra = load_competition(cfg.extra_data, task=comp.task, channels=cfg.channels)
    mapping = {}
    if cfg.extra_class_map:
        table = pd.read_csv(cfg.extra_class_map, dtype=str, keep_default_na=False)
        if table.shape[1] != 2:
            raise ValueError(f"{cfg.extra_class_map}: a class map has two columns (extra class, run class), "
                             f"got {list(table.columns)}")
        mapping = dict(zip(table.iloc[:, 0], table.iloc[:, 1]))
    mapped = [mapping.get(c, c) for c in extra.classes]
    unknown = sorted({f"{c!r}" + (f" (mapped to {m!r})" if m != c else "")
                      for c, m in zip(extra.classes, mapped) if m not in comp.classes})
    if unknown:
        raise ValueError(f"--extra-data {extra.root}: class(es) {', '.join(unknown)} are not classes of this run "
                         f"({comp.classes}); map them with --extra-class-map FILE")
    Y = np.zeros((len(extra.train_ids), len(comp.classes)))
    for j, m in enumerate(mapped):
        Y[:, comp.classes.index(m)] = np.maximum(Y[:, comp.classes.index(m)], extra.Y[:, j])
    mine = {Path(p).resolve() for p in [*comp.train_paths, *(comp.test_paths or [])] if not isinstance(p, tuple)}
    shared = [i for i, p in zip(extra.train_ids, extra.train_paths)
              if not isinstance(p, tuple) and Path(p).resolve() in mine]
    if shared:
        raise ValueError(f"--extra-data {extra.root}: {len(shared)} image(s) are this run's own train/test "
                         f"images (ids {[str(i) for i in shared[:10]]}): they would be trained on while validated")
    return extra, Y


def plan_extra(cfg, comp, folds_name: str, log=print) -> ExtraPlan:
    """Check every extra-rows option against the data and the sources; no writes (the cache aside)."""
    plan = ExtraPlan(cfg, comp.task, list(comp.classes))
    if not (cfg.pseudo or cfg.teacher or cfg.extra_data):
        check_options(cfg, comp.task)
        return plan
    check_options(cfg, comp.task)
    if cfg.pseudo:
        if comp.test_ids is None or not len(comp.test_ids):
            raise SourceError(f"--pseudo {cfg.pseudo}: this competition has no test images to pseudo-label")
        plan.pseudo = _check_source(cfg.oof_dir, cfg.pseudo, "--pseudo", comp, folds_name, cfg.folds)
        for k in range(cfg.folds) if cfg.pseudo_mode == "honest" else []:
            sources.fold_test_predictions(cfg.oof_dir, cfg.pseudo, k, comp.test_ids)  # every file there, ids match
        if cfg.pseudo_mode == "leaky":
            sources.leaky_test_predictions(cfg.oof_dir, cfg.pseudo, comp.test_ids)
    if cfg.teacher:
        plan.teacher = _check_source(cfg.oof_dir, cfg.teacher, "--teacher", comp, folds_name, cfg.folds)
        if cfg.distill_mode == "honest":
            missing = [str(Path(cfg.oof_dir) / r / f"fold{k}" / "best.pt")
                       for r in sources.leaf_runs(cfg.oof_dir, cfg.teacher) for k in range(cfg.folds)
                       if not (Path(cfg.oof_dir) / r / f"fold{k}" / "best.pt").exists()]
            if missing:
                raise SourceError(f"--teacher {cfg.teacher}: fold checkpoints missing: {missing[:5]}")
        else:
            sources.oof_train_predictions(cfg.oof_dir, cfg.teacher, comp.train_ids)
    if cfg.extra_data:
        from kit.cache import cached_images

        plan.extra, plan.extra_Y = _extra_competition(cfg, comp)
        plan.extra_images = cached_images(plan.extra.train_paths, cfg.img_size, cfg.cache_dir, cfg.input_channels,
                                          plan.extra.train_ids, where=str(plan.extra.train_source), log=log)
    return plan


def check_folds(plan: ExtraPlan, folds_path: Path) -> None:
    """The sources' folds file is this run's, byte for byte (checked once the file exists)."""
    from kit.runs import file_sha256

    digest = file_sha256(folds_path)
    for flag, config in (("--pseudo", plan.pseudo), ("--teacher", plan.teacher)):
        if config and config.get("folds_sha256") != digest:
            raise SourceError(f"{flag} {config['name']}: its folds file {config.get('folds_file')} differs from "
                              f"this run's {folds_path} (sha256)")


def describe(plan: ExtraPlan) -> dict | None:
    """The sources and modes, with the sha256 of every file the targets come from (config.json 'extra')."""
    if not plan.active:
        return None
    cfg, out = plan.cfg, {}
    if plan.pseudo:
        test_files = ((lambda d: [d / f"fold{k}" / "test.csv" for k in range(cfg.folds)])
                      if cfg.pseudo_mode == "honest" else (lambda d: []))
        files = sources.fingerprint(cfg.oof_dir, cfg.pseudo, test_files)
        if cfg.pseudo_mode == "leaky":
            files[f"{cfg.pseudo}/test.csv"] = _sha(Path(cfg.oof_dir) / cfg.pseudo / "test.csv")
        out["pseudo"] = {"source": cfg.pseudo, "kind": plan.pseudo.get("kind", "run"), "mode": cfg.pseudo_mode,
                         "runs": sorted(sources.leaf_runs(cfg.oof_dir, cfg.pseudo)), "hard": cfg.pseudo_hard,
                         "min_confidence": cfg.pseudo_min_confidence, "weight": cfg.pseudo_weight, "files": files}
    if plan.teacher:
        model_files = ((lambda d: [d / f"fold{k}" / "best.pt" for k in range(cfg.folds)])
                       if cfg.distill_mode == "honest" else (lambda d: [d / "oof.csv"]))
        out["teacher"] = {"source": cfg.teacher, "kind": plan.teacher.get("kind", "run"), "mode": cfg.distill_mode,
                          "alpha": cfg.distill_alpha, "runs": sorted(sources.leaf_runs(cfg.oof_dir, cfg.teacher)),
                          "files": sources.fingerprint(cfg.oof_dir, cfg.teacher, model_files)}
    if plan.extra is not None:
        out["extra_data"] = {"root": str(plan.extra.root), "rows": len(plan.extra.train_ids),
                             "classes": plan.extra.classes, "class_map": cfg.extra_class_map,
                             "files": {str(plan.extra.train_source): _sha(Path(plan.extra.train_source))}}
    return out


def _sha(path: Path) -> str | None:
    from kit.runs import file_sha256

    return file_sha256(path) if path.is_file() else None


def check_unchanged(run_dir: Path, description: dict | None) -> None:
    """A run continued (--resume, --fold) must train on the very targets its first folds trained on."""
    from kit.runs import read_json

    path = Path(run_dir) / "config.json"
    if path.exists() and read_json(path).get("extra") != description:
        raise SourceError(f"{run_dir}: the pseudo-label source, teacher or extra data changed since the run "
                          f"started (config.json 'extra' differs); pass --overwrite to train it again")


def fold_extra(plan: ExtraPlan, fold: int, comp, train_rows: np.ndarray, test_images, device=None,
               log=print) -> FoldExtra | None:
    """Fold `fold`'s extra rows and targets; None when the run has none."""
    if not plan.active:
        return None
    cfg, task = plan.cfg, plan.task
    ls = cfg.label_smoothing if plan.soft else 0.0  # soft targets: smoothing goes to the hard ones only, here
    own = comp.Y[train_rows].astype(np.float64)
    extra = FoldExtra(smooth(own, ls, task) if plan.soft else None, soft=plan.soft)
    if plan.teacher:
        if cfg.distill_mode == "honest":
            T = sources.fold_train_predictions(cfg.oof_dir, cfg.teacher, fold, comp.train_paths, comp.train_ids,
                                               train_rows, cfg.cache_dir, device, log=log)
        else:
            T = sources.oof_train_predictions(cfg.oof_dir, cfg.teacher, comp.train_ids[train_rows])
        T = T[:, [plan.teacher["classes"].index(c) for c in plan.classes]]
        extra.train_targets = (1 - cfg.distill_alpha) * extra.train_targets + cfg.distill_alpha * T
    if plan.pseudo:
        P = (sources.fold_test_predictions(cfg.oof_dir, cfg.pseudo, fold, comp.test_ids)
             if cfg.pseudo_mode == "honest" else sources.leaky_test_predictions(cfg.oof_dir, cfg.pseudo, comp.test_ids))
        P = P[:, [plan.pseudo["classes"].index(c) for c in plan.classes]]
        kept = np.flatnonzero(confidence(P, task) >= cfg.pseudo_min_confidence)
        targets = smooth(hard_targets(P[kept], task), ls, task) if cfg.pseudo_hard else P[kept]
        extra.parts.append(ExtraPart("pseudo", test_images, kept, targets, cfg.pseudo_weight))
        extra.summary["pseudo"] = int(len(kept))
    if plan.extra is not None:
        extra.parts.append(ExtraPart("extra-data", plan.extra_images, np.arange(len(plan.extra_Y)),
                                     smooth(plan.extra_Y, ls, task), 1.0, labels=plan.extra_Y))
        extra.summary["extra-data"] = int(len(plan.extra_Y))
    log(f"fold {fold}: {len(train_rows)} labelled rows"
        + "".join(f" + {n} {name} rows" for name, n in extra.summary.items())
        + (f", targets {1 - cfg.distill_alpha:g} label + {cfg.distill_alpha:g} teacher {cfg.teacher} "
           f"({cfg.distill_mode})" if plan.teacher else ""))
    return extra
