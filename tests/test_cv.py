"""kit.cv end to end on real images (embedded bccd, digits) with a tiny timm net: the run folder's files,
fold-by-fold runs, every bad input refused before any work (leaving an existing run untouched), seeds, config
files."""
from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from competitions import digits_competition
from conftest import BCCD, tree_hashes

from kit import metrics
from kit.config import TrainConfig
from kit.cv import main
from kit.runs import file_sha256, read_folds

SUMMARY_COLUMNS = ["fold", "epoch", "train_loss", "valid_loss", "valid_metric", "lr", "seconds"]


def read_ids(csv: Path) -> list[str]:
    return pd.read_csv(csv, dtype=str, keep_default_na=False)["id"].tolist()


def expected_labels(train_csv: Path) -> tuple[list[str], pd.DataFrame]:
    """(classes, id -> 0/1 label frame) parsed here independently of kit.data."""
    train = pd.read_csv(train_csv, dtype=str, keep_default_na=False)
    column = "labels" if "labels" in train.columns else "label"
    rows = [set(cell.split()) for cell in train[column]]
    classes = sorted(set().union(*rows))
    Y = pd.DataFrame([[int(c in r) for c in classes] for r in rows], columns=classes, index=train["id"])
    return classes, Y


def check_run_folder(run_dir: Path, data: Path, task: str, n_folds: int, epochs: int) -> None:
    """Everything the README promises about oof/<run>/ after a finished kit.cv run."""
    classes, Y = expected_labels(data / "train.csv")
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["kind"], config["name"], config["task"], config["classes"]) == \
        ("run", run_dir.name, task, classes)
    assert config["folds_sha256"] == file_sha256(config["folds_file"])
    assert set(config["train"]) == {f.name for f in fields(TrainConfig)}  # fully resolved, defaults too
    assert (config["train"]["model"], config["train"]["folds"], config["train"]["epochs"]) == \
        ("test_resnet", n_folds, epochs)
    assert Path(config["data"]["root"]) == data.resolve()
    folds = read_folds(config["folds_file"]).set_index("id")
    assert sorted(folds.index) == sorted(Y.index)
    assert (folds.loc[Y.index, classes].to_numpy() == Y.to_numpy()).all()

    oof = pd.read_csv(run_dir / "oof.csv", dtype={"id": str})
    assert list(oof.columns) == ["id", "fold", *classes]
    assert not oof["id"].duplicated().any() and sorted(oof["id"]) == sorted(Y.index)
    assert (oof["fold"].to_numpy() == folds.loc[oof["id"], "fold"].to_numpy()).all()
    assert set(oof["fold"]) == set(range(n_folds))
    test = pd.read_csv(run_dir / "test.csv", dtype={"id": str})
    assert list(test.columns) == ["id", *classes]
    assert test["id"].tolist() == read_ids(data / "test.csv")
    for P in (oof[classes].to_numpy(), test[classes].to_numpy()):
        assert np.isfinite(P).all() and (P >= 0).all() and (P <= 1).all()
        if task == metrics.MULTICLASS:
            np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-5)
    fold_tests = [pd.read_csv(run_dir / f"fold{k}" / "test.csv")[classes].to_numpy() for k in range(n_folds)]
    np.testing.assert_allclose(test[classes].to_numpy(), np.mean(fold_tests, axis=0), atol=1e-6)

    summary = pd.read_csv(run_dir / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert sorted(zip(summary["fold"], summary["epoch"])) == \
        [(k, e) for k in range(n_folds) for e in range(1, epochs + 1)]
    scores = json.loads((run_dir / "scores.json").read_text())
    truth = Y.loc[oof["id"]].to_numpy(dtype=float)
    for name, value in metrics.all_scores(truth, oof[classes].to_numpy(), task).items():
        assert scores["overall"][name] == pytest.approx(value, abs=1e-5)
    assert sorted(scores["folds"]) == [str(k) for k in range(n_folds)]
    for k in range(n_folds):
        assert (run_dir / f"fold{k}" / "best.pt").is_file()
        assert not (run_dir / f"fold{k}" / "last.pt").exists()  # resume state removed once done


def test_full_bccd_run_writes_a_complete_run_folder(bccd_run):
    check_run_folder(bccd_run.run_dir, BCCD, metrics.MULTILABEL, n_folds=2, epochs=1)


def test_multiclass_digits_run_writes_a_complete_run_folder(small_digits, cv_args, tmp_path):
    assert main(cv_args(small_digits, "digits")) == 0
    check_run_folder(tmp_path / "oof" / "digits", small_digits, metrics.MULTICLASS, n_folds=2, epochs=1)


def oof_matrix(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "oof.csv", dtype={"id": str}).set_index("id").sort_index()


def test_folds_run_separately_merge_into_the_full_run(bccd_run, cv_args, tmp_path):
    run_dir = tmp_path / "oof" / "byfold"
    assert main(cv_args(BCCD, "byfold", "--fold", "0")) == 0
    assert (run_dir / "fold0" / "oof.csv").exists() and not (run_dir / "fold1").exists()
    assert not (run_dir / "oof.csv").exists()  # assembled only once every fold exists
    assert main(cv_args(BCCD, "byfold", "--fold", "1")) == 0
    check_run_folder(run_dir, BCCD, metrics.MULTILABEL, n_folds=2, epochs=1)
    merged, full = oof_matrix(run_dir), oof_matrix(bccd_run.run_dir)
    assert (merged["fold"] == full["fold"]).all()
    np.testing.assert_allclose(merged.to_numpy(float), full.to_numpy(float), rtol=0, atol=1e-6)


# --- bad inputs: each refused before any work, with --overwrite even, naming the culprit

def mini_multiclass(root: Path) -> Path:
    """A small multi-class competition (20 digits, 2 per class; 10 test) with its own jpg images, hence
    breakable, and no sample submission."""
    digits_competition(root, n_train=20, n_test=10, ext="jpg")
    (root / "sample_submission.csv").unlink()
    return root


def edit_csv(path: Path, edit) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(frame).to_csv(path, index=False)


def set_label(frame, row, value):
    frame.loc[row, "label"] = value
    return frame


def break_missing_image(root):
    victim = read_ids(root / "train.csv")[3]
    (root / "images" / f"{victim}.jpg").unlink()
    return ["--data", str(root)], rf"train\.csv.*no image.*'{victim}'"


def break_unreadable_image(root):
    victim = read_ids(root / "train.csv")[5]
    (root / "images" / f"{victim}.jpg").write_bytes(b"not a jpeg at all" * 20)
    return ["--data", str(root)], rf"train\.csv: images that cannot be decoded.*{victim} \(.*{victim}\.jpg"


def break_duplicate_ids(root):
    victim = read_ids(root / "train.csv")[2]
    edit_csv(root / "train.csv", lambda f: pd.concat([f, f.iloc[[2]]]))
    return ["--data", str(root)], rf"train\.csv: duplicate ids \['{victim}'\]"


def break_unknown_label(root):
    """A label that is not a column of the (one column per class) sample submission."""
    classes = sorted(set(pd.read_csv(root / "train.csv")["label"]))
    test = read_ids(root / "test.csv")
    pd.DataFrame({"id": test, **{c: 1 / len(classes) for c in classes}}).to_csv(
        root / "sample_submission.csv", index=False)
    edit_csv(root / "train.csv", lambda f: set_label(f, 4, "alien"))
    return ["--data", str(root)], r"sample_submission\.csv: columns .* neither one prediction column nor one " \
                                  r"column per class \(classes without a column \['alien'\]"


def break_empty_multiclass_label(root):
    victim = read_ids(root / "train.csv")[7]
    edit_csv(root / "train.csv", lambda f: set_label(f, 7, ""))
    return ["--data", str(root)], rf"train\.csv: a multi-class task needs exactly one label per row; " \
                                  rf"ids with no label \['{victim}'\]"


def break_fewer_rows_than_folds(root):
    edit_csv(root / "train.csv", lambda f: f.iloc[:3])
    return ["--data", str(root), "--folds", "4"], r"3 rows cannot fill 4 folds"


def break_test_ids_without_images(root):
    edit_csv(root / "test.csv", lambda f: pd.concat([f, pd.DataFrame({"id": ["ghost_1"]})]))
    return ["--data", str(root)], r"test\.csv: ids with no image.*\['ghost_1'\]"


def break_config_key(root):
    config = root / "cfg.json"
    config.write_text(json.dumps({"epochs": 1, "learning_rate": 0.1}))
    return ["--config", str(config)], rf"config file {re.escape(str(config))}: unknown config keys \['learning_rate'\]"


def break_model_name(root):
    return ["--model", "no_such_net_xyz"], r"[Uu]nknown model.*no_such_net_xyz"


def break_fold_number(root):
    return ["--fold", "2"], r"--fold \[2\] out of range"


BREAKERS = [break_missing_image, break_unreadable_image, break_duplicate_ids, break_unknown_label,
            break_empty_multiclass_label, break_fewer_rows_than_folds, break_test_ids_without_images,
            break_config_key, break_model_name, break_fold_number]


@pytest.mark.parametrize("breaker", BREAKERS, ids=[b.__name__.removeprefix("break_") for b in BREAKERS])
def test_bad_input_errors_before_any_work_and_leaves_the_run_untouched(breaker, bccd_run, tmp_path, capsys):
    """Aimed at the finished run's name with --overwrite: only validation up front can save it."""
    extra, message = breaker(mini_multiclass(tmp_path / "comp"))
    before = tree_hashes(bccd_run.out)
    capsys.readouterr()
    assert main(bccd_run.argv_with(*extra, "--overwrite")) != 0
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.splitlines()) == 1  # one clear line, no traceback
    assert re.search(message, err), err
    assert tree_hashes(bccd_run.out) == before


