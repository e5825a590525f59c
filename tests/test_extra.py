"""Extra training rows (kit/extra/): pseudo-labels, --extra-data and distillation never leak into the OOF.

Honesty is checked as tests/test_blend.py checks a blend: a member's fold-1 outputs (test predictions or
checkpoint) are poisoned in a copy of the project; a student's fold 0, whose rows those fold-1 models trained
on, must then train bit for bit as before, and its fold 1 must change (the poison is really read). Training
is deterministic on a CPU, so "bit for bit" is an exact comparison of fold0/oof.csv."""
from __future__ import annotations

import argparse
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from competitions import bccd_subset, digits_competition
from conftest import TINY

from kit.blend import main as blend_main
from kit.crossval import run_cv
from kit.cv import main
from kit.extra import sources
from kit.runs import read_json


def argv(out, cache, data, name, *extra):
    return [*TINY, "--data", str(data), "--name", name, "--oof-dir", str(out / "oof"),
            "--folds-dir", str(out / "folds"), "--cache-dir", str(cache), *extra]


@pytest.fixture(scope="module")
def project(tmp_path_factory, cache_dir, small_digits):
    """Two tiny runs on the digits and their `weights` blend, under one folds file."""
    out = tmp_path_factory.mktemp("extra")
    for name, seed in (("r1", "1"), ("r2", "2")):
        assert main(argv(out, cache_dir, small_digits, name, "--seed", seed)) == 0
    blend_main(["--runs", "r1", "r2", "--name", "b", "--oof-dir", str(out / "oof"), "--tune-dir", str(out / "tune"),
                "--submissions-dir", str(out / "submissions"), "--no-thresholds"])
    return {"out": out, "data": small_digits, "cache": cache_dir}


def copy_project(project, dest):
    shutil.copytree(project["out"] / "oof", dest / "oof")
    shutil.copytree(project["out"] / "folds", dest / "folds")
    return dest


def fold_oof(out, name, k):
    return pd.read_csv(out / "oof" / name / f"fold{k}" / "oof.csv", dtype={"id": str})


def poison_test_csv(path):
    frame = pd.read_csv(path, dtype={"id": str})
    classes = list(frame.columns[1:])
    frame[classes] = 0.0
    frame[classes[-1]] = 1.0  # every test image "is" the last class
    frame.to_csv(path, index=False)


def test_fold_targets_come_only_from_models_that_never_saw_the_fold(project, tmp_path):
    out, test_ids = project["out"], pd.read_csv(project["data"] / "test.csv", dtype=str)["id"]
    clean = [sources.fold_test_predictions(out / "oof", "b", k, test_ids) for k in (0, 1)]
    dirty_dir = copy_project(project, tmp_path)
    poison_test_csv(dirty_dir / "oof" / "r1" / "fold1" / "test.csv")
    dirty = [sources.fold_test_predictions(dirty_dir / "oof", "b", k, test_ids) for k in (0, 1)]
    np.testing.assert_array_equal(dirty[0], clean[0])   # fold 0's pseudo-labels: fold-0 models only
    assert np.abs(dirty[1] - clean[1]).max() > 0.05     # fold 1's do read r1's fold-1 test predictions
    # the blend's fold-0 recipe is the one its own OOF used for fold 0: refitted without fold 0's rows
    recipe, _ = sources.fold_recipe(out / "oof", "b", 0)
    fold0 = read_json(out / "oof" / "b" / "weights.json")["fold_weights"]["0"]
    assert recipe["weights"] == pytest.approx([fold0["r1"], fold0["r2"]], abs=1e-6)
    # leaky: the fold-averaged test.csv, which fold-1 models (trained on fold 0's rows) are part of
    r1_folds = [pd.read_csv(out / "oof" / "r1" / f"fold{k}" / "test.csv").iloc[:, 1:].to_numpy() for k in (0, 1)]
    np.testing.assert_allclose(sources.leaky_test_predictions(out / "oof", "r1", test_ids),
                               np.mean(r1_folds, axis=0), atol=1e-6)


