"""kit.tune hparams workers sharing one study: two worker processes on a journal file, one SIGKILLed mid-trial;
its trial is failed by the heartbeat and retried by the other, the study reaches its trial count, the default
trial is enqueued once. `--workers K` counts trials for the study, not per worker. A study that an older kit
left in its default sqlite file is found, continued, and its stuck trial retried."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from competitions import bccd_subset
from conftest import ROOT

from kit.config import TrainConfig
from kit.tune.hparams import default_trial, main as hparams_main, suggest
from kit.runs import read_json
from kit.tune.studies import HEARTBEAT_ATTR, counted_trials, retried_numbers

State = optuna.trial.TrialState
TRIALS = 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return bccd_subset(tmp_path_factory.mktemp("data") / "bccd60", n_train=60, n_test=8)


@pytest.fixture
def worker_args(tmp_path, cache_dir, data):
    def args(*extra):
        return ["--model", "test_resnet", "--folds", "2", "--img-size", "32", "--data", str(data),
                "--tune-dir", str(tmp_path / "tune"), "--folds-dir", str(tmp_path / "folds"),
                "--cache-dir", str(cache_dir), "--study", "w", "--pruner", "none", *extra]
    return args


def start_worker(argv: list[str], log_path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "kit.tune", "hparams", *argv], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def journal_study(path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name="w", storage=storage)


def pid_of(trial) -> int:
    return int(trial.user_attrs["worker"].rsplit(":", 1)[1])


def first_trained_epoch(journal, workers: list[subprocess.Popen], logs, timeout: float = 300):
    """The first RUNNING trial seen with one epoch reported (its checkpoints are on disk, epochs remain)."""
    deadline, study = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        for w, log in zip(workers, logs):
            assert w.poll() is None, f"worker ended (rc {w.returncode}) before a trial ran:\n{log.read_text()}"
        if study is None and journal.exists():
            try:
                study = journal_study(journal)
            except KeyError:   # the journal exists, the study is being created
                pass
        for trial in study.get_trials(states=(State.RUNNING,)) if study else []:
            if trial.intermediate_values and "config" in trial.user_attrs:
                return study, trial
        time.sleep(0.02)
    raise AssertionError(f"no trial trained an epoch within {timeout}s")


def test_killed_worker_trial_is_retried_and_study_reaches_its_count(tmp_path, worker_args):
    journal = tmp_path / "tune" / "w.log"
    argv = worker_args("--epochs", "3", "--trials", str(TRIALS), "--storage", f"journal:{journal}",
                       "--heartbeat", "1", "--grace-period", "3")
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    workers = [start_worker(argv, log) for log in logs]   # started together: both race to create the study
    try:
        study, victim_trial = first_trained_epoch(journal, workers, logs)
        victim = next(w for w in workers if w.pid == pid_of(victim_trial))
        survivor, survivor_log = next((w, log) for w, log in zip(workers, logs) if w is not victim)
        # not while it writes the journal: a lock left by a dead writer stalls the others for 30s (Optuna's
        # lock grace period). Still mid-trial: the lock is held for milliseconds, epochs remain.
        while os.path.lexists(f"{journal}.lock"):
            time.sleep(0.001)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        killed = study.trials[victim_trial.number]
        assert killed.state == State.RUNNING, "the trial ended before the kill: it was not killed mid-trial"
        killed_dir = tmp_path / "tune" / "w" / f"trial-{killed.number}"
        assert (killed_dir / "fold0" / "last.pt").exists()   # what a dead trial leaves behind
        assert survivor.wait(timeout=600) == 0, survivor_log.read_text()
    finally:
        for w in workers:
            if w.poll() is None:   # a failed wait above: never leave a worker running
                w.kill()
                w.wait()

    trials = journal_study(journal).trials
    assert len(counted_trials(trials)) == TRIALS
    assert all(t.state == State.COMPLETE or (t.state == State.FAIL and t.number in retried_numbers(trials))
               for t in trials), [(t.number, t.state) for t in trials]
    # the killed trial was failed by the survivor's heartbeat check and run again, same params, new folder
    killed = trials[killed.number]
    assert killed.state == State.FAIL and HEARTBEAT_ATTR in killed.system_attrs
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed.number)
    assert retry.state == State.COMPLETE and retry.params == killed.params
    assert pid_of(retry) == survivor.pid
    assert (tmp_path / "tune" / "w" / f"trial-{retry.number}" / "fold0" / "oof.csv").exists()
    assert not list(killed_dir.rglob("*.pt"))   # the dead trial's checkpoints were dropped with it
    # the defaults were enqueued once, as trial 0, although both workers started on an empty journal
    enqueued = [t.number for t in trials if "fixed_params" in t.system_attrs and "failed_trial" not in t.system_attrs]
    assert enqueued == [0]
    assert trials[0].system_attrs["fixed_params"] == default_trial(TrainConfig(model="test_resnet", folds=2,
                                                                               img_size=32, epochs=3),
                                                                               {"epochs", "img_size"})
    summary = read_json(tmp_path / "tune" / "w-summary.json")
    assert summary["n_counted"] == TRIALS and summary["n_retried"] >= 1 and summary["n_failed"] >= 1


def test_workers_flag_runs_the_study_count_across_processes(tmp_path, worker_args):
    assert hparams_main(worker_args("--epochs", "1", "--trials", "2", "--workers", "2")) == 0
    trials = journal_study(tmp_path / "tune" / "w.log").trials   # the default storage: a journal file
    assert [t.state for t in trials] == [State.COMPLETE, State.COMPLETE]   # 2 for the study, not 2 each
    assert all(pid_of(t) != os.getpid() for t in trials)   # trained in the worker processes
    assert (tmp_path / "tune" / "w.json").exists()


def test_study_of_an_older_kit_in_sqlite_is_continued_and_its_stuck_trial_retried(tmp_path, worker_args):
    db = tmp_path / "tune" / "w.db"
    db.parent.mkdir()
    # what the older kit left: its default sqlite study, the defaults done, a trial whose worker was killed
    # (RUNNING forever, without heartbeats)
    base = TrainConfig(model="test_resnet", folds=2, img_size=32, epochs=1)
    old = optuna.create_study(study_name="w", storage=f"sqlite:///{db}", direction="maximize")
    old.enqueue_trial(default_trial(base, {"epochs", "img_size"}))
    first = old.ask()
    first.set_user_attr("config", suggest(first, base, {"epochs", "img_size"}))
    old.tell(first, 0.5)
    stuck = old.ask()

    assert hparams_main(worker_args("--epochs", "1", "--trials", "2", "--heartbeat", "0.2",
                                    "--grace-period", "1")) == 0
    assert not (tmp_path / "tune" / "w.log").exists()   # no new journal study beside the old one
    trials = optuna.load_study(study_name="w", storage=f"sqlite:///{db}").trials
    assert [t.state for t in trials] == [State.COMPLETE, State.FAIL, State.COMPLETE]
    assert trials[1].number == stuck.number and trials[2].system_attrs["failed_trial"] == stuck.number
    assert read_json(tmp_path / "tune" / "w-summary.json")["n_counted"] == 2


def test_unusable_storage_or_heartbeat_is_refused_before_any_trial(tmp_path, worker_args, capsys):
    assert hparams_main(worker_args("--storage", "tune/w.log")) == 2   # neither journal: nor a URL
    assert "journal:PATH" in capsys.readouterr().err
    assert hparams_main(worker_args("--heartbeat", "5", "--grace-period", "5")) == 2
    assert "every running trial would look dead" in capsys.readouterr().err
    (tmp_path / "tune").mkdir()
    (tmp_path / "tune" / "w.db").touch()
    (tmp_path / "tune" / "w.log").touch()
    assert hparams_main(worker_args()) == 2   # two studies of that name: which one is meant?
    assert "pass --storage" in capsys.readouterr().err
    assert hparams_main(worker_args("--storage", "postgresql://nobody@127.0.0.1:9/none")) == 2
    assert "cannot open --storage" in capsys.readouterr().err
    assert not list((tmp_path / "tune").glob("w/*"))
