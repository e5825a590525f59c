"""Four competitions as Kaggle ships them, built by the test, each run end to end through the CLIs:
kit.cv (two tiny runs) -> kit.tune thresholds -> kit.blend -> submission in the sample's own columns and
id order -> kit.score against the competition's solution.csv."""
from __future__ import annotations

import pandas as pd
import pytest
from competitions import hpa_competition, image_folder_competition, imet_competition, planet_competition

from kit import blend, cv, score, tune

COMPETITIONS = {
    # name: (builder, extra kit.cv flags)
    "hpa": (hpa_competition, ["--channels", "red", "green", "blue", "yellow"]),
    "imet": (imet_competition, []),
    "planet": (planet_competition, []),
    "imagefolder": (image_folder_competition, []),
}


def split_labels(cell: str) -> set[str]:
    return set(cell.split())


@pytest.mark.parametrize("name", sorted(COMPETITIONS))
def test_competition_end_to_end(tmp_path, cv_args, name, capsys):
    build, flags = COMPETITIONS[name]
    data = build(tmp_path / name)
    for run, seed in (("a", "1"), ("b", "2")):
        assert cv.main(cv_args(data, run, "--seed", seed, *flags)) == 0
    dirs = ["--oof-dir", str(tmp_path / "oof"), "--tune-dir", str(tmp_path / "tune")]
    tune.main(["thresholds", "--run", "a", "b", *dirs])
    blend.main(["--runs", "a", "b", "--name", "blend", *dirs, "--submissions-dir", str(tmp_path / "subs")])

    sample = pd.read_csv(data / "sample_submission.csv", dtype=str, keep_default_na=False)
    sub = pd.read_csv(tmp_path / "subs" / "blend.csv", dtype=str, keep_default_na=False)
    assert list(sub.columns) == list(sample.columns)
    assert sub.iloc[:, 0].tolist() == sample.iloc[:, 0].tolist()
    solution = pd.read_csv(data / "solution.csv", dtype=str, keep_default_na=False)
    vocabulary = set().union(*map(split_labels, solution.iloc[:, 1])) | set(
        pd.read_csv(tmp_path / "oof" / "blend" / "oof.csv", nrows=0).columns[2:])
    assert all(split_labels(cell) <= vocabulary for cell in sub.iloc[:, 1])
    if name == "imagefolder":
        assert all(len(split_labels(cell)) == 1 for cell in sub.iloc[:, 1])  # one class per row

    capsys.readouterr()
    scores = score.main([str(tmp_path / "subs" / "blend.csv"), "--solution", str(data / "solution.csv")])
    assert 0.0 <= scores["macro_f1"] <= 1.0
    if name == "hpa":  # its solution carries Kaggle's Usage column
        assert set(scores["by_usage"]) == {"Public", "Private"}
        assert "Public: " in capsys.readouterr().out
