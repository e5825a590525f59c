"""python -m kit.predict NAME --data DIR : a run or a blend predicts a folder of images it never saw.

A run: every fold's `best.pt` with the run's own preprocessing (image size, channels, normalisation, memory
format) and TTA views, averaged over folds as kit.cv averaged them. A blend: each member is predicted the
same way (recursively), then the blend's recipe (kit/blend/recipe.py) and the thresholds of
`tune/<NAME>/thresholds.json` are applied. DIR is a competition folder (test.csv / sample_submission.csv /
test/) or a bare folder of images (ids = file stems). Writes the probabilities (`id,<classes>`) and a
submission in the format of DIR's sample_submission.csv (else the format of the run's own data).

Needs only torch, timm, numpy, pandas and Pillow: it runs in an offline notebook from a `kit.export` folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.blend.recipe import combine, read_recipe
from kit.cache import cached_images
from kit.config import config_from_dict
from kit.data import DataError
from kit.data.competition import TestSet, load_test_set
from kit.data.sample import LABELS, LONG, SubmissionFormat
from kit.inference import predict, tta_views
from kit.model import create_model
from kit.runs import ID, file_sha256, read_json, write_csv
from kit.runs import leaf_runs as find_leaf_runs
from kit.runtime import resolve_runtime
from kit.submission import SubmissionError, read_thresholds, submission_frame

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class PredictError(ValueError):
    """A run or blend that cannot predict: unfinished, missing checkpoints, unknown members."""


def export_root() -> Path | None:
    """The export folder when kit runs from one (kit.export writes manifest.json beside the package)."""
    return PACKAGE_ROOT if (PACKAGE_ROOT / "manifest.json").exists() else None


def verify_export(root: Path) -> None:
    """Every file an export's manifest lists must still have its sha256 (a truncated upload, an edited
    checkpoint or a missing file is named before any prediction)."""
    manifest = read_json(root / "manifest.json")
    bad = [rel for rel, digest in manifest["files"].items()
           if not (root / rel).is_file() or file_sha256(root / rel) != digest]
    if bad:
        raise PredictError(f"{root}: files missing or changed since kit.export wrote them: {bad[:10]}")


def read_member(oof_dir: Path, name: str) -> dict:
    """config.json of a run/blend, checked: a run needs every fold's best.pt, a blend its recipe."""
    path = oof_dir / name / "config.json"
    if not path.exists():
        raise PredictError(f"{oof_dir / name}: no such run or blend (no config.json)")
    config = read_json(path)
    if config.get("kind", "run") == "run":
        folds = config["train"]["folds"]
        missing = [str(oof_dir / name / f"fold{k}" / "best.pt") for k in range(folds)
                   if not (oof_dir / name / f"fold{k}" / "best.pt").exists()]
        if missing:
            raise PredictError(f"{oof_dir / name} is not a finished run: missing checkpoints {missing}")
    elif not (oof_dir / name / "recipe.json").exists():
        raise PredictError(f"{oof_dir / name}: blend without recipe.json (re-run kit.blend to save it)")
    return config


def leaf_runs(oof_dir: Path, name: str) -> dict[str, dict]:
    """{run name: config} of every training run under `name` (itself, or a blend's members, recursively)."""
    return find_leaf_runs(oof_dir, name, read_member)


def load_fold_model(path: Path, cfg, n_classes: int, device: str | None):
    """(model on its device, runtime): the fold's weights with the memory format the fold trained with."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}  # fp16 exports
    trained = ckpt.get("runtime", {})
    runtime = resolve_runtime(device or cfg.device, cfg.amp, trained.get("channels_last", bool(cfg.channels_last)),
                              cfg.num_workers)
    model = create_model(cfg.model, n_classes, False, None, cfg.drop_rate, cfg.drop_path_rate,
                         in_chans=cfg.input_channels, log=lambda *a: None)
    model.load_state_dict(state)
    model = model.to(runtime.device)
    return (model.to(memory_format=torch.channels_last) if runtime.channels_last else model), runtime


def predict_run(run_dir: Path, config: dict, images: np.ndarray, device: str | None, batch_size: int | None,
                progress=None) -> np.ndarray:
    """Fold models' TTA probabilities on `images`, averaged over folds (what kit.cv wrote as test.csv)."""
    cfg = config_from_dict(config["train"])
    views, scales = tta_views(cfg.symmetry, cfg.tta), cfg.tta_scales or (1.0,)
    batch = batch_size or cfg.eval_batch_size or 4 * cfg.batch_size
    folds = []
    for k in range(cfg.folds):
        model, runtime = load_fold_model(run_dir / f"fold{k}" / "best.pt", cfg, len(config["classes"]), device)
        folds.append(predict(model, images, config["task"], runtime, batch, views, scales, progress=progress))
    return np.mean(folds, axis=0)


def predict_name(oof_dir: Path, name: str, test: TestSet, cache_dir: str, device: str | None = None,
                 batch_size: int | None = None, progress=None, log=print) -> tuple[dict, np.ndarray]:
    """(config of `name`, (n, C) probabilities for `test.ids` in the classes order of that config)."""
    runs = leaf_runs(oof_dir, name)
    probs = {}
    for run, config in runs.items():
        cfg = config_from_dict(config["train"])
        images = cached_images(test.paths, cfg.img_size, cache_dir, cfg.input_channels, test.ids,
                               where=str(test.source), log=log)
        probs[run] = predict_run(oof_dir / run, config, images, device, batch_size, progress)
    return evaluate(oof_dir, name, probs)


