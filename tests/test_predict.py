"""kit.predict and kit.export: a run or any blend re-predicts its own test set as kit.cv / kit.blend wrote it;
an export moved elsewhere predicts a folder of new images, offline, without the training-only packages, into
the same submission kit.blend wrote; bad inputs are named before any prediction."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kit import blend, cv, export, predict

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"multilabel": ["mean", "rank", "weights", "hill", "stack", "stack-all"],
           "multiclass": ["mean", "rank", "weights", "hill", "stack"]}
BLOCKER = '''import sys
# what a bare notebook lacks: importing any of these fails as if it were not installed
for name in ("sklearn", "scipy", "optuna", "albumentations", "cv2", "iterstrat", "matplotlib"):
    sys.modules[name] = None
'''


@pytest.fixture
def project(tmp_path, cv_args, small_bccd, small_digits, request):
    """Two tiny runs on a competition and one blend per method, all under tmp_path."""
    task = request.param
    data = small_bccd if task == "multilabel" else small_digits
    for run, seed in (("a", "1"), ("b", "2")):
        assert cv.main(cv_args(data, run, "--seed", seed)) == 0
    dirs = ["--oof-dir", str(tmp_path / "oof"), "--tune-dir", str(tmp_path / "tune"),
            "--submissions-dir", str(tmp_path / "subs")]
    for method in METHODS[task]:
        params = ["--method", "stack", "--param", "features=all"] if method == "stack-all" else ["--method", method]
        blend.main(["--runs", "a", "b", "--name", method, *params, *dirs])
    return {"data": data, "dir": tmp_path, "task": task,
            "dirs": ["--oof-dir", str(tmp_path / "oof"), "--tune-dir", str(tmp_path / "tune"),
                     "--cache-dir", str(tmp_path / "cache")]}


@pytest.mark.parametrize("project", ["multilabel", "multiclass"], indirect=True)
def test_predict_reproduces_what_cv_and_blend_wrote(project, capsys):
    out = project["dir"] / "pred"
    for name in ["a", *METHODS[project["task"]]]:
        predict.main([name, "--data", str(project["data"]), "--out", str(out / f"{name}.csv"), "--quiet",
                      *project["dirs"]])
        assert "max abs difference" in capsys.readouterr().out
        written = pd.read_csv(project["dir"] / "oof" / name / "test.csv", dtype={"id": str}).set_index("id")
        again = pd.read_csv(out / f"{name}-probs.csv", dtype={"id": str}).set_index("id").loc[written.index]
        assert np.abs(again.to_numpy() - written.to_numpy()).max() < 1e-5, name
        submitted = project["dir"] / "subs" / f"{name}.csv"
        if submitted.exists():  # blends submit with their own thresholds, as kit.predict does
            assert (out / f"{name}.csv").read_text() == submitted.read_text(), name


@pytest.mark.parametrize("project", ["multilabel"], indirect=True)
def test_export_moved_elsewhere_predicts_new_images_offline(project, tmp_path):
    exported = export.main(["stack-all", "--out", str(tmp_path / "export"), *project["dirs"][:4]])
    moved = tmp_path / "elsewhere" / "notebook-input"
    moved.parent.mkdir()
    shutil.move(exported, moved)
    fresh = tmp_path / "kaggle-test"  # new paths: nothing cached, nothing shared with the training folder
    (fresh / "images").mkdir(parents=True)
    sample = pd.read_csv(project["data"] / "sample_submission.csv", dtype=str)
    sample.to_csv(fresh / "sample_submission.csv", index=False)
    for i in sample["id"]:
        shutil.copy(project["data"] / "images" / f"{i}.jpg", fresh / "images" / f"{i}.jpg")
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "blocker"), "OMP_NUM_THREADS": "1"}
    work = tmp_path / "working"
    work.mkdir()
    done = subprocess.run([sys.executable, str(moved / "predict.py"), "stack-all", "--data", str(fresh),
                           "--out", "submission.csv", "--cache-dir", str(work / "cache"), "--quiet"],
                          cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (work / "submission.csv").read_text() == (project["dir"] / "subs" / "stack-all.csv").read_text()
    blocked = subprocess.run([sys.executable, "-c", "import sklearn"], env=env, capture_output=True, text=True)
    assert blocked.returncode != 0 and "ModuleNotFoundError" in blocked.stderr  # the blocker works

    checkpoint = moved / "oof" / "a" / "fold0" / "best.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-10])  # a truncated upload is caught before predicting
    done = subprocess.run([sys.executable, str(moved / "predict.py"), "stack-all", "--data", str(fresh),
                           "--out", "again.csv", "--quiet"], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "changed since kit.export" in done.stderr and "fold0/best.pt" in done.stderr


@pytest.mark.parametrize("project", ["multiclass"], indirect=True)
def test_half_export_and_bare_folder_of_images(project, tmp_path):
    exported = export.main(["weights", "--out", str(tmp_path / "half"), "--half", *project["dirs"][:4]])
    saved = torch.load(exported / "oof" / "a" / "fold0" / "best.pt", weights_only=False)["model"]
    assert all(v.dtype == torch.float16 for v in saved.values() if v.is_floating_point())
    bare = tmp_path / "bare"
    bare.mkdir()
    ids = pd.read_csv(project["data"] / "test.csv", dtype=str)["id"].tolist()
    for i in ids:
        shutil.copy(project["data"] / "images" / f"{i}.png", bare / f"{i}.png")
    out = tmp_path / "sub.csv"
    predict.main(["weights", "--data", str(bare), "--out", str(out), "--quiet", "--oof-dir",
                  str(exported / "oof"), "--tune-dir", str(exported / "tune"), "--cache-dir", str(tmp_path / "c")])
    sub = pd.read_csv(out, dtype=str)
    assert list(sub.columns) == ["id", "label"] and sub["id"].tolist() == sorted(ids)  # the run's own format
    full = pd.read_csv(project["dir"] / "oof" / "weights" / "test.csv", dtype={"id": str}).set_index("id")
    half = pd.read_csv(tmp_path / "sub-probs.csv", dtype={"id": str}).set_index("id").loc[full.index]
    assert np.abs(half.to_numpy() - full.to_numpy()).max() < 5e-3  # fp16 weights: close, not equal


@pytest.mark.parametrize("project", ["multiclass"], indirect=True)
def test_bad_inputs_are_named_before_predicting(project, tmp_path, capsys):
    base = ["--out", str(tmp_path / "o.csv"), "--quiet", *project["dirs"]]
    data = str(project["data"])
    (project["dir"] / "oof" / "b" / "fold1" / "best.pt").rename(tmp_path / "kept.pt")
    with pytest.raises(SystemExit, match=r"not a finished run: missing checkpoints \[.*b/fold1/best\.pt"):
        predict.main(["weights", "--data", data, *base])
    (tmp_path / "kept.pt").rename(project["dir"] / "oof" / "b" / "fold1" / "best.pt")
    with pytest.raises(SystemExit, match=r"no such run or blend"):
        predict.main(["nothing", "--data", data, *base])

    other = tmp_path / "other"
    shutil.copytree(project["data"], other)
    sample = pd.read_csv(other / "sample_submission.csv", dtype=str)
    sample.assign(label="platypus").to_csv(other / "sample_submission.csv", index=False)
    with pytest.raises(SystemExit, match=r"sample_submission\.csv: labels .* no train row has.*platypus"):
        predict.main(["a", "--data", str(other), *base])
    sample.to_csv(other / "sample_submission.csv", index=False)
    broken = other / "images" / f"{sample['id'][3]}.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(SystemExit, match=rf"images that cannot be decoded: \[.{sample['id'][3]} "):
        predict.main(["a", "--data", str(other), *base])
    assert not (tmp_path / "o.csv").exists()
    (tmp_path / "o.csv").write_text("precious")
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        predict.main(["a", "--data", data, *base])
    assert (tmp_path / "o.csv").read_text() == "precious"
