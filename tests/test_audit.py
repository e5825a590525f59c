"""kit.audit on competitions with planted problems (tests/audit_fixtures.py), and the kit.cv flags that use
its files: --groups-file keeps every duplicate cluster in one fold, --exclude-ids leaves rows out of training
but keeps them validated."""
from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from audit_fixtures import CONFLICT, EXACT, LEAK, OUTLIERS, QUALITY, RESIZED, planted_competition, split_competition

from kit.audit.cli import main as audit_main
from kit.audit.label_noise import label_issues
from kit.metrics import MULTICLASS, MULTILABEL
from kit.runs import read_json

KNOWN_BCCD_PAIR = {"BloodImage_00037", "BloodImage_00038"}  # a real near-duplicate in bccd (same smear)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return planted_competition(tmp_path_factory.mktemp("planted") / "planted")


@pytest.fixture(scope="module")
def planted_audit(planted, tmp_path_factory, cache_dir):
    data, originals = planted
    out = tmp_path_factory.mktemp("audit")
    assert audit_main(["--data", str(data), "--out-dir", str(out), "--cache-dir", str(cache_dir)]) == 0
    return out / data.name, originals


def read(folder, name):
    return pd.read_csv(folder / name, dtype={"id": str, "id_a": str, "id_b": str}, keep_default_na=False)


def pair_set(frame):
    return {frozenset((a, b)) for a, b in zip(frame["id_a"], frame["id_b"])}


def test_audit_finds_every_planted_duplicate_and_nothing_else(planted_audit):
    folder, originals = planted_audit
    pairs = read(folder, "duplicates.csv")
    kind = {frozenset((r.id_a, r.id_b)): r for r in pairs.itertuples()}
    # decoded pixels identical -> exact, though the copies are PNG files of JPEG originals
    for copy in (EXACT, CONFLICT, LEAK):
        assert kind[frozenset((originals[copy], copy))].kind == "exact"
    # re-encoded at another JPEG quality, resized by 6%: different pixels, same perceptual hash neighbourhood
    for copy in (QUALITY, RESIZED):
        assert kind[frozenset((originals[copy], copy))].kind == "phash"
    planted = {frozenset((originals[c], c)) for c in (EXACT, QUALITY, RESIZED, CONFLICT, LEAK)}
    assert pair_set(pairs) - planted <= {frozenset(KNOWN_BCCD_PAIR)}
    leak = kind[frozenset((originals[LEAK], LEAK))]
    assert {leak.split_a, leak.split_b} == {"train", "test"} and leak.labels_agree == ""
    agree = {frozenset((r.id_a, r.id_b)): r.labels_agree for r in pairs.itertuples() if r.labels_agree != ""}
    assert agree[frozenset((originals[CONFLICT], CONFLICT))] == "False"
    assert all(v == "True" for p, v in agree.items() if CONFLICT not in p)


def test_groups_hold_every_planted_train_pair(planted_audit):
    folder, originals = planted_audit
    group = dict(zip(*read(folder, "groups.csv")[["id", "group"]].T.to_numpy()))
    for copy in (EXACT, QUALITY, RESIZED, CONFLICT):
        assert group[copy] == group[originals[copy]]
    assert len({group[c] for c in (EXACT, QUALITY, RESIZED, CONFLICT)}) == 4  # four separate clusters
    assert LEAK not in group  # groups.csv lists train ids only


def test_planted_outliers_are_the_top_and_flagged(planted_audit):
    folder, _ = planted_audit
    outliers = read(folder, "outliers.csv")
    assert set(outliers["id"][:3]) == set(OUTLIERS)
    flagged = set(outliers["id"][outliers["outlier"] == 1])
    assert set(OUTLIERS) <= flagged and len(flagged) <= 8
    assert set(OUTLIERS) <= set(read(folder, "exclude.csv")["id"])
    blank = outliers.set_index("id").loc["blank"]
    assert blank["contrast"] == pytest.approx(0.0, abs=1e-6)