def evaluate(oof_dir: Path, name: str, run_probs: dict) -> tuple[dict, np.ndarray]:
    """A run's probabilities, or a blend's recipe applied to its members' (recursively), by class name."""
    config = read_member(oof_dir, name)
    if config.get("kind", "run") == "run":
        return config, run_probs[name]
    recipe, arrays = read_recipe(oof_dir / name)
    members = []
    for member in recipe["runs"]:
        member_config, P = evaluate(oof_dir, member, run_probs)
        order = [member_config["classes"].index(c) for c in config["classes"]]
        members.append(P[:, order])
    return config, combine(recipe, arrays, np.stack(members))


def default_format(data: dict, ids) -> SubmissionFormat | None:
    """The run's own data's submission format for ids without a sample (a bare folder of images)."""
    spec = data.get("submission")
    if not spec:
        return None
    ids = [str(i) for i in ids]
    rows = [f"{i}_{c}" for i in ids for c in data["classes"]] if spec["kind"] == LONG else None
    return SubmissionFormat(spec["id_col"], spec["kind"], spec["columns"], ids, rows, spec.get("sep", " "))


def main(argv=None) -> Path:
    exported = export_root()
    base = exported or Path(".")
    parser = argparse.ArgumentParser(prog="python -m kit.predict", description=__doc__.split("\n")[0])
    parser.add_argument("name", help="a run or blend under --oof-dir")
    parser.add_argument("--data", required=True, help="a competition folder or a folder of images")
    parser.add_argument("--out", default=None, help="submission file (default: predictions/<NAME>.csv)")
    parser.add_argument("--probs", default=None, help="probabilities file (default: <out>-probs.csv)")
    parser.add_argument("--oof-dir", default=str(base / "oof"))
    parser.add_argument("--tune-dir", default=str(base / "tune"))
    parser.add_argument("--thresholds", default=None, help="default: <tune-dir>/<NAME>/thresholds.json if any")
    parser.add_argument("--no-thresholds", action="store_true", help="decide at 0.5 / argmax")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the run's inference batch")
    parser.add_argument("--device", default=None, help="cuda / cpu (default: the run's, else cuda if present)")
    parser.add_argument("--cache-dir", default="~/.cache/kit", help="where decoded images are cached")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (DataError, PredictError, SubmissionError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err


def run(args) -> Path:
    oof_dir, name = Path(args.oof_dir), args.name
    if export_root() is not None:
        verify_export(export_root())
    out = Path(args.out or Path("predictions") / f"{name}.csv")
    probs_path = Path(args.probs or out.with_name(f"{out.stem}-probs.csv"))
    for path in (out, probs_path):
        if path.exists() and not args.overwrite:
            raise PredictError(f"{path} exists; pass --overwrite to replace it")
    config = read_member(oof_dir, name)
    leaf = next(iter(leaf_runs(oof_dir, name).values()))
    data, train = config["data"], leaf["train"]
    test = load_test_set(args.data, classes=config["classes"], task=config["task"],
                         id_col=data.get("id_col", ID), label_sep=data.get("label_sep"),
                         path_col=train.get("path_col"), test_image_dir=train.get("test_image_dir"),
                         channels=train.get("channels"))
    thresholds = None if args.no_thresholds else Path(args.thresholds or Path(args.tune_dir) / name / "thresholds.json")
    if thresholds is not None and args.thresholds is None and not thresholds.exists():
        thresholds = None
    values = read_thresholds(thresholds, config["task"], config["classes"]) if thresholds else 0.5
    log = (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, file=sys.stderr, **k))
    bar = None if args.quiet else _progress(len(test.ids) * _fold_passes(oof_dir, name))
    config, P = predict_name(oof_dir, name, test, args.cache_dir, args.device, args.batch_size,
                             bar.update if bar else None, log)
    if bar:
        bar.close()
    frame = pd.DataFrame(P, columns=config["classes"])
    frame.insert(0, ID, test.ids)
    write_csv(frame, probs_path)
    fmt = test.submission or default_format(data, test.ids)
    submission = submission_frame(frame, config["task"], config["classes"], data.get("id_col", ID), fmt, values,
                                  where=str(probs_path))
    write_csv(submission, out)
    print(f"{name}: {len(test.ids)} images -> {out} ({fmt.kind if fmt else 'probabilities'}"
          f"{', thresholds ' + str(thresholds) if thresholds and fmt and fmt.kind == LABELS else ''}), {probs_path}")
    _compare_with_own_test(oof_dir / name, frame, config["classes"])
    return out


def _fold_passes(oof_dir: Path, name: str) -> int:
    return sum(c["train"]["folds"] for c in leaf_runs(oof_dir, name).values())


def _progress(total: int):
    from tqdm import tqdm  # comes with timm (through huggingface_hub)

    return tqdm(total=total, desc="predicting", unit="img", file=sys.stderr, dynamic_ncols=True)


def _compare_with_own_test(run_dir: Path, frame: pd.DataFrame, classes: list[str]) -> None:
    """On the run's own test images, say how far from kit.cv's / kit.blend's test.csv the prediction is."""
    own = run_dir / "test.csv"
    if not own.exists():
        return
    written = pd.read_csv(own, dtype={ID: str})
    if sorted(written[ID]) != sorted(frame[ID]):
        return
    diff = np.abs(written.set_index(ID).loc[frame[ID], classes].to_numpy() - frame[classes].to_numpy()).max()
    print(f"same images as {own}: max abs difference {diff:.2e}")


if __name__ == "__main__":
    main()