def test_rerunning_a_finished_run_needs_overwrite(bccd_run, capsys):
    before = tree_hashes(bccd_run.out)
    capsys.readouterr()
    assert main(bccd_run.argv) != 0
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(bccd_run.run_dir))} is a finished run; pass --overwrite", err), err
    assert tree_hashes(bccd_run.out) == before


def test_another_config_under_the_same_name_is_refused(bccd_run, capsys):
    before = tree_hashes(bccd_run.out)
    capsys.readouterr()
    assert main(bccd_run.argv_with("--lr", "0.01", "--batch-size", "8")) != 0
    err = capsys.readouterr().err
    assert re.search(r"holds a run with another config \(differs in \['batch_size', 'lr'\]\)", err), err
    assert tree_hashes(bccd_run.out) == before


# --- seeds and config files

def test_same_seed_same_predictions_other_seed_other_predictions(small_bccd, cv_args, tmp_path):
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert main(cv_args(small_bccd, name, "--seed", seed)) == 0
    a, b, c = (oof_matrix(tmp_path / "oof" / n) for n in "abc")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    pd.testing.assert_frame_equal(*(pd.read_csv(tmp_path / "oof" / n / "test.csv") for n in "ab"), check_exact=True)
    assert np.abs(a.drop(columns="fold").to_numpy() - c.drop(columns="fold").to_numpy()).max() > 1e-3


def test_config_file_then_flags(small_bccd, cv_args, tmp_path, capsys):
    config = tmp_path / "tuned.json"
    config.write_text(json.dumps({"lr": 0.001, "batch_size": 16, "weight_decay": 0.01, "tta": False,
                                  "aug": "light", "epochs": 3}))
    assert main([*cv_args(small_bccd, "cfg"), "--config", str(config), "--lr", "0.003", "--epochs", "1"]) == 0
    train = json.loads((tmp_path / "oof" / "cfg" / "config.json").read_text())["train"]
    assert (train["lr"], train["epochs"]) == (0.003, 1)  # typed flags win over the file
    assert (train["batch_size"], train["weight_decay"], train["tta"], train["aug"]) == (16, 0.01, False, "light")
    assert train["min_lr"] == TrainConfig().min_lr  # neither in the file nor typed: the default

    config.write_text(json.dumps({"lr": 0.001, "batchsize": 16}))
    capsys.readouterr()
    assert main([*cv_args(small_bccd, "cfg2"), "--config", str(config)]) != 0
    err = capsys.readouterr().err
    assert re.search(rf"config file {re.escape(str(config))}: unknown config keys \['batchsize'\]", err), err
    assert not (tmp_path / "oof" / "cfg2").exists()