def test_poisoned_member_fold_never_reaches_the_student_fold(project, tmp_path):
    """End to end through kit.cv: --pseudo b and --teacher b (honest) with member r1's fold-1 test predictions
    and fold-1 checkpoint poisoned; --distill-mode oof (the common practice) with r1's fold-1 OOF poisoned."""
    dirty = copy_project(project, tmp_path / "dirty")
    poison_test_csv(dirty / "oof" / "r1" / "fold1" / "test.csv")
    ckpt_path = dirty / "oof" / "r1" / "fold1" / "best.pt"
    ckpt = torch.load(ckpt_path, weights_only=False)
    ckpt["model"] = {k: v * 3 if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, ckpt_path)
    leaky = copy_project(project, tmp_path / "dirty-oof")  # r1's fold-1 model "knows nothing" on its rows
    oof1 = pd.read_csv(leaky / "oof" / "r1" / "oof.csv", dtype={"id": str})
    oof1.loc[oof1["fold"] == 1, oof1.columns[2:]] = 1.0 / (len(oof1.columns) - 2)
    oof1.to_csv(leaky / "oof" / "r1" / "oof.csv", index=False)
    clean = copy_project(project, tmp_path / "clean")
    runs = {"pseudo": (["--pseudo", "b"], dirty), "teacher": (["--teacher", "b"], dirty),
            "oofdistil": (["--teacher", "r1", "--distill-mode", "oof"], leaky)}
    for name, (extra, poisoned) in runs.items():
        for out in (clean, poisoned):
            assert main(argv(out, project["cache"], project["data"], name, *extra)) == 0
    for name in ("pseudo", "teacher"):
        pd.testing.assert_frame_equal(fold_oof(dirty, name, 0), fold_oof(clean, name, 0))  # honest: untouched
        assert not fold_oof(dirty, name, 1).equals(fold_oof(clean, name, 1))                 # poison is read
    # the OOF mode trains fold 0 on r1's fold-1 OOF, made by a model that trained on fold 0: it leaks
    assert not fold_oof(leaky, "oofdistil", 0).equals(fold_oof(clean, "oofdistil", 0))
    config = read_json(clean / "oof" / "pseudo" / "config.json")
    assert config["extra"]["pseudo"]["mode"] == "honest" and config["extra"]["pseudo"]["runs"] == ["r1", "r2"]
    assert config["train"]["pseudo"] == "b"


def extra_competition(dest, classes=("zero", "one", "two"), rename=None):
    """Other digits than small_digits' (another seed, other files) of a subset of the classes."""
    root = digits_competition(dest, n_train=120, n_test=10, seed=7)
    train = pd.read_csv(root / "train.csv", dtype=str)
    train = train[train["label"].isin(classes)]
    if rename:
        train["label"] = train["label"].replace(rename)
    train.to_csv(root / "train.csv", index=False)
    return root, train


def test_extra_rows_never_reach_the_oof(project, tmp_path):
    extra, extra_train = extra_competition(tmp_path / "more")
    out = copy_project(project, tmp_path / "p")
    assert main(argv(out, project["cache"], project["data"], "plus", "--pseudo", "b", "--extra-data", str(extra),
                     "--pseudo-weight", "0.5")) == 0
    folds = pd.read_csv(next((out / "folds").glob("*.csv")), dtype={"id": str})
    oof = pd.read_csv(out / "oof" / "plus" / "oof.csv", dtype={"id": str})
    assert sorted(oof["id"]) == sorted(folds["id"])  # every train row once, nothing else
    test_ids = set(pd.read_csv(project["data"] / "test.csv", dtype=str)["id"])
    for k in (0, 1):
        ids = set(fold_oof(out, "plus", k)["id"])
        assert ids == set(folds.loc[folds["fold"] == k, "id"]) and not ids & test_ids
    described = read_json(out / "oof" / "plus" / "config.json")["extra"]
    assert described["extra_data"]["rows"] == len(extra_train) and described["pseudo"]["weight"] == 0.5
    # the extra rows were trained on: fold 0 differs from the same run without them
    assert main(argv(out, project["cache"], project["data"], "plain", "--seed", "42")) == 0
    assert not fold_oof(out, "plus", 0).equals(fold_oof(out, "plain", 0))
    # and --pseudo-weight reaches the loss
    assert main(argv(out, project["cache"], project["data"], "plus1", "--pseudo", "b", "--extra-data", str(extra))) == 0
    assert not fold_oof(out, "plus", 0).equals(fold_oof(out, "plus1", 0))


