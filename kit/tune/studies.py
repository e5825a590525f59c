"""An Optuna study shared by several tuning workers: where it is stored, how a dead worker's trial is noticed
and retried, and the loop that runs trials until the whole study (not each worker) has enough of them.

Storages: `journal:PATH` (Optuna's JournalStorage on a file: many processes, one machine or several sharing
a disk, no server) or any SQLAlchemy URL (`sqlite:///tune/s.db`, `postgresql+psycopg://user@host/db`).

Heartbeats: Optuna 5 implements them for RDBStorage only, and RDBStorage never fails a RUNNING trial that
has no heartbeat row (e.g. one left by a worker killed before heartbeats were on). Here both storages keep
the heartbeat as a trial system attribute, and a RUNNING trial is stale when neither its last heartbeat nor
its start is within the grace period, so every storage, and every old stuck trial, is handled the same way.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.exceptions import DuplicatedStudyError, ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

# Optuna >= 4.9 renamed RetryFailedTrialCallback (now a deprecated alias) to RetryHeartbeatStaleTrialCallback
RetryStaleTrial = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) \
    or optuna.storages.RetryFailedTrialCallback

JOURNAL = "journal:"
HEARTBEAT_ATTR = "kit:heartbeat"   # unix time of the trial's last heartbeat
RETRY_HISTORY = "retry_history"    # set by the retry callback on the new trial: numbers of the trials it retries


def default_storage(tune_dir: Path, study: str) -> str:
    """`journal:tune/<study>.log`, unless a study of an older kit lives in `tune/<study>.db` (sqlite)."""
    db, log = tune_dir / f"{study}.db", tune_dir / f"{study}.log"
    if db.exists() and log.exists():
        raise ValueError(f"both {db} and {log} exist: pass --storage to say which study to continue")
    return f"sqlite:///{db}" if db.exists() else f"{JOURNAL}{log}"


def check_storage_spec(spec: str) -> None:
    if not (spec.startswith(JOURNAL) and len(spec) > len(JOURNAL)) and "://" not in spec:
        raise ValueError(f"--storage {spec!r}: expected journal:PATH or a database URL "
                         "(sqlite:///tune/s.db, postgresql+psycopg://user:password@host/db)")


@dataclass(frozen=True)
class Heartbeat:
    interval: float | None      # seconds between heartbeats of a running trial; None: no heartbeats
    grace: float                # a RUNNING trial silent for longer than this is failed
    on_stale: Callable[[optuna.Study, FrozenTrial], None] | None = None   # called with each failed one


def last_sign_of_life(trial: FrozenTrial) -> float:
    start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return max(start, trial.system_attrs.get(HEARTBEAT_ATTR, 0.0))  # a retry inherits its dead trial's beat


class SystemAttrHeartbeat(BaseHeartbeat):
    """Optuna's heartbeat interface for any storage; the concrete class sets `self.heartbeat`."""
    heartbeat: Heartbeat

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except UpdateFinishedTrialError:
            pass  # another worker already judged this trial dead
        except Exception as err:  # a busy database must not kill the heartbeat thread; it beats again later
            optuna.logging.get_logger(__name__).warning(f"heartbeat of trial id {trial_id} not recorded: {err}")

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [t._trial_id for t in running if now - last_sign_of_life(t) > self.heartbeat.grace]

    def get_heartbeat_interval(self) -> float | None:
        return self.heartbeat.interval

    def get_heartbeat_stale_trial_callback(self):
        return self.heartbeat.on_stale


class HeartbeatJournalStorage(SystemAttrHeartbeat, JournalStorage):
    def __init__(self, path: str | Path, heartbeat: Heartbeat) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(JournalFileBackend(str(path)))
        self.heartbeat = heartbeat


class HeartbeatRDBStorage(SystemAttrHeartbeat, RDBStorage):
    def __init__(self, url: str, heartbeat: Heartbeat) -> None:
        super().__init__(url)   # RDBStorage's own heartbeat stays off: ours overrides its methods
        self.heartbeat = heartbeat


