"""kit.data: every label layout parsed from real data, every bad input a DataError naming ids/files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from competitions import bccd_subset
from conftest import SHARED_DATA

from kit.cache import cached_images
from kit.data import EMBEDDED_DATA, DataError, load_competition
from kit.metrics import MULTICLASS, MULTILABEL

BCCD_COUNTS = {"RBC": 280, "WBC": 290, "Platelets": 162, "NEUTROPHIL": 174, "EOSINOPHIL": 71,
               "LYMPHOCYTE": 33, "MONOCYTE": 19, "BASOPHIL": 2}
# a handful of real embedded bccd photos (jpg) to build tmp competitions from
SOURCE_IMAGES = sorted((EMBEDDED_DATA / "images").glob("*.jpg"))[:6]


def make_competition(root: Path, train: dict, test: dict | None = None, image_ids=None,
                     image_dir: str = "images", ext: str = "jpg", sample_submission: dict | None = None) -> Path:
    """A tmp competition folder: train.csv (+ test.csv, sample_submission.csv) and real images."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(train).to_csv(root / "train.csv", index=False)
    if test is not None:
        pd.DataFrame(test).to_csv(root / "test.csv", index=False)
    if sample_submission is not None:
        pd.DataFrame(sample_submission).to_csv(root / "sample_submission.csv", index=False)
    if image_ids is None:
        image_ids = list(train["id"]) + (list(test["id"]) if test is not None else [])
    (root / image_dir).mkdir(exist_ok=True)
    for n, i in enumerate(image_ids):
        shutil.copy(SOURCE_IMAGES[n % len(SOURCE_IMAGES)], root / image_dir / f"{i}.{ext}")
    return root


SIMPLE_TRAIN = {"id": ["a", "b", "c", "d"], "label": ["x", "y", "x", "z"]}


@pytest.mark.parametrize("root", [EMBEDDED_DATA, pytest.param(SHARED_DATA / "bccd", marks=pytest.mark.shared)],
                         ids=["embedded", "shared"])
def test_space_separated_labels_bccd(root):
    comp = load_competition(root)
    assert (comp.task, comp.layout, comp.label_sep, comp.label_cols, comp.id_col) == \
        (MULTILABEL, "separated", " ", ["labels"], "id")
    assert comp.Y.shape == (292, 8) and comp.Y.dtype == np.float32
    assert comp.classes == sorted(BCCD_COUNTS)
    assert dict(zip(comp.classes, comp.Y.sum(axis=0).astype(int).tolist())) == BCCD_COUNTS
    assert set(np.unique(comp.Y)) == {0.0, 1.0}
    train = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    assert list(comp.train_ids) == list(train["id"])
    row = 5  # spot-check one row against the raw text
    assert {comp.classes[c] for c in np.flatnonzero(comp.Y[row])} == set(train["labels"][row].split())
    assert len(comp.test_ids) == 72 and len(comp.test_paths) == 72
    assert all(p.is_file() and p.stem == i for p, i in zip(comp.train_paths, comp.train_ids))
    assert comp.sample_submission == root.resolve() / "sample_submission.csv"
    described = json.loads(json.dumps(comp.describe()))
    assert described["root"] == str(root.resolve()) and described["name"] == "bccd"
    assert described["classes"] == comp.classes and described["task"] == MULTILABEL


def check_single_label(root: Path, n_train: int, n_classes: int, n_test: int) -> None:
    comp = load_competition(root)
    assert (comp.task, comp.layout, comp.label_cols) == (MULTICLASS, "single", ["label"])
    assert comp.Y.shape == (n_train, n_classes)
    assert (comp.Y.sum(axis=1) == 1).all()
    train = pd.read_csv(root / "train.csv", dtype=str)
    assert comp.classes == sorted(train["label"].unique())
    assert [comp.classes[c] for c in comp.Y.argmax(axis=1)] == list(train["label"])
    assert len(comp.test_ids) == n_test


def test_single_label_digits(small_digits):
    check_single_label(small_digits, 300, 10, 60)


@pytest.mark.shared
def test_single_label_real_pbc():
    check_single_label(SHARED_DATA / "pbc", 2734, 8, 685)


def test_one_hot_columns_match_the_space_separated_parse(tmp_path):
    reference = load_competition(EMBEDDED_DATA)
    order = ["WBC", "RBC", "MONOCYTE", "Platelets", "BASOPHIL", "NEUTROPHIL", "LYMPHOCYTE", "EOSINOPHIL"]
    onehot = pd.DataFrame(reference.Y.astype(int), columns=reference.classes)[order]
    onehot.insert(0, "id", reference.train_ids)
    tmp_path.joinpath("images").symlink_to(EMBEDDED_DATA / "images")  # no copying of 292 images
    onehot.to_csv(tmp_path / "train.csv", index=False)
    comp = load_competition(tmp_path)
    assert (comp.layout, comp.task, comp.classes, comp.label_cols) == ("onehot", MULTILABEL, order, order)
    assert comp.test_ids is None and comp.test_paths is None and comp.sample_submission is None
    reorder = [reference.classes.index(c) for c in order]
    np.testing.assert_array_equal(comp.Y, reference.Y[:, reorder])


