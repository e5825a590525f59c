"""The audit as one function: read and check everything (data, images, the run), compute every finding,
then write the CSVs and report.html (nothing is written when an input is bad)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from kit.audit import duplicates, features, hashes, label_noise, outliers, shift
from kit.audit.inputs import TEST, load_audit_data
from kit.audit.report import write_report
from kit.config import TrainConfig
from kit.runs import ID, is_complete, read_json, write_csv


class AuditError(RuntimeError):
    pass


@dataclass
class AuditResult:
    folder: Path
    counts: dict = field(default_factory=dict)    # finding -> count
    files: dict = field(default_factory=dict)     # finding -> file
    auc: float | None = None
    seconds: dict = field(default_factory=dict)   # phase -> wall seconds (bench/audit.py reads them)

    def summary_text(self, seconds: float) -> str:
        lines = [f"audit of {self.folder.name} in {seconds:.1f} s -> {self.folder}/"]
        lines += [f"  {name:<28} {count:>6}   {self.files.get(name, '')}" for name, count in self.counts.items()]
        if self.auc is not None:
            lines.append(f"  {'train/test AUC (0.5 = none)':<28} {self.auc:6.3f}   shift.csv, shift_features.csv")
        lines.append(f"  report: {self.folder / 'report.html'}")
        return "\n".join(lines)


def read_run(oof_dir: Path, name: str, comp) -> tuple[Path, dict]:
    """A finished run/blend of this competition: its config, checked against the data's train ids and classes."""
    run_dir = oof_dir / name
    if not is_complete(run_dir):
        raise AuditError(f"{run_dir}: not a finished run or blend (needs config.json and oof.csv)")
    config = read_json(run_dir / "config.json")
    if list(config["classes"]) != list(comp.classes):
        raise AuditError(f"{run_dir}: classes {config['classes']} differ from the data's {comp.classes}")
    oof_ids = set(pd.read_csv(run_dir / "oof.csv", dtype={ID: str}, usecols=[ID])[ID])
    train_ids = set(map(str, comp.train_ids))
    if oof_ids != train_ids:
        raise AuditError(f"{run_dir}/oof.csv: ids differ from the train ids of {comp.train_source} "
                         f"(e.g. {sorted(oof_ids ^ train_ids)[:10]}); was the run trained on other data?")
    return run_dir, config