def open_storage(spec: str, heartbeat: Heartbeat) -> optuna.storages.BaseStorage:
    check_storage_spec(spec)
    if spec.startswith(JOURNAL):
        return HeartbeatJournalStorage(spec[len(JOURNAL):], heartbeat)
    return HeartbeatRDBStorage(spec, heartbeat)


def create_or_load(storage, name: str, direction: str, seed: int | None, pruner: optuna.pruners.BasePruner,
                   first_trial: dict, wait: float = 60.0) -> optuna.Study:
    """The study `name`, with `first_trial` enqueued as trial 0 exactly once however many workers start
    together: creating a study is atomic in both storages, so only its creator enqueues. The creator samples
    with `seed` (a fresh study run by one worker is reproducible); any other worker draws its own seed, so
    parallel or resumed workers do not repeat each other's samples."""
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction, pruner=pruner,
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        study.enqueue_trial(first_trial)
        return study
    except DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner,
                                  sampler=optuna.samplers.TPESampler())
    deadline = time.monotonic() + wait
    while not study.get_trials(deepcopy=False) and time.monotonic() < deadline:
        time.sleep(0.1)   # its creator is enqueueing trial 0 right now
    if not study.get_trials(deepcopy=False):   # its creator died between creating and enqueueing
        study.enqueue_trial(first_trial)
    return study


def retried_numbers(trials: list[FrozenTrial]) -> set[int]:
    return {n for t in trials for n in t.system_attrs.get(RETRY_HISTORY, [])}


def counted_trials(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that used up one of the study's `--trials`: complete, pruned, or failed without a retry."""
    retried = retried_numbers(trials)
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and t.number not in retried)]


def first_trial_value(trials: list[FrozenTrial]) -> float | None:
    """The value of trial 0 (the kit's defaults), or of its retry when trial 0's worker died."""
    for t in trials:
        if t.state == TrialState.COMPLETE and (t.number == 0 or 0 in t.system_attrs.get(RETRY_HISTORY, [])):
            return t.value
    return None


def retry_stale_trial(max_retry: int, trial_dir: Callable[[int], Path]):
    """The heartbeat's callback: enqueue a dead worker's trial again (up to `max_retry` times; the retry
    gets a new number, so a new `trial_dir`) and drop the checkpoints the dead one left."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        retry = RetryStaleTrial(max_retry=max_retry)

    def on_stale(study: optuna.Study, trial: FrozenTrial) -> None:
        retry(study, trial)
        for ckpt in trial_dir(trial.number).glob("fold*/*.pt"):
            ckpt.unlink(missing_ok=True)
    return on_stale


def fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def run_worker(study: optuna.Study, objective, n_trials: int, timeout: float | None,
               catch: tuple[type[Exception], ...], poll: float | None) -> None:
    """Run trials until the study holds `n_trials` counted ones, whoever ran them. When the rest are running
    in other workers, wait (checking every `poll` seconds) until they finish, or go stale and come back as
    retries to run here; without heartbeats (`poll` None) a dead worker's trial would be waited on forever,
    so return instead. A trial starts only when the study still needs one, so K workers overshoot by at
    most K-1 trials, when they decide at the same instant."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        trials = study.get_trials(deepcopy=False)
        done = len(counted_trials(trials))
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if done >= n_trials:
            return
        if done + running < n_trials:   # optimize runs a waiting (enqueued or retried) trial first
            study.optimize(objective, n_trials=1, catch=catch)
        elif poll is None:
            return
        else:
            fail_stale_trials(study)
            time.sleep(poll)


def spawn_workers(module: str, argv: list[str], workers: int) -> int:
    """`python -m module *argv --workers 1` in `workers` local processes with the CPU's threads split between
    them (unless OMP_NUM_THREADS is set); 0 when every one exits cleanly, else 1."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    root = str(Path(__file__).resolve().parents[1])   # this kit, wherever the command was started
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    procs = [subprocess.Popen([sys.executable, "-m", module, *argv, "--workers", "1"], env=env)
             for _ in range(workers)]
    codes = [p.wait() for p in procs]
    for p, code in zip(procs, codes):
        if code:
            print(f"worker pid {p.pid} exited with {code}", file=sys.stderr)
    return 1 if any(codes) else 0
