"""kit.tune hparams: trains through kit.cv's code, reports every epoch, resumes from its storage, starts from
the kit's defaults, and writes a config that kit.cv retrains on all folds."""
from __future__ import annotations

import optuna
import pandas as pd
import pytest

from kit.config import TrainConfig, load_config
from kit.tune.hparams import default_trial, main as hparams_main, suggest
from kit.runs import read_json

TINY = ["--model", "test_resnet", "--folds", "2", "--epochs", "2", "--img-size", "32"]


def journal(path) -> optuna.storages.JournalStorage:
    """The default storage: Optuna's journal file."""
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


@pytest.fixture
def hp_args(tmp_path, cache_dir, small_bccd):
    def args(*extra):
        return [*TINY, "--data", str(small_bccd), "--tune-dir", str(tmp_path / "tune"),
                "--folds-dir", str(tmp_path / "folds"), "--cache-dir", str(cache_dir),
                "--study", "s", "--pruner", "none", *extra]
    return args


def test_study_resumes_from_storage_and_starts_from_defaults(tmp_path, hp_args):
    assert hparams_main(hp_args("--trials", "1")) == 0
    assert hparams_main(hp_args("--trials", "2")) == 0   # same storage: continues to 2 trials, does not restart
    study = optuna.load_study(study_name="s", storage=journal(tmp_path / "tune" / "s.log"))
    assert len(study.trials) == 2
    first = study.trials[0]
    defaults = TrainConfig()
    overrides = first.user_attrs["config"]
    assert overrides["lr"] == defaults.lr and overrides["opt"] == defaults.opt
    assert overrides["drop_rate"] is None and overrides["balance"] == defaults.balance
    # fixed flags are not searched; every epoch of the trial was reported to the pruner
    assert "epochs" not in overrides and "img_size" not in overrides
    assert sorted(first.intermediate_values) == [1, 2]
    summary = read_json(tmp_path / "tune" / "s-summary.json")
    assert summary["n_trials"] == 2 and summary["best_value"] == study.best_value


def test_tuned_config_round_trips_into_kit_cv(tmp_path, hp_args):
    from kit.cv import main as cv_main

    assert hparams_main(hp_args("--trials", "2")) == 0
    tuned_path = tmp_path / "tune" / "s.json"
    tuned = load_config(tuned_path)
    study = optuna.load_study(study_name="s", storage=journal(tmp_path / "tune" / "s.log"))
    for key, value in study.best_trial.user_attrs["config"].items():
        assert getattr(tuned, key) == value
    oof_dir = tmp_path / "oof"
    assert cv_main(["--config", str(tuned_path), "--oof-dir", str(oof_dir), "--quiet"]) == 0
    run_dir = oof_dir / tuned.run_name
    train = read_json(run_dir / "config.json")["train"]
    assert train["lr"] == tuned.lr and train["model"] == "test_resnet" and train["oof_dir"] == str(oof_dir)
    oof = pd.read_csv(run_dir / "oof.csv")
    assert len(oof) == 80 and sorted(oof["fold"].unique()) == [0, 1]


def test_search_space_holds_the_defaults_and_respects_fixed_keys():
    base = TrainConfig(model="vit_tiny_patch16_224", lr=0.5, opt="adamw")
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial(default_trial(base, {"epochs"}))
    trial = study.ask()
    params = suggest(trial, base, {"epochs"})
    assert params["lr"] == 0.5  # outside the family's usual range, still reachable as trial 0
    assert "epochs" not in params
    for _ in range(20):  # later trials stay in the family's range for their optimizer
        params = suggest(study.ask(), base, {"epochs"})
        assert 1e-5 <= params["lr"] <= (1e-3 if params["opt"] == "lion" else 0.5)


def test_bad_fold_is_refused_before_any_trial(tmp_path, hp_args, capsys):
    assert hparams_main(hp_args("--folds-to-use", "5")) == 2
    assert "folds-to-use" in capsys.readouterr().err
    assert not (tmp_path / "tune" / "s.log").exists()