class Crash(RuntimeError):
    pass


def test_extra_data_and_teacher_runs_resume_and_reproduce(project, tmp_path):
    extra, _ = extra_competition(tmp_path / "more")
    out = copy_project(project, tmp_path / "p")
    flags = ["--extra-data", str(extra), "--teacher", "b", "--distill-alpha", "0.7", "--epochs", "2",
             "--mixup", "0.2", "--label-smoothing", "0.1"]
    assert main(argv(out, project["cache"], project["data"], "whole", *flags)) == 0

    def crash(fold, epoch, score):
        if (fold, epoch) == (1, 1):
            raise Crash
    from kit.cv import build_parser
    from kit.config import resolve_config
    args = build_parser().parse_args(argv(out, project["cache"], project["data"], "cut", *flags))
    cfg = resolve_config(argparse.Namespace(**{**vars(args), "model": args.model[0]}))  # as kit.cv does
    with pytest.raises(Crash):
        run_cv(cfg, quiet=True, on_epoch=crash, log=lambda *a, **k: None)
    assert (out / "oof" / "cut" / "fold1" / "last.pt").exists() and not (out / "oof" / "cut" / "oof.csv").exists()
    assert main(argv(out, project["cache"], project["data"], "cut", *flags, "--resume")) == 0
    cut, whole = out / "oof" / "cut", out / "oof" / "whole"
    for file in ("oof.csv", "test.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(cut / file), pd.read_csv(whole / file))
    assert read_json(cut / "config.json")["extra"] == read_json(whole / "config.json")["extra"]


def test_resume_refuses_a_source_that_changed(project, tmp_path, capsys):
    out = copy_project(project, tmp_path / "p")
    assert main(argv(out, project["cache"], project["data"], "half", "--pseudo", "b", "--fold", "0")) == 0
    poison_test_csv(out / "oof" / "r2" / "fold1" / "test.csv")
    capsys.readouterr()
    assert main(argv(out, project["cache"], project["data"], "half", "--pseudo", "b", "--fold", "1")) == 2
    assert "changed since the run started" in capsys.readouterr().err
    assert not (out / "oof" / "half" / "fold1").exists()


def test_bad_extra_inputs_are_refused_before_any_work(project, tmp_path, capsys):
    out = copy_project(project, tmp_path / "p")
    renamed, _ = extra_competition(tmp_path / "renamed", rename={"two": "deux"})
    class_map = tmp_path / "map.csv"
    class_map.write_text("extra,run\ndeux,two\n")
    other_folds = ["--pseudo", "b", "--fold-seed", "3"]
    cases = [
        (["--pseudo", "nope"], "no such run or blend"),
        (other_folds, "folds file"),
        (["--extra-data", str(renamed)], "'deux'"),
        (["--extra-data", str(project["data"])], "this run's own train/test images"),
        (["--pseudo", "b", "--balance", "sampler"], "pseudo-labelled rows have none"),
        (["--teacher", "b", "--loss", "focal"], "linear in the target"),
        (["--distill-alpha", "0", "--teacher", "b"], "distill_alpha"),
        (["--extra-class-map", str(class_map)], "needs --extra-data"),
        (["--pseudo-weight", "2"], "need --pseudo"),
        (["--distill-mode", "oof"], "need --teacher"),
    ]
    for i, (flags, message) in enumerate(cases):
        capsys.readouterr()
        assert main(argv(out, project["cache"], project["data"], f"bad{i}", *flags)) == 2, flags
        assert message in capsys.readouterr().err, flags
        assert not (out / "oof" / f"bad{i}").exists(), flags
    (out / "oof" / "r1" / "fold0" / "best.pt").unlink()
    assert main(argv(out, project["cache"], project["data"], "nockpt", "--teacher", "b")) == 2
    assert "fold checkpoints missing" in capsys.readouterr().err and not (out / "oof" / "nockpt").exists()
    # the class map makes the renamed data usable
    assert main(argv(out, project["cache"], project["data"], "mapped", "--extra-data", str(renamed),
                     "--extra-class-map", str(class_map))) == 0


def test_multilabel_pseudo_labels_hard_and_confident(tmp_path, cache_dir):
    """bccd (multi-label): --pseudo-hard gives 0/1 per label at 0.5; the confidence filter is per row."""
    data = bccd_subset(tmp_path / "bccd", n_train=60, n_test=20)
    assert main(argv(tmp_path, cache_dir, data, "src")) == 0
    from kit.config import TrainConfig
    from kit.data import load_competition
    from kit.extra import fold_extra, plan_extra
    comp = load_competition(data)
    cfg = TrainConfig(data=str(data), pseudo="src", pseudo_hard=True, pseudo_min_confidence=0.6, folds=2,
                      oof_dir=str(tmp_path / "oof"), cache_dir=str(cache_dir), img_size=32)
    folds_name = read_json(tmp_path / "oof" / "src" / "config.json")["folds_file"].rsplit("/", 1)[-1]
    plan = plan_extra(cfg, comp, folds_name, log=lambda *a: None)
    extra = fold_extra(plan, 0, comp, np.arange(10), np.zeros((20, 32, 32, 3), np.uint8), log=lambda *a: None)
    P = sources.fold_test_predictions(tmp_path / "oof", "src", 0, comp.test_ids)
    keep = np.flatnonzero(np.maximum(P, 1 - P).min(axis=1) >= 0.6)
    (part,) = extra.parts
    np.testing.assert_array_equal(part.rows, keep)
    np.testing.assert_array_equal(part.targets, (P[keep] >= 0.5).astype(float))


def test_training_rows_serve_each_part_with_its_targets_and_weight():
    """The fold's rows first, then each extra part, each item from its own image array; the balancer counts
    only rows with true labels; label smoothing moves to the hard targets when some targets are soft."""
    from kit.extra.rows import ExtraPart, FoldExtra, smooth, training_set
    from kit.train import FoldData

    rng = np.random.default_rng(0)
    images, test_images = rng.integers(0, 255, (6, 4, 4, 3), np.uint8), rng.integers(0, 255, (5, 4, 4, 3), np.uint8)
    Y = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    soft = np.full((2, 3), 1 / 3)
    extra = FoldExtra(smooth(Y[[0, 2, 4]], 0.1, "multiclass"), [ExtraPart("pseudo", test_images, np.array([3, 1]),
                                                                            soft, 0.25)], soft=True)
    data = FoldData(0, "multiclass", images, Y, np.array([0, 2, 4]), np.array([1, 3, 5]), test_images, extra)
    dataset, labelled, smoothing = training_set(data, 0.1, None)
    assert len(dataset) == 5 and smoothing == 0.0
    np.testing.assert_array_equal(labelled, Y[[0, 2, 4]])  # pseudo rows are not labels
    image, target, weight = dataset[(4, 0)]
    np.testing.assert_array_equal(image.numpy(), test_images[1])
    np.testing.assert_allclose(target.numpy(), soft[1])
    assert float(weight) == 0.25
    image, target, weight = dataset[(1, 0)]
    np.testing.assert_array_equal(image.numpy(), images[2])
    np.testing.assert_allclose(target.numpy(), [0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3], rtol=1e-6)
    assert float(weight) == 1.0
    plain, labels, smoothing = training_set(FoldData(0, "multiclass", images, Y, np.array([0, 2, 4]),
                                                     np.array([1, 3, 5])), 0.1, None)
    assert len(plain) == 3 and smoothing == 0.1 and len(plain[(0, 0)]) == 2  # no extra rows: as before
