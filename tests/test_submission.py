"""kit.submission (sample-format submissions, thresholds) and kit.score, on the sample/solution files of the
embedded bccd (multi-label) and a digits competition (multi-class)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from blend_fixtures import cli_dirs, make_project, write_folds, write_run, write_thresholds

from kit import submission
from kit.data import EMBEDDED_DATA
from kit.metrics import MULTICLASS, MULTILABEL, log_loss
from kit.runs import load_run
from kit.score import main as score_main
from kit.score import score_submission


def read_text_csv(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture
def competition_of_task(small_digits) -> dict:
    """The competition folder of each task: multi-label embedded bccd, multi-class digits."""
    return {MULTILABEL: EMBEDDED_DATA, MULTICLASS: small_digits}


def real_run(tmp_path, data: Path, task: str, seed: int = 0):
    """A synthetic run on the competition folder `data`: its classes and its sample's test ids."""
    rng = np.random.default_rng(seed)
    train = read_text_csv(data / "train.csv")
    classes = sorted({c for labels in train.iloc[:, 1] for c in labels.split()})
    test_ids = list(read_text_csv(data / "sample_submission.csv")["id"])
    rng.shuffle(test_ids)  # the submission must follow the sample's order, not test.csv's
    n = 40
    Y = np.eye(len(classes))[rng.integers(0, len(classes), n)] if task == MULTICLASS else \
        (rng.random((n, len(classes))) < 0.4).astype(float)
    folds = write_folds(tmp_path / "folds.csv", [f"t{i}" for i in range(n)], np.arange(n) % 4, Y, classes)
    P_test = rng.random((len(test_ids), len(classes)))
    if task == MULTICLASS:
        P_test /= P_test.sum(axis=1, keepdims=True)
    else:
        P_test[0] = 0.1  # a row with no class at all
    run = write_run(tmp_path / "oof", data.name, task=task, classes=classes, folds_file=folds,
                    P_oof=rng.random(Y.shape), test_ids=test_ids, P_test=P_test, data_root=data)
    return load_run(run)


def decisions(frame: pd.DataFrame, classes):
    return np.array([[c in labels.split() for c in classes] for labels in frame.iloc[:, 1]])


def submit_real(tmp_path, data: Path, task: str):
    """A synthetic run on `data` submitted at defaults; checks columns and id order against the
    sample, returns (run, submission path, submission frame, test probabilities in the sample's order)."""
    run = real_run(tmp_path, data, task)
    out = submission.write_submission(run, tmp_path / "sub.csv")
    sample, sub = read_text_csv(data / "sample_submission.csv"), read_text_csv(out)
    assert list(sub.columns) == list(sample.columns) and list(sub["id"]) == list(sample["id"])
    return run, out, sub, run.test.set_index("id").loc[sample["id"], run.classes].to_numpy()


def test_multilabel_submission_matches_the_bccd_sample(tmp_path):
    run, out, sub, P = submit_real(tmp_path, EMBEDDED_DATA, MULTILABEL)
    np.testing.assert_array_equal(decisions(sub, run.classes), P >= 0.5)
    assert sub.set_index("id").loc[run.test["id"][0], "labels"] == ""
    assert all(len(set(s.split())) == len(s.split()) for s in sub["labels"])
    assert 0 <= score_submission(out, EMBEDDED_DATA / "solution.csv")["macro_f1"] < 1


def test_multiclass_submission_matches_the_digits_sample(tmp_path, small_digits):
    run, out, sub, P = submit_real(tmp_path, small_digits, MULTICLASS)
    assert list(sub["label"]) == [run.classes[i] for i in P.argmax(axis=1)]
    assert score_submission(out, small_digits / "solution.csv")["accuracy"] < 0.5  # random predictions


def test_thresholds_file_is_applied_and_checked(tmp_path):
    run = real_run(tmp_path, EMBEDDED_DATA, MULTILABEL)
    tune = tmp_path / "tune"
    values = [0.0] * len(run.classes)
    values[run.classes.index("WBC")] = 1.01  # every class always, WBC never
    write_thresholds(tune, run.name, MULTILABEL, list(reversed(run.classes)), list(reversed(values)))
    chosen = submission.choose_thresholds(run, tune, None)
    sub = read_text_csv(submission.write_submission(run, tmp_path / "sub.csv", chosen))
    expected = " ".join(c for c in run.classes if c != "WBC")
    assert set(sub["labels"]) == {expected}
    assert submission.choose_thresholds(run, tmp_path / "elsewhere", None) is None
    bad = write_thresholds(tmp_path / "bad", run.name, MULTILABEL, run.classes[:-1] + ["OTHER"], values)
    with pytest.raises(submission.SubmissionError, match="do not match"):
        submission.write_submission(run, tmp_path / "sub2.csv", bad)


def test_multiclass_bias_thresholds_via_cli(tmp_path, small_digits):
    run = real_run(tmp_path, small_digits, MULTICLASS)
    bias = np.zeros(len(run.classes))
    bias[run.classes.index("seven")] = 100.0
    file = write_thresholds(tmp_path / "custom", "x", MULTICLASS, run.classes, bias)
    dirs = ["--oof-dir", str(tmp_path / "oof"), "--tune-dir", str(tmp_path / "tune"),
            "--submissions-dir", str(tmp_path / "subs")]
    submission.main([run.name, *dirs, "--thresholds", str(file)])
    assert set(read_text_csv(tmp_path / "subs" / f"{run.name}.csv")["label"]) == {"seven"}
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        submission.main([run.name, *dirs])