def test_path_column_with_images_in_another_folder(tmp_path):
    root = tmp_path / "comp"
    make_competition(root, SIMPLE_TRAIN, image_dir="pictures", ext="png")
    train = pd.DataFrame(SIMPLE_TRAIN)
    train.insert(1, "path", [f"pictures/{i}.png" for i in train["id"]])
    train.loc[3, "path"] = str(root / "pictures" / "d.png")  # absolute paths are kept as they are
    train.to_csv(root / "train.csv", index=False)
    comp = load_competition(root)
    assert comp.path_col == "path" and comp.layout == "single" and comp.classes == ["x", "y", "z"]
    assert comp.train_paths == [root / "pictures" / f"{i}.png" for i in "abcd"]
    train.loc[2, "path"] = "pictures/nothere.png"
    train.to_csv(root / "train.csv", index=False)
    with pytest.raises(DataError, match=r"train\.csv.*'c -> .*nothere\.png'"):
        load_competition(root)


def test_image_extension_detected_with_fallback_per_id(tmp_path):
    root = make_competition(tmp_path, SIMPLE_TRAIN, ext="png")
    (root / "images" / "c.png").rename(root / "images" / "c.jpeg")
    comp = load_competition(root)
    assert [p.name for p in comp.train_paths] == ["a.png", "b.png", "c.jpeg", "d.png"]


def test_task_override_and_explicit_label_column(tmp_path, small_digits):
    comp = load_competition(small_digits, task=MULTILABEL)
    assert comp.task == MULTILABEL and comp.layout == "single" and (comp.Y.sum(axis=1) == 1).all()
    # a `labels` column with one label per row can be declared multi-class
    root = make_competition(tmp_path / "one", {"id": ["a", "b", "c"], "labels": ["x", "y", "x"]})
    assert load_competition(root).task == MULTILABEL
    comp = load_competition(root, task=MULTICLASS)
    assert comp.task == MULTICLASS and comp.classes == ["x", "y"]
    # explicit label_col: content decides (spaces or empty cells -> space-separated)
    root = make_competition(tmp_path / "two", {"id": ["a", "b", "c"], "tags": ["x y", "", "y"],
                                               "kind": ["p", "q", "p"]})
    tags = load_competition(root, label_col="tags")
    assert (tags.layout, tags.task, tags.classes) == ("separated", MULTILABEL, ["x", "y"])
    np.testing.assert_array_equal(tags.Y, [[1, 1], [0, 0], [0, 1]])
    kind = load_competition(root, label_col="kind")
    assert (kind.layout, kind.task, kind.classes) == ("single", MULTICLASS, ["p", "q"])


def test_numeric_class_names_sort_as_numbers(tmp_path):
    root = make_competition(tmp_path, {"id": list("abcd"), "target": ["10", "2", "1", "2"]})
    assert load_competition(root).classes == ["1", "2", "10"]


def test_groups_read_from_the_group_column(tmp_path):
    root = make_competition(tmp_path, {"id": list("abcd"), "patient": ["p1", "p1", "p2", "p3"],
                                       "label": ["x", "y", "x", "y"]})
    comp = load_competition(root, group_col="patient")
    assert list(comp.groups) == ["p1", "p1", "p2", "p3"] and comp.describe()["group_col"] == "patient"


# ---------------------------------------------------------------- bad input: DataError naming the culprit

