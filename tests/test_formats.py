"""Label and submission formats users bring: label columns in any case, separators, multi-word class
names, integer labels, the sample's own columns (one prediction column, probabilities, long format), test
ids without test.csv, train/ + test/ folders, ImageFolder, and the Usage column of a solution."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from competitions import digit_images, image_folder_competition, write_images

from kit.data import DataError, load_competition
from kit.data.sample import LABELS, LONG, PROBABILITIES
from kit.metrics import MULTICLASS, MULTILABEL
from kit.score import main as score_main
from kit.score import score_submission
from kit.submission import submission_frame


def folder(root, train: dict, test_ids=None, sample: dict | None = None, image_dir="images", id_col="id",
           more_images=()):
    """A competition with real digit pixels: train.csv from `train`, optional test.csv and sample."""
    images = digit_images(16)[0]
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(train).to_csv(root / "train.csv", index=False)
    ids = list(train[id_col]) + list(test_ids or []) + list(more_images)
    write_images(root / image_dir, ids, images[: len(ids)])
    if test_ids is not None:
        pd.DataFrame({id_col: test_ids}).to_csv(root / "test.csv", index=False)
    if sample is not None:
        pd.DataFrame(sample).to_csv(root / "sample_submission.csv", index=False)
    return root


@pytest.mark.parametrize("column", ["Target", "TAGS", "attribute_ids", "Class", "category", "Species"])
def test_label_column_found_by_name_in_any_case(tmp_path, column):
    comp = load_competition(folder(tmp_path, {"id": ["a", "b", "c"], column: ["x", "y", "x"],
                                              "width": ["3", "4", "5"]}))
    assert comp.label_cols == [column] and comp.classes == ["x", "y"]


def test_a_single_unnamed_column_is_the_label_column(tmp_path):
    comp = load_competition(folder(tmp_path, {"id": ["a", "b", "c"], "whatever": ["x", "y", "x"]}))
    assert (comp.label_cols, comp.task) == (["whatever"], MULTICLASS)


@pytest.mark.parametrize("sep", [" ", ",", ";", "|"])
def test_separators_are_detected(tmp_path, sep):
    cells = [f"cat{sep}dog", "dog", f"bird{sep}cat{sep}dog"]
    comp = load_competition(folder(tmp_path, {"id": ["a", "b", "c"], "labels": cells}))
    assert (comp.task, comp.label_sep, comp.classes) == (MULTILABEL, sep, ["bird", "cat", "dog"])
    np.testing.assert_array_equal(comp.Y, [[0, 1, 1], [0, 0, 1], [1, 1, 1]])


def test_comma_separated_names_with_spaces_keep_their_spaces(tmp_path):
    cells = ["Acer rubrum, Quercus alba", "Quercus alba", "Acer rubrum"]
    comp = load_competition(folder(tmp_path, {"id": ["a", "b", "c"], "tags": cells}))
    assert comp.classes == ["Acer rubrum", "Quercus alba"] and comp.Y.sum() == 4


def test_mixed_separators_are_an_error_naming_rows(tmp_path):
    root = folder(tmp_path, {"id": ["a", "b", "c"], "labels": ["x,y", "y;z", "x"]})
    with pytest.raises(DataError, match=r"train\.csv.*mix separators.*',' at ids \['a'\].*';' at ids \['b'\]"):
        load_competition(root)
    assert load_competition(root, label_sep="comma").classes == ["x", "y", "y;z"]


def test_multiword_class_names_are_one_class(tmp_path):
    names = ["Acer rubrum", "Quercus alba", "Acer saccharum", "Quercus rubra"]
    train = {"id": list("abcdefgh"), "species": names * 2}
    comp = load_competition(folder(tmp_path / "detected", train))
    assert (comp.task, comp.label_sep, sorted(comp.classes)) == (MULTICLASS, "", sorted(names))
    # varying word counts read as labels, unless the task or the separator says otherwise
    train = {"id": list("abc"), "species": ["Acer rubrum", "Quercus alba var. alba", "Betula"]}
    root = folder(tmp_path / "forced", train)
    assert load_competition(root).task == MULTILABEL
    for kwargs in ({"task": MULTICLASS}, {"label_sep": "none"}):
        comp = load_competition(root, **kwargs)
        assert comp.task == MULTICLASS and "Quercus alba var. alba" in comp.classes


def test_integer_labels_sort_as_numbers(tmp_path):
    comp = load_competition(folder(tmp_path, {"Id": ["a", "b", "c"], "Target": ["10 2", "1", "2 0"]},
                                   id_col="Id"))
    assert comp.classes == ["0", "1", "2", "10"] and comp.id_col == "Id"


def test_sample_prediction_column_named_anything(tmp_path):
    root = folder(tmp_path, {"Id": ["a", "b", "c"], "Target": ["0 1", "1", "2"]}, test_ids=["t1", "t2"],
                  sample={"Id": ["t2", "t1"], "Predicted": ["0", "1 2"]}, id_col="Id")
    fmt = load_competition(root).submission
    assert (fmt.kind, fmt.columns, fmt.ids, fmt.sep) == (LABELS, ["Predicted"], ["t2", "t1"], " ")
    test = pd.DataFrame({"id": ["t1", "t2"], "0": [0.9, 0.1], "1": [0.2, 0.8], "2": [0.7, 0.6]})
    sub = submission_frame(test, MULTILABEL, ["0", "1", "2"], "Id", fmt, np.array([0.5, 0.5, 0.65]))
    assert sub.to_dict("list") == {"Id": ["t2", "t1"], "Predicted": ["1", "0 2"]}


def test_sample_label_unknown_to_train_is_an_error_naming_the_id(tmp_path):
    root = folder(tmp_path, {"id": ["a", "b"], "label": ["x", "y"]}, test_ids=["t1", "t2"],
                  sample={"id": ["t1", "t2"], "label": ["x", "w"]})
    with pytest.raises(DataError, match=r"sample_submission\.csv.*t2: 'w'"):
        load_competition(root)


def test_sample_separator_is_the_samples_own(tmp_path):
    root = folder(tmp_path, {"id": ["a", "b", "c"], "tags": ["x y", "y", "z"]}, test_ids=["t1"],
                  sample={"id": ["t1"], "tags": ["x|y"]})
    fmt = load_competition(root).submission
    test = pd.DataFrame({"id": ["t1"], "x": [0.9], "y": [0.9], "z": [0.1]})
    assert submission_frame(test, MULTILABEL, ["x", "y", "z"], "id", fmt)["tags"].tolist() == ["x|y"]


def test_probability_and_long_sample_formats(tmp_path):
    train = {"id": ["a", "b", "c"], "label": ["cat", "dog_big", "cat"]}
    probs = folder(tmp_path / "wide", train, test_ids=["t1", "t2"],
                   sample={"id": ["t2", "t1"], "dog_big": [0, 0], "cat": [0, 0]})
    fmt = load_competition(probs).submission
    assert (fmt.kind, fmt.columns) == (PROBABILITIES, ["dog_big", "cat"])
    test = pd.DataFrame({"id": ["t1", "t2"], "cat": [0.8, 0.3], "dog_big": [0.2, 0.7]})
    wide = submission_frame(test, MULTICLASS, ["cat", "dog_big"], "id", fmt)
    assert wide.to_dict("list") == {"id": ["t2", "t1"], "dog_big": [0.7, 0.2], "cat": [0.3, 0.8]}

    cells = ["t1_cat", "t1_dog_big", "t2_cat", "t2_dog_big"]
    long = folder(tmp_path / "long", train, sample={"ID": cells, "Label": [0.5] * 4}, more_images=["t1", "t2"])
    comp = load_competition(long)
    assert (comp.submission.kind, list(comp.test_ids)) == (LONG, ["t1", "t2"])  # no test.csv: from the sample
    out = submission_frame(test, MULTICLASS, ["cat", "dog_big"], "id", comp.submission)
    assert out.to_dict("list") == {"ID": cells, "Label": [0.8, 0.2, 0.3, 0.7]}


def test_test_ids_from_the_sample_and_images_in_train_and_test_folders(tmp_path):
    images = digit_images(16)[0]
    pd.DataFrame({"id": ["a", "b", "c"], "label": ["x", "y", "x"]}).to_csv(tmp_path / "train.csv", index=False)
    write_images(tmp_path / "train", ["a", "b", "c"], images[:3])
    write_images(tmp_path / "test", ["t1", "t2"], images[3:5])
    pd.DataFrame({"id": ["t2", "t1"], "label": "x"}).to_csv(tmp_path / "sample_submission.csv", index=False)
    comp = load_competition(tmp_path)
    assert list(comp.test_ids) == ["t2", "t1"]
    assert [p.parent.name for p in comp.train_paths] == ["train"] * 3
    assert [p.name for p in comp.test_paths] == ["t2.png", "t1.png"]


def test_missing_test_image_is_named(tmp_path):
    root = folder(tmp_path, {"id": ["a", "b"], "label": ["x", "y"]}, test_ids=["t1", "t2"])
    (root / "images" / "t2.png").unlink()
    with pytest.raises(DataError, match=r"test\.csv: ids with no image.*\['t2'\]"):
        load_competition(root)


def test_image_folder_layout(tmp_path):
    comp = load_competition(image_folder_competition(tmp_path / "f", n_train=40, n_test=10))
    assert (comp.task, comp.layout, len(comp.classes)) == (MULTICLASS, "imagefolder", 10)
    assert all(comp.classes[int(np.argmax(y))] == p.parent.name for y, p in zip(comp.Y, comp.train_paths))
    sample = pd.read_csv(tmp_path / "f" / "sample_submission.csv")
    assert list(comp.test_ids) == sample["id"].tolist()


def test_solution_usage_scores_public_and_private_apart(tmp_path, capsys):
    solution = pd.DataFrame({"id": list("abcdef"), "label": list("xxyyxy"),
                             "Usage": ["Public", "Public", "Public", "Private", "Private", "Ignored"]})
    solution.to_csv(tmp_path / "solution.csv", index=False)
    # right on Public, wrong on Private; the Ignored row is not scored (and may be absent)
    pd.DataFrame({"id": list("abcde"), "label": list("xxyxy")}).to_csv(tmp_path / "sub.csv", index=False)
    scores = score_submission(tmp_path / "sub.csv", tmp_path / "solution.csv")
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["by_usage"]["Public"]["accuracy"] == 1.0 and scores["by_usage"]["Private"]["accuracy"] == 0.0
    score_main([str(tmp_path / "sub.csv"), "--solution", str(tmp_path / "solution.csv")])
    printed = capsys.readouterr().out
    assert "Public: accuracy 1.000000" in printed and "Private: accuracy 0.000000" in printed


def test_a_bare_folder_of_images_is_a_test_set(tmp_path):
    from kit.data.competition import load_test_set

    images = digit_images(16)[0]
    write_images(tmp_path / "flat", ["b", "a"], images[:2])
    write_images(tmp_path / "nested" / "images", ["c"], images[2:3])
    flat = load_test_set(tmp_path / "flat", classes=["x", "y"], task=MULTICLASS)
    assert list(flat.ids) == ["a", "b"] and flat.submission is None and [p.name for p in flat.paths] == ["a.png", "b.png"]
    assert list(load_test_set(tmp_path / "nested", classes=["x"], task=MULTICLASS).ids) == ["c"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no test.csv, sample_submission.csv, test/ or images/ folder"):
        load_test_set(tmp_path / "empty", classes=["x"], task=MULTICLASS)
