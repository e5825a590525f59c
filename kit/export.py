"""python -m kit.export NAME --out DIR [--half] : a self-contained folder for an offline notebook.

DIR holds the kit package, the fold checkpoints of every run under NAME (optionally in fp16), the blend
recipes, NAME's thresholds, `manifest.json` (versions, classes, image sizes, sha256 of every file), a README
and `predict.py`. In it, with only torch, timm, numpy, pandas and Pillow installed and no network:

    python DIR/predict.py NAME --data /kaggle/input/<competition> --out submission.csv
    (or: cd DIR && python -m kit.predict NAME --data ...)
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from kit.predict import PredictError, leaf_runs, read_member
from kit.runs import file_sha256
from kit.submission import thresholds_path

PACKAGE = Path(__file__).resolve().parent
PACKAGES = ("torch", "timm", "numpy", "pandas", "pillow", "safetensors")
LAUNCHER = '''"""Run kit.predict from this export folder, whatever the working directory."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kit.predict import main  # noqa: E402

main()
'''


def tree(oof_dir: Path, name: str, names=None) -> list[str]:
    """`name` and every run or blend under it, members first."""
    names = [] if names is None else names
    config = read_member(oof_dir, name)
    for member in config.get("runs", []) if config.get("kind") == "blend" else []:
        tree(oof_dir, member, names)
    if name not in names:
        names.append(name)
    return names


def copy_checkpoint(source: Path, target: Path, half: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not half:
        shutil.copy2(source, target)
        return
    ckpt = torch.load(source, map_location="cpu", weights_only=False)
    ckpt["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, target)


def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    try:
        found["kit"] = subprocess.run(["git", "-C", str(PACKAGE), "rev-parse", "HEAD"], capture_output=True,
                                      text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        found["kit"] = "unknown"
    return found


def readme(name: str, config: dict, runs: dict) -> str:
    sizes = sorted({(c["train"]["img_size"], c["train"]["model"]) for c in runs.values()})
    return (f"# kit export: {name}\n\n{config['task']} over {len(config['classes'])} classes; runs: "
            + ", ".join(f"{model} at {size}px" for size, model in sizes)
            + f"\n\nIn a notebook (no network; torch, timm, numpy, pandas, Pillow installed):\n\n"
            f"    !python /kaggle/input/<this folder>/predict.py {name} --data /kaggle/input/<competition> "
            f"--out /kaggle/working/submission.csv\n\n"
            "`--data` is a competition folder (test.csv or sample_submission.csv, images under images/ or test/)"
            " or a bare folder of images. Decoded images are cached in `--cache-dir` (default ~/.cache/kit);"
            " `manifest.json` lists every file with its sha256 (checked before predicting) and the versions"
            " the export was made with.\n")


def export(oof_dir: Path, tune_dir: Path, name: str, out: Path, half: bool, overwrite: bool) -> Path:
    names = tree(oof_dir, name)
    runs = leaf_runs(oof_dir, name)
    if out.exists() and not overwrite:
        raise PredictError(f"{out} exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))  # same disk: the rename is atomic
    try:
        shutil.copytree(PACKAGE, staging / "kit", ignore=shutil.ignore_patterns("__pycache__", "embedded"))
        for member in names:
            source, target = oof_dir / member, staging / "oof" / member
            target.mkdir(parents=True)
            shutil.copy2(source / "config.json", target / "config.json")
            if member in runs:
                for k in range(runs[member]["train"]["folds"]):
                    copy_checkpoint(source / f"fold{k}" / "best.pt", target / f"fold{k}" / "best.pt", half)
            for extra in ("recipe.json", "recipe.npz"):
                if (source / extra).exists():
                    shutil.copy2(source / extra, target / extra)
        thresholds = thresholds_path(tune_dir, name)
        if thresholds.exists():
            (staging / "tune" / name).mkdir(parents=True)
            shutil.copy2(thresholds, staging / "tune" / name / "thresholds.json")
        config = read_member(oof_dir, name)
        (staging / "predict.py").write_text(LAUNCHER)
        (staging / "README.md").write_text(readme(name, config, runs))
        files = {str(p.relative_to(staging)): file_sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()}
        manifest = {"name": name, "kind": config.get("kind", "run"), "task": config["task"],
                    "classes": config["classes"], "members": names, "half": half,
                    "runs": {r: {k: c["train"][k] for k in ("model", "img_size", "in_chans", "channels", "folds",
                                                            "symmetry", "tta", "tta_scales")}
                             for r, c in runs.items()},
                    "versions": versions(), "created": datetime.now(timezone.utc).isoformat(), "files": files}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m kit.export", description=__doc__.split("\n")[0])
    parser.add_argument("name", help="a run or blend under --oof-dir")
    parser.add_argument("--out", required=True, help="the export folder to write")
    parser.add_argument("--half", action="store_true", help="store weights in fp16 (half the size)")
    parser.add_argument("--oof-dir", default="oof")
    parser.add_argument("--tune-dir", default="tune")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = export(Path(args.oof_dir), Path(args.tune_dir), args.name, Path(args.out), args.half, args.overwrite)
    except (PredictError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"exported {args.name} -> {out} ({size / 2**20:.1f} MiB); run: python {out / 'predict.py'} "
          f"{args.name} --data <folder of test images>")
    return out


if __name__ == "__main__":
    main()