def test_probability_sample_and_no_sample(tmp_path):
    p = make_project(tmp_path, MULTILABEL, n_runs=1, sample="onehot")
    run = load_run(p["oof_dir"] / "run0")
    sub = pd.read_csv(submission.write_submission(run, tmp_path / "onehot.csv"), dtype={"id": str})
    sample = pd.read_csv(p["root"] / "sample_submission.csv", dtype={"id": str})
    assert list(sub.columns) == list(sample.columns) == ["id", *reversed(p["classes"])]
    expected = run.test.set_index("id").loc[sample["id"], list(sample.columns[1:])].to_numpy()
    np.testing.assert_allclose(sub.iloc[:, 1:].to_numpy(), expected, rtol=1e-6)
    (p["root"] / "sample_submission.csv").unlink()
    plain = pd.read_csv(submission.write_submission(run, tmp_path / "plain.csv"), dtype={"id": str})
    pd.testing.assert_frame_equal(plain, run.test, rtol=1e-6)


def test_sample_ids_missing_from_predictions_are_named(tmp_path):
    p = make_project(tmp_path, MULTICLASS, n_runs=1)
    sample = pd.read_csv(p["root"] / "sample_submission.csv")
    pd.concat([sample, pd.DataFrame({"id": ["ghost_1"], "label": ["class_0"]})]).to_csv(
        p["root"] / "sample_submission.csv", index=False)
    with pytest.raises(submission.SubmissionError, match="ghost_1"):
        submission.write_submission(load_run(p["oof_dir"] / "run0"), tmp_path / "sub.csv")
    assert not (tmp_path / "sub.csv").exists()


@pytest.mark.parametrize("task", [MULTILABEL, MULTICLASS])
def test_score_is_one_for_the_solution_and_lower_when_corrupted(tmp_path, competition_of_task, task):
    solution = competition_of_task[task] / "solution.csv"
    perfect = score_main([str(solution), "--solution", str(solution)])
    expected = {"macro_f1", "micro_f1", "samples_f1"} if task == MULTILABEL else {"accuracy", "macro_f1"}
    assert set(perfect) == expected
    assert all(v == 1.0 for v in perfect.values())
    truth = read_text_csv(solution)
    corrupted = truth.copy()
    corrupted.iloc[::5, 1] = np.roll(truth.iloc[:, 1].to_numpy(), len(truth) // 2)[::5]  # wrong labels
    assert (corrupted.iloc[:, 1] != truth.iloc[:, 1]).sum() >= 5
    corrupted.iloc[::-1].to_csv(tmp_path / "sub.csv", index=False)  # in another row order
    worse = score_submission(tmp_path / "sub.csv", solution)
    assert set(worse) == set(perfect) and all(worse[m] < 1.0 for m in worse)


def test_score_probability_columns(tmp_path, small_digits):
    solution = read_text_csv(small_digits / "solution.csv")
    classes = sorted(set(solution["label"]))
    rng = np.random.default_rng(0)
    Y = np.array([[c == label for c in classes] for label in solution["label"]], dtype=float)
    P = 0.6 * Y + 0.4 * rng.dirichlet(np.ones(len(classes)), len(Y))
    sub = pd.DataFrame(P, columns=classes)
    sub.insert(0, "id", solution["id"])
    sub.to_csv(tmp_path / "probs.csv", index=False)
    result = score_submission(tmp_path / "probs.csv", small_digits / "solution.csv")
    assert result["accuracy"] == pytest.approx(np.mean(P.argmax(1) == Y.argmax(1)))
    assert result["log_loss"] == pytest.approx(log_loss(Y, P, MULTICLASS), rel=1e-6)


def test_score_names_missing_ids_and_exits_non_zero(tmp_path):
    solution = EMBEDDED_DATA / "solution.csv"
    read_text_csv(solution).iloc[3:].to_csv(tmp_path / "short.csv", index=False)
    first = read_text_csv(solution)["id"][0]
    with pytest.raises(SystemExit, match=f"missing.*{first}"):
        score_main([str(tmp_path / "short.csv"), "--solution", str(solution)])
    result = subprocess.run([sys.executable, "-m", "kit.score", str(tmp_path / "short.csv"), "--solution",
                             str(solution)], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode != 0 and first in result.stderr


def test_submission_written_by_blend_scores_against_a_solution(tmp_path):
    """kit.blend -> submissions/<name>.csv -> kit.score, on synthetic data whose test labels are known."""
    from kit import blend
    p = make_project(tmp_path, MULTILABEL)
    blend.main(["--method", "hill", *cli_dirs(p)])
    labels = [" ".join(c for c, y in zip(p["classes"], row) if y) for row in p["Y_test"]]
    pd.DataFrame({"id": p["test_ids"], "label": labels}).to_csv(tmp_path / "solution.csv", index=False)
    sub = p["submissions_dir"] / "blend-hill.csv"
    result = score_submission(sub, tmp_path / "solution.csv", task=MULTILABEL)
    assert result["macro_f1"] > 0.8  # the synthetic runs carry the test labels
