"""Many backbones, their folds spread over devices: `python -m kit.cv --model A B C --devices 0,1,2,3`.

Every (run, fold) is a job, run as its own `python -m kit.cv --config <resolved config> --fold K --resume`
process on one device at a time (a GPU index, made the process's only visible GPU, or `cpu`; a device listed
twice takes two jobs at once). Each run is validated, cached and claimed once before any job starts, so the
jobs only train. A failed job is reported with its log and the others go on; running the same command again
trains only what is missing (finished folds are skipped, interrupted ones resumed). The fold that finishes a
run assembles its OOF, as `--fold` runs always do.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kit.config import TrainConfig
from kit.crossval import fold_is_done, run_cv


@dataclass
class Job:
    run: str
    fold: int
    config_file: Path
    log: Path


def parse_devices(spec: str | None) -> list[str]:
    """`0,1,3` -> GPU indices; `cpu` (or `cpu,cpu`) -> CPU slots; None -> every visible GPU, else one CPU."""
    if spec is None:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())] or ["cpu"]
    devices = [d.strip() for d in spec.split(",") if d.strip()]
    bad = [d for d in devices if d != "cpu" and not d.isdigit()]
    if not devices or bad:
        raise ValueError(f"--devices {spec!r}: expected GPU indices like 0,1,2 or cpu")
    return devices


def prepare(cfgs: list[TrainConfig], folds: list[int] | None, overwrite: bool, config_dir: Path,
            log=print) -> list[Job]:
    """Validate, cache and claim every run (in this process, before any job), then the jobs still to do."""
    names = [cfg.run_name for cfg in cfgs]
    if len(set(names)) != len(names):
        raise ValueError(f"runs would share a name: {names}; several models take no --name")
    jobs = []
    for cfg in cfgs:
        run_dir = Path(cfg.oof_dir) / cfg.run_name
        if (run_dir / "oof.csv").exists() and not overwrite:
            log(f"{cfg.run_name}: finished, skipped (--overwrite to train it again)")
            continue
        run_cv(cfg, folds_to_run=[], overwrite=overwrite, quiet=True, log=log)  # checks; trains nothing
        config_file = config_dir / f"{cfg.run_name}.json"
        config_file.write_text(json.dumps(asdict(cfg)))
        for k in folds if folds is not None else range(cfg.folds):
            if not fold_is_done(run_dir, k):
                jobs.append(Job(cfg.run_name, k, config_file, run_dir / f"fold{k}.log"))
    return jobs


def job_command(job: Job, device: str) -> tuple[list[str], dict]:
    env = dict(os.environ)
    flags = ["--device", "cpu"] if device == "cpu" else ["--device", "cuda"]
    if device != "cpu":
        env["CUDA_VISIBLE_DEVICES"] = device  # the job sees one GPU, as cuda:0
    return [sys.executable, "-m", "kit.cv", "--config", str(job.config_file), "--fold", str(job.fold), "--resume",
            "--quiet", *flags], env


def cpu_threads(devices: list[str]) -> str | None:
    """Threads per CPU job: the cores split between the CPU slots, unless OMP_NUM_THREADS says otherwise."""
    slots = devices.count("cpu")
    if not slots or "OMP_NUM_THREADS" in os.environ:
        return None
    return str(max(1, (os.cpu_count() or 1) // slots))


def run_jobs(jobs: list[Job], devices: list[str], log=print, poll: float = 0.5) -> list[Job]:
    """Run the jobs over the device slots; returns the jobs that failed."""
    pending, running, failed = list(jobs), {}, []
    threads = cpu_threads(devices)
    while pending or running:
        for slot, device in enumerate(devices):
            if slot not in running and pending:
                job = pending.pop(0)
                command, env = job_command(job, device)
                if device == "cpu" and threads:
                    env["OMP_NUM_THREADS"] = threads
                job.log.parent.mkdir(parents=True, exist_ok=True)
                handle = open(job.log, "a")
                running[slot] = (job, subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT),
                                 handle, time.perf_counter())
                log(f"[{device}] {job.run} fold {job.fold}: started ({len(pending)} waiting)")
        time.sleep(poll)
        for slot, (job, proc, handle, started) in list(running.items()):
            if proc.poll() is None:
                continue
            handle.close()
            del running[slot]
            seconds = time.perf_counter() - started
            if proc.returncode == 0:
                log(f"[{devices[slot]}] {job.run} fold {job.fold}: done in {seconds:.0f}s")
            else:
                failed.append(job)
                log(f"[{devices[slot]}] {job.run} fold {job.fold}: FAILED (exit {proc.returncode}) after "
                    f"{seconds:.0f}s; log: {job.log}")
    return failed


def schedule(cfgs: list[TrainConfig], devices: list[str], folds: list[int] | None = None, overwrite: bool = False,
             log=print) -> int:
    """Train every fold of every run over `devices`; 0 when all finished, 1 when a job failed."""
    with tempfile.TemporaryDirectory(prefix="kit-schedule-") as config_dir:
        jobs = prepare(cfgs, folds, overwrite, Path(config_dir), log)
        log(f"{len(jobs)} fold job(s) of {len(cfgs)} run(s) over {len(devices)} device slot(s): {','.join(devices)}")
        failed = run_jobs(jobs, devices, log)
    for cfg in cfgs:
        run_dir = Path(cfg.oof_dir) / cfg.run_name
        missing = [k for k in range(cfg.folds) if not fold_is_done(run_dir, k)]
        log(f"{cfg.run_name}: " + ("finished" if not missing else f"folds {missing} still to run"))
    if failed:
        log(f"{len(failed)} job(s) failed; run the same command again to retry them (finished folds are kept)")
    return 1 if failed else 0