def reduced(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    dims = min(dims, x.shape[1], len(x) - 1)
    return PCA(n_components=dims, random_state=seed).fit_transform(x) if dims >= 1 else x[:, :0]


def audit(cfg: TrainConfig, out_dir: Path, run: str | None, thumb_size: int, max_hamming: int,
          min_cosine: float | None, outlier_z: float, seed: int, log=print) -> AuditResult:
    from kit.crossval import load_data

    seconds, last = {}, [time.perf_counter()]

    def lap(phase: str) -> None:
        now = time.perf_counter()
        seconds[phase] = seconds.get(phase, 0.0) + now - last[0]
        last[0] = now

    comp = load_data(cfg)
    run_dir, config = read_run(Path(cfg.oof_dir), run, comp) if run else (None, None)
    lap("read data")
    data = load_audit_data(cfg, comp, thumb_size, log=log)
    lap("decode thumbnails (cache)")
    is_test = data.split == TEST
    facts = data.facts
    digests = hashes.pixel_digests(data.sources, facts, cfg.input_channels)
    lap("exact digests (full decode)")
    stats = features.image_statistics(data.thumbs, facts)
    blocks = [stats.to_numpy(dtype=np.float64), features.pixel_embedding(data.thumbs, seed=seed)]
    lap("statistics + pixel embedding")
    unit = None
    if config is not None and config.get("kind") == "run":
        from kit.audit.embeddings import centred_unit, run_embeddings

        embedded = run_embeddings(run_dir, config, data.sources, data.ids, cfg.cache_dir, cfg.device, log=log)
        unit = centred_unit(embedded)
        blocks.append(reduced(embedded, 16, seed))
        lap("embeddings of the run (fold 0)")
    X = features.standardized(*blocks)

    pairs = duplicates.find_duplicates(data, digests, hashes.phash(data.thumbs), max_hamming, unit, min_cosine)
    groups = duplicates.groups_frame(data, duplicates.clusters(data, pairs))
    lap("duplicates (phash, pairs, clusters)")
    scores = outliers.isolation_scores(X, seed)
    z = outliers.robust_z(scores)
    flagged = outliers.flag_outliers(scores, outlier_z)
    outlier_frame = pd.concat([pd.DataFrame({"id": data.ids, "split": data.split, "score": scores, "z": z,
                                             "outlier": flagged.astype(int), "row": np.arange(len(z))}),
                               stats], axis=1).sort_values("score", ascending=False, kind="stable")
    exclude = outlier_frame[(outlier_frame["outlier"] == 1) & (outlier_frame["split"] != TEST)]
    exclude = pd.DataFrame({"id": exclude["id"], "reason": "outlier"})

    lap("outliers (isolation forest)")
    shift_parts = None
    if min(is_test.sum(), (~is_test).sum()) >= 2:  # K-fold AUC needs two rows of each split
        auc, p_test = shift.adversarial_validation(X, is_test, seed=seed)
        test_like = pd.DataFrame({"id": data.ids[~is_test], "p_test": p_test[~is_test],
                                  "row": np.flatnonzero(~is_test)}).sort_values("p_test", ascending=False,
                                                                              kind="stable")
        shift_parts = {"auc": auc, "test_like": test_like, "per_feature": shift.feature_shift(stats, is_test),
                       "p_test": p_test, "is_test": is_test}
    lap("shift (adversarial validation)")
    issues = None
    if config is not None:
        oof = pd.read_csv(run_dir / "oof.csv", dtype={ID: str}).set_index(ID).loc[comp.train_ids.astype(str)]
        issues = label_noise.label_issues(comp.train_ids.astype(str), comp.Y, oof[comp.classes].to_numpy(),
                                          comp.classes, comp.task)

    # --- every input was good: write
    folder = out_dir / comp.name
    result = AuditResult(folder)
    result.files = {"duplicate pairs": "duplicates.csv", "  exact": "", "  near (phash)": "",
                    "  near (embedding)": "", "  train/test leaks": "", "  conflicting labels": "",
                    "rows in duplicate groups": "groups.csv", "outliers": "outliers.csv",
                    "  train outliers to exclude": "exclude.csv", "label issues": "label_issues.csv"}
    leaks = pairs["split_a"] != pairs["split_b"]
    result.counts = {"duplicate pairs": len(pairs), "  exact": int((pairs["kind"] == "exact").sum()),
                     "  near (phash)": int((pairs["kind"] == "phash").sum()),
                     "  near (embedding)": int((pairs["kind"] == "embedding").sum()),
                     "  train/test leaks": int(leaks.sum()),
                     "  conflicting labels": int((pairs["labels_agree"] == False).sum()),  # noqa: E712
                     "rows in duplicate groups": len(groups), "outliers": int(flagged.sum()),
                     "  train outliers to exclude": len(exclude)}
    write_csv(pairs, folder / "duplicates.csv")
    write_csv(groups, folder / "groups.csv")
    write_csv(outlier_frame.drop(columns="row"), folder / "outliers.csv")
    write_csv(exclude, folder / "exclude.csv")
    for stale in ("shift.csv", "shift_features.csv", "label_issues.csv"):
        (folder / stale).unlink(missing_ok=True)  # of an earlier audit with a test set / a run
    if shift_parts is not None:
        result.auc = shift_parts["auc"]
        write_csv(shift_parts["test_like"].drop(columns="row"), folder / "shift.csv")
        write_csv(shift_parts["per_feature"], folder / "shift_features.csv")
    if issues is not None:
        result.counts["label issues"] = len(issues)
        write_csv(issues, folder / "label_issues.csv")
    summary = [(k.strip(), v, result.files.get(k, "")) for k, v in result.counts.items()]
    if result.auc is not None:
        summary.append(("train/test AUC (0.5 = no shift)", round(result.auc, 4), "shift.csv"))
    summary = pd.DataFrame(summary, columns=["finding", "count", "file"])
    lap("label issues, csv files")
    write_report(folder, data, summary, pairs, outlier_frame, shift_parts, issues, run)
    lap("report.html")
    result.seconds = seconds
    return result