def test_report_is_self_contained_with_thumbnails(planted_audit):
    folder, _ = planted_audit
    page = (folder / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 3 and "http" not in page
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert LEAK in page and "copy_conflict" in page


def test_shift_is_found_when_planted_and_absent_otherwise(tmp_path, cache_dir):
    aucs = {}
    for shifted in (False, True):
        data = split_competition(tmp_path / f"split-{shifted}", shifted=shifted)
        assert audit_main(["--data", str(data), "--out-dir", str(tmp_path / "audit"),
                           "--cache-dir", str(cache_dir)]) == 0
        text = (tmp_path / "audit" / data.name / "report.html").read_text()
        aucs[shifted] = float(re.search(r"ROC AUC of a classifier telling test from train = ([0-9.]+)", text)[1])
        features = read(tmp_path / "audit" / data.name, "shift_features.csv")
        if shifted:
            assert features["feature"][0] in {"brightness", "red", "green", "blue"} and features["ks"][0] > 0.9
    assert abs(aucs[False] - 0.5) < 0.12
    assert aucs[True] > 0.95
    assert len(read(tmp_path / "audit" / "split-False", "shift.csv")) == 110  # every train row ranked


def test_label_issues_find_flipped_labels():
    rng = np.random.default_rng(0)
    n, classes = 200, ["a", "b", "c"]
    truth = rng.integers(0, 3, n)
    P = np.full((n, 3), 0.05) + rng.uniform(0, 0.1, (n, 3))
    P[np.arange(n), truth] = 0.8
    P /= P.sum(1, keepdims=True)
    given = truth.copy()
    flipped = rng.choice(n, 8, replace=False)
    given[flipped] = (truth[flipped] + 1) % 3
    ids = np.array([f"r{i}" for i in range(n)])
    issues = label_issues(ids, np.eye(3)[given], P, classes, MULTICLASS)
    assert set(issues["id"]) == set(ids[flipped])
    assert (issues.set_index("id").loc[ids[flipped], "suggested"].to_numpy() == np.array(classes)[truth[flipped]]).all()
    # multi-label: a dropped positive and an added one, per (row, class)
    Y = (rng.uniform(size=(n, 3)) < 0.4).astype(int)
    P = np.where(Y == 1, 0.85, 0.1) + rng.uniform(-0.05, 0.05, (n, 3))
    noisy = Y.copy()
    noisy[3, 0], noisy[7, 2] = 1 - Y[3, 0], 1 - Y[7, 2]
    found = {(r.id, r.given, r.suggested) for r in label_issues(ids, noisy, P, classes, MULTILABEL).itertuples()}
    expect = {("r3", *(("(not a)", "a") if Y[3, 0] else ("a", "(not a)"))),
              ("r7", *(("(not c)", "c") if Y[7, 2] else ("c", "(not c)")))}
    assert found == expect


def test_bad_input_is_exit_2_and_writes_nothing(tmp_path, planted, cache_dir, capsys):
    out = tmp_path / "audit"
    assert audit_main(["--data", str(tmp_path / "nowhere"), "--out-dir", str(out)]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert audit_main(["--data", str(planted[0]), "--run", "nope", "--oof-dir", str(tmp_path / "oof"),
                       "--out-dir", str(out), "--cache-dir", str(cache_dir)]) == 2
    assert "nope" in capsys.readouterr().err
    assert not out.exists()


def test_cv_groups_file_keeps_planted_pairs_in_one_fold(planted, planted_audit, cv_args, tmp_path):
    from kit.cv import main as cv_main

    data, originals = planted
    folder, _ = planted_audit
    assert cv_main(cv_args(data, "grouped", "--groups-file", str(folder / "groups.csv"))) == 0
    config = read_json(tmp_path / "oof" / "grouped" / "config.json")
    assert "-ggroups-file-" in config["folds_file"]
    fold = dict(zip(*pd.read_csv(config["folds_file"], dtype={"id": str})[["id", "fold"]].T.to_numpy()))
    for copy in (EXACT, QUALITY, RESIZED, CONFLICT):
        assert fold[copy] == fold[originals[copy]]
    oof = pd.read_csv(tmp_path / "oof" / "grouped" / "oof.csv", dtype={"id": str})
    assert sorted(oof["id"]) == sorted(fold)


def test_cv_groups_file_errors_name_the_ids(planted, cv_args, tmp_path, capsys):
    from kit.cv import main as cv_main

    data, _ = planted
    bad = tmp_path / "groups.csv"
    pd.DataFrame({"id": ["copy_png", "not_an_id"], "group": ["g", "g"]}).to_csv(bad, index=False)
    assert cv_main(cv_args(data, "bad", "--groups-file", str(bad))) == 2
    assert "not_an_id" in capsys.readouterr().err
    pd.DataFrame({"id": ["leak_test"]}).to_csv(bad, index=False)  # a test id is not a train row
    assert cv_main(cv_args(data, "bad", "--exclude-ids", str(bad))) == 2
    assert "leak_test" in capsys.readouterr().err
    assert not (tmp_path / "oof" / "bad").exists() and not (tmp_path / "folds").exists()


def test_cv_exclude_ids_trains_without_them_but_validates_them(planted, planted_audit, cv_args, tmp_path,
                                                              monkeypatch):
    """Excluded rows never reach a fold's training rows, are still predicted by the fold that holds them
    out, and share the folds file of an ordinary run: that run and this one blend."""
    import kit.crossval
    from kit.blend import main as blend_main
    from kit.cv import main as cv_main

    data, _ = planted
    folder, _ = planted_audit
    excluded = set(read(folder, "exclude.csv")["id"])
    seen = []
    real = kit.crossval.train_fold
    monkeypatch.setattr(kit.crossval, "train_fold",
                        lambda cfg, fold_data, *a, **k: seen.append(fold_data) or real(cfg, fold_data, *a, **k))
    assert cv_main(cv_args(data, "excluding", "--exclude-ids", str(folder / "exclude.csv"))) == 0
    ids = pd.read_csv(data / "train.csv", dtype=str)["id"].to_numpy()
    assert len(seen) == 2
    for fold_data in seen:
        assert not excluded & set(ids[fold_data.train_rows])
    assert excluded <= set(ids[np.concatenate([f.valid_rows for f in seen])])
    run = tmp_path / "oof" / "excluding"
    assert set(read_json(run / "config.json")["excluded_ids"]) == excluded
    assert excluded <= set(pd.read_csv(run / "oof.csv", dtype={"id": str})["id"])
    assert cv_main(cv_args(data, "plain")) == 0
    assert read_json(tmp_path / "oof" / "plain" / "config.json")["folds_file"] == \
        read_json(run / "config.json")["folds_file"]
    blend_main(["--runs", "excluding", "plain", "--method", "mean", "--name", "both", "--no-thresholds",
                "--oof-dir", str(tmp_path / "oof"), "--tune-dir", str(tmp_path / "tune"),
                "--submissions-dir", str(tmp_path / "submissions")])
    assert (tmp_path / "oof" / "both" / "oof.csv").exists()


def test_audit_with_a_run_adds_embeddings_and_label_issues(planted, cv_args, tmp_path, cache_dir):
    from kit.cv import main as cv_main

    data, originals = planted
    assert cv_main(cv_args(data, "seen")) == 0
    out = tmp_path / "audit"
    assert audit_main(["--data", str(data), "--run", "seen", "--oof-dir", str(tmp_path / "oof"),
                       "--out-dir", str(out), "--cache-dir", str(cache_dir), "--min-cosine", "0.999"]) == 0
    issues = read(out / data.name, "label_issues.csv")
    assert len(issues) and set(issues["id"]) <= set(pd.read_csv(data / "train.csv", dtype=str)["id"])
    assert list(issues["margin"]) == sorted(issues["margin"])
    assert "Label issues (OOF of seen)" in (out / data.name / "report.html").read_text()
    pairs = pair_set(read(out / data.name, "duplicates.csv"))
    assert frozenset((originals[EXACT], EXACT)) in pairs