def test_missing_train_csv(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv.*missing"):
        load_competition(tmp_path)


def test_missing_image_names_the_id(tmp_path):
    root = make_competition(tmp_path, SIMPLE_TRAIN)
    (root / "images" / "c.jpg").unlink()
    with pytest.raises(DataError, match=r"train\.csv.*no image.*\['c'\]"):
        load_competition(root)


def test_unreadable_image_is_found_when_the_cache_is_built_and_named(tmp_path):
    root = make_competition(tmp_path, SIMPLE_TRAIN)
    (root / "images" / "b.jpg").write_bytes(b"this is not a jpeg" * 10)
    comp = load_competition(root)  # the folder is fine; the pixels are checked by the one decoder
    with pytest.raises(DataError, match=r"train\.csv: images that cannot be decoded: \[.b \(.*b\.jpg"):
        cached_images(comp.train_paths, 16, tmp_path / "cache", ids=comp.train_ids, where=str(comp.train_source))


def test_duplicate_ids_in_train_and_test(tmp_path):
    root = make_competition(tmp_path / "train", {"id": ["a", "b", "a", "c", "c"], "label": list("xyxyx")})
    with pytest.raises(DataError, match=r"train\.csv: duplicate ids \['a', 'c'\]"):
        load_competition(root)
    root = make_competition(tmp_path / "test", SIMPLE_TRAIN, test={"id": ["t1", "t2", "t1"]})
    with pytest.raises(DataError, match=r"test\.csv: duplicate ids \['t1'\]"):
        load_competition(root)


def test_test_ids_without_images(tmp_path):
    root = make_competition(tmp_path, SIMPLE_TRAIN, test={"id": ["t1", "t2", "t3"]},
                            image_ids=[*SIMPLE_TRAIN["id"], "t2"])
    with pytest.raises(DataError, match=r"test\.csv.*no image.*\['t1', 't3'\]"):
        load_competition(root)


def test_bad_one_hot_values_name_the_ids(tmp_path):
    root = make_competition(tmp_path, {"id": list("abc"), "x": [1, 0, 2], "y": [0, 1, 0]})
    with pytest.raises(DataError, match=r"train\.csv.*\['x'\].*0/1.*\['c'\]"):
        load_competition(root, label_cols=["x", "y"])
    # without label_cols= the 2 means this is not recognisable as one-hot at all
    with pytest.raises(DataError, match=r"train\.csv.*cannot tell the label column"):
        load_competition(root)


def test_one_hot_class_without_positives_only_warns(tmp_path):
    root = make_competition(tmp_path, {"id": list("abc"), "x": [1, 0, 1], "y": [0, 1, 0], "z": [0, 0, 0]})
    with pytest.warns(UserWarning, match=r"no positive.*\['z'\]"):
        comp = load_competition(root)
    assert comp.classes == ["x", "y", "z"] and comp.Y[:, 2].sum() == 0


def test_unknown_labels_against_sample_submission_columns(tmp_path):
    test = {"id": ["t1", "t2"]}
    columns = {"id": ["t1", "t2"], "x": [0.5, 0.5], "y": [0.5, 0.5], "w": [0.5, 0.5]}
    root = make_competition(tmp_path / "bad", SIMPLE_TRAIN, test=test, sample_submission=columns)
    with pytest.raises(DataError, match=r"sample_submission\.csv.*\['z'\].*\['w'\]"):
        load_competition(root)
    good = {"id": ["t1", "t2"], "x": [0.5, 0.5], "y": [0.5, 0.5], "z": [0.5, 0.5]}
    root = make_competition(tmp_path / "good", SIMPLE_TRAIN, test=test, sample_submission=good)
    assert load_competition(root).classes == ["x", "y", "z"]


def test_sample_submission_ids_must_be_the_test_ids(tmp_path):
    root = make_competition(tmp_path, SIMPLE_TRAIN, test={"id": ["t1", "t2"]},
                            sample_submission={"id": ["t1", "t9"], "label": ["x", "x"]})
    with pytest.raises(DataError, match=r"sample_submission\.csv vs .*test\.csv.*\['t2', 't9'\]"):
        load_competition(root)


@pytest.mark.parametrize("name", ["fold", "id"])
def test_class_named_like_an_oof_column_is_rejected(tmp_path, name):
    root = make_competition(tmp_path, {"image_id": list("abc"), "label": ["x", name, "x"]},
                            image_ids=list("abc"))
    with pytest.raises(DataError, match=rf"train\.csv.*\['{name}'\]"):
        load_competition(root)


def test_empty_label_row_in_multiclass_names_the_id(tmp_path):
    root = make_competition(tmp_path, {"id": list("abcd"), "label": ["x", "", "y", "x"]})
    with pytest.raises(DataError, match=r"train\.csv.*exactly one label.*no label \['b'\]"):
        load_competition(root)
    assert load_competition(root, task=MULTILABEL).Y[1].sum() == 0  # fine when declared multi-label


def test_several_labels_in_multiclass_names_the_ids(tmp_path):
    data = bccd_subset(tmp_path / "bccd", n_train=20, n_test=4)
    (data / "sample_submission.csv").unlink()  # its placeholders ("RBC WBC") are no multi-class label
    # declared multi-class, a cell is one class name, spaces and all ("Acer rubrum")
    assert "RBC WBC NEUTROPHIL" in load_competition(data, task=MULTICLASS).classes
    with pytest.raises(DataError, match=r"train\.csv.*several labels \['BloodImage_00000'"):
        load_competition(data, task=MULTICLASS, label_sep="space")


def test_bad_task_and_missing_label_column(tmp_path):
    root = make_competition(tmp_path, SIMPLE_TRAIN)
    with pytest.raises(DataError, match="task must be"):
        load_competition(root, task="regression")
    with pytest.raises(DataError, match=r"train\.csv: missing column\(s\) \['labels'\]"):
        load_competition(root, label_col="labels")
