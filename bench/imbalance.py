"""Does selective learning help rare labels? Balancing methods and the rare batch sampler on the same folds and seeds.

    .venv/bin/python bench/imbalance.py [--seeds 3] [--model resnet10t] [--img-size 48] [--epochs 6]

Datasets (--datasets):
  bccd      the multi-label competition folder as it is (rare labels: prevalence < --rare-below).
  pbc-rare  the multi-class pbc folder with a rare class made: --rare-class keeps only --rare-keep (5%) of its
            train rows, the other classes are subsampled (stratified) so train.csv has --pbc-rows rows (CPU
            budget; 0 = all); test.csv is pbc's whole test set (natural class mix). Rare classes: the reduced
            one plus any class whose share is < --rare-share x 1/C.
Every (dataset, method, seed) is one `run_cv` with the same fold split (--fold-seed); `seed` changes the
initialisation, augmentation and sampling. From each run: per-label AUC, F1@0.5 (multi-label: threshold 0.5;
multi-class: one-vs-rest F1 of the argmax) and "F1 tuned" (per-class thresholds / biases from kit.tune,
fitted for macro F1 on OOF rows the decided rows are not part of) on the OOF predictions and, where the folder
has solution.csv, on the test set (fold-mean predictions). Reweighting shifts probabilities, so F1@0.5 mixes
ranking and calibration; AUC and tuned F1 are the fairer comparisons (on the pbc-rare test set the class
prior differs from training, so decisions fitted on OOF do not transfer well there). Tables: mean +- std
(ddof 1) over seeds, and paired per-seed deltas to `none`. OOF rows come from the checkpoint chosen on the same
fold (slightly optimistic, alike for all methods); the test rows are untouched by any choice.
Methods: none, class-weight, sampler, selective, selective:<target>, rare (`--batch-sampler rare`, no
reweighting) and <balance>+rare (e.g. selective+rare: the rare sampler's batches, selectively weighted).
Augmentation follows --symmetry (default d4: these are microscopy images; runs before the option used d4);
channels_last is fixed off so no run depends on a timing. One torch thread by default (--threads).
Measured (AMD EPYC, 2 shared cores, one thread, under the heavy-job lock): 20-45 s a run; the 36 default
runs about 20 minutes.
Finished runs under --work-dir are reused, so an interrupted benchmark resumes where it stopped.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kit.config import TrainConfig, validate_config  # noqa: E402
from kit.crossval import run_cv  # noqa: E402
from kit.metrics import MULTICLASS, decide  # noqa: E402
from kit.runs import FOLD, ID, atomic_write, load_run, write_csv  # noqa: E402
from kit.score import read_table  # noqa: E402
from kit.tune.thresholds import fit_thresholds  # noqa: E402

HERE = Path(__file__).resolve().parent
DATASETS = ("bccd", "pbc-rare")
MACRO_RARE, MACRO_ALL = "macro (rare)", "macro (all)"
METRICS = {"auc": "AUC", "f1": "F1@0.5", "f1_tuned": "F1 tuned"}  # column -> table title


def make_rare_variant(source: Path, dest_root: Path, rare_class: str, keep: float, total_rows: int,
                      seed: int) -> Path:
    """A competition folder whose train.csv keeps `keep` of `rare_class`'s rows and about `total_rows` in all
    (other classes subsampled proportionally); test files are copied, images symlinked. Deterministic, so a
    folder of the same name is reused."""
    dest = dest_root / f"{source.name}-{rare_class}-keep{keep:g}-rows{total_rows}-s{seed}"
    if (dest / "train.csv").exists():
        return dest
    train = pd.read_csv(source / "train.csv", dtype=str, keep_default_na=False)
    label_col = train.columns[1]
    counts = train[label_col].value_counts()
    if rare_class not in counts:
        raise SystemExit(f"{source / 'train.csv'}: no class {rare_class!r}; classes are {sorted(counts.index)}")
    rng = np.random.default_rng(seed)
    n_rare = max(2, round(keep * counts[rare_class]))
    others = counts.drop(rare_class)
    share = 1.0 if total_rows <= 0 else min(1.0, (total_rows - n_rare) / others.sum())
    wanted = {rare_class: n_rare, **{c: max(2, round(share * n)) for c, n in others.items()}}
    picked = [rng.choice(np.flatnonzero(train[label_col] == c), n, replace=False) for c, n in wanted.items()]
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    train.iloc[np.sort(np.concatenate(picked))].to_csv(tmp / "train.csv", index=False)
    for name in ("test.csv", "sample_submission.csv", "solution.csv"):
        if (source / name).exists():
            shutil.copyfile(source / name, tmp / name)
    (tmp / "images").symlink_to((source / "images").resolve(), target_is_directory=True)
    tmp.rename(dest)
    return dest


def parse_method(spec: str) -> tuple[str, str, str]:
    """(balance, target, batch sampler): 'selective:0.5' -> ('selective', '0.5', 'plain');
    'selective+rare' -> ('selective', 'uniform', 'rare'); 'rare' alone -> ('none', 'uniform', 'rare')."""
    base, plus, extra = spec.partition("+")
    if (plus and extra != "rare") or base in ("", "+"):
        raise SystemExit(f"method {spec!r}: expected <balance>[:<target>][+rare] or rare")
    method, _, target = base.partition(":")
    if method == "rare":
        if plus or target:
            raise SystemExit(f"method {spec!r}: 'rare' alone is the rare batch sampler without reweighting")
        return "none", "uniform", "rare"
    return method, target or "uniform", "rare" if plus else "plain"


def method_label(method: str, target: str, batches: str) -> str:
    """The inverse of parse_method, as tables name the method."""
    if method == "none" and batches == "rare":
        return "rare"
    return (method if target == "uniform" else f"{method}:{target}") + ("+rare" if batches == "rare" else "")


def per_label_scores(Y: np.ndarray, P: np.ndarray, D_tuned: np.ndarray, task: str,
                     classes: list[str]) -> pd.DataFrame:
    """AUC, F1 of the default decisions (0.5 per label / argmax) and F1 of the tuned decisions `D_tuned`."""
    D = decide(P, task)
    rows = []
    for c, label in enumerate(classes):
        n_pos = int(Y[:, c].sum())
        auc = roc_auc_score(Y[:, c], P[:, c]) if 0 < n_pos < len(Y) else np.nan
        rows.append({"label": label, "n_pos": n_pos, "auc": auc, "f1": f1_score(Y[:, c], D[:, c], zero_division=0),
                     "f1_tuned": f1_score(Y[:, c], D_tuned[:, c], zero_division=0)})
    return pd.DataFrame(rows)


def nested_tuned_decisions(Y: np.ndarray, P: np.ndarray, folds: np.ndarray, task: str) -> np.ndarray:
    """Each fold's OOF rows decided with thresholds / biases fitted (macro F1) on the other folds only."""
    D = np.zeros_like(Y, dtype=np.int64)
    for k in np.unique(folds):
        held = folds == k
        D[held] = decide(P[held], task, fit_thresholds(Y[~held], P[~held], task))
    return D


def test_labels(solution: Path, ids: pd.Series, classes: list[str]) -> np.ndarray:
    """(n, C) 0/1 hidden test labels in the order of `ids`: one label column (space-separated) or one-hot."""
    table = read_table(solution).loc[ids.astype(str)]
    if table.shape[1] > 1:
        return table[classes].to_numpy(dtype=np.float64)
    index = {c: i for i, c in enumerate(classes)}
    Y = np.zeros((len(table), len(classes)))
    for r, (row_id, labels) in enumerate(table.iloc[:, 0].items()):
        unknown = [c for c in labels.split() if c not in index]
        if unknown:
            raise ValueError(f"{solution}: id {row_id} has labels {unknown} outside the run's classes {classes}")
        Y[r, [index[c] for c in labels.split()]] = 1
    return Y


def rare_labels(Y_train: np.ndarray, task: str, rare_below: float, rare_share: float) -> np.ndarray:
    prevalence = Y_train.mean(axis=0)
    return prevalence < (rare_share / Y_train.shape[1] if task == MULTICLASS else rare_below)


def evaluate_run(run_dir: Path, data_dir: Path, rare: np.ndarray) -> pd.DataFrame:
    """Per-label rows plus the two macro rows, for the OOF split and (with solution.csv) the test split.
    Tuned decisions never see the rows they decide: nested over folds on OOF, fitted on all OOF for test."""
    run = load_run(run_dir)
    Y, P = run.labels(), run.oof_matrix()
    splits = {"oof": (Y, P, nested_tuned_decisions(Y, P, run.oof[FOLD].to_numpy(), run.task))}
    if (data_dir / "solution.csv").exists() and run.test is not None:
        P_test = run.test_matrix()
        splits["test"] = (test_labels(data_dir / "solution.csv", run.test[ID], run.classes), P_test,
                          decide(P_test, run.task, fit_thresholds(Y, P, run.task)))
    frames = []
    for split, (Y_split, P_split, D_tuned) in splits.items():
        scores = per_label_scores(Y_split, P_split, D_tuned, run.task, run.classes).assign(rare=rare)
        macros = [{"label": name, "n_pos": int(scores.n_pos[mask].sum()), "rare": name == MACRO_RARE,
                   **{m: scores[m][mask].mean() for m in METRICS}}
                  for name, mask in ((MACRO_RARE, scores.rare), (MACRO_ALL, scores.rare | ~scores.rare))]
        frames.append(pd.concat([scores, pd.DataFrame(macros)], ignore_index=True).assign(split=split))
    return pd.concat(frames, ignore_index=True)


def _mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    return f"{values.mean():.3f}" + (f" ± {values.std(ddof=1):.3f}" if len(values) > 1 else "")


def markdown_tables(long: pd.DataFrame, methods: list[str]) -> str:
    """One table per (dataset, split): labels x (AUC, F1) per method, then the paired deltas (`comparisons`)."""
    out = []
    for (dataset, split), part in long.groupby(["dataset", "split"], sort=False):
        seeds = {m: part[part.method == m].seed.nunique() for m in methods}
        head = ["label", "pos"] + [f"{title} {m}" for title in METRICS.values() for m in methods]
        out += [f"### {dataset}, {split} ({', '.join(f'{m}: {n} seeds' for m, n in seeds.items())})", "",
                "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for label, rows in part.groupby("label", sort=False):
            name = f"**{label}**" if label.startswith("macro") else label + (" *" if rows.rare.iloc[0] else "")
            cells = [name, str(rows.n_pos.iloc[0])]
            cells += [_mean_std(rows[rows.method == m][metric]) for metric in METRICS for m in methods]
            out.append("| " + " | ".join(cells) + " |")
        out += ["", "(* rare label; pos = positives in the split)", ""]
        out += [paired_delta(part, m, ref) for m, ref in comparisons(methods)]
        out.append("")
    return "\n".join(out)


def comparisons(methods: list[str]) -> list[tuple[str, str]]:
    """(method, reference) pairs: every method against none, and each <balance>+rare against <balance>."""
    pairs = [(m, "none") for m in methods if m != "none"]
    return pairs + [(m, m.removesuffix("+rare")) for m in methods
                    if m.endswith("+rare") and m.removesuffix("+rare") in methods and m != "none+rare"]


def paired_delta(part: pd.DataFrame, method: str, reference: str) -> str:
    """One line: the rare-label macro of `method` minus `reference`, seed by seed (mean ± std, wins)."""
    base = part[(part.label == MACRO_RARE) & (part.method == reference)].set_index("seed")
    other = part[(part.label == MACRO_RARE) & (part.method == method)].set_index("seed")
    paired = base.index.intersection(other.index)
    if len(paired) == 0:
        return f"- {method} − {reference}: no common seeds"
    d = other.loc[paired, list(METRICS)] - base.loc[paired, list(METRICS)]
    return f"- {method} − {reference}, {MACRO_RARE}, paired over {len(paired)} seeds: " + ", ".join(
        f"{title} {d[metric].mean():+.3f} ± {d[metric].std(ddof=1) if len(d) > 1 else 0:.3f} "
        f"(better in {(d[metric] > 0).sum()}/{len(d)})" for metric, title in METRICS.items())


def summary_table(long: pd.DataFrame, methods: list[str]) -> str:
    """One row per (dataset, split, method): the rare-label macros and the all-label AUC, mean ± std."""
    head = ["data, split", "method", *[f"rare {t}" for t in METRICS.values()], "all-label AUC"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (dataset, split), part in long.groupby(["dataset", "split"], sort=False):
        for i, m in enumerate(methods):
            rare = part[(part.method == m) & (part.label == MACRO_RARE)]
            every = part[(part.method == m) & (part.label == MACRO_ALL)]
            cells = [f"{dataset}, {split}" if i == 0 else "", m, *[_mean_std(rare[k]) for k in METRICS],
                     _mean_std(every["auc"])]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--methods", nargs="+", default=["none", "class-weight", "sampler", "selective", "rare",
                                                    "selective+rare"],
                   help="none, class-weight, sampler, selective, selective:<target> (uniform/train/0..1), "
                        "rare (the rare batch sampler alone), or <balance>+rare (e.g. selective+rare)")
    p.add_argument("--rare-per-batch", type=int, default=4,
                   help="the rare sampler's positives per batch of each label below that many on average")
    p.add_argument("--symmetry", default="d4", choices=["none", "hflip", "d4"],
                   help="augmentation symmetry (d4: microscopy; the runs before --symmetry used d4)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per (dataset, method)")
    p.add_argument("--data-root", type=Path, default=HERE.parents[1] / "shared" / "data")
    p.add_argument("--rare-class", default="monocyte", help="pbc class reduced to --rare-keep of its rows")
    p.add_argument("--rare-keep", type=float, default=0.05)
    p.add_argument("--pbc-rows", type=int, default=600, help="train rows of the pbc variant (0 = all)")
    p.add_argument("--variant-seed", type=int, default=0)
    p.add_argument("--rare-below", type=float, default=0.15, help="multi-label: rare if prevalence below")
    p.add_argument("--rare-share", type=float, default=0.5, help="multi-class: rare if share below this x 1/C")
    p.add_argument("--model", default="resnet10t")
    p.add_argument("--img-size", type=int, default=48)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--fold-seed", type=int, default=42)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: the 2-core machine is shared)")
    p.add_argument("--work-dir", type=Path, default=HERE / "work" / "imbalance")
    p.add_argument("--out", type=Path, default=HERE / "results" / "imbalance",
                   help="writes <out>.md and <out>.csv")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [parse_method(m) for m in args.methods]
    data_dirs = {"bccd": args.data_root / "bccd", "pbc-rare": args.data_root / "pbc"}
    for name in args.datasets:
        if not (data_dirs[name] / "train.csv").exists():
            raise SystemExit(f"{data_dirs[name]}: no train.csv (set --data-root)")
    if "pbc-rare" in args.datasets:
        data_dirs["pbc-rare"] = make_rare_variant(data_dirs["pbc-rare"], args.work_dir / "data", args.rare_class,
                                                  args.rare_keep, args.pbc_rows, args.variant_seed)
    setting = (f"{args.model}-{args.img_size}px-e{args.epochs}-k{args.folds}-f{args.fold_seed}"
               f"-b{args.batch_size}-lr{args.lr:g}-{args.symmetry}")  # other settings: other folders
    jobs = [(seed, d, m) for seed in range(args.seeds) for d in args.datasets for m in methods]
    started, frames = time.perf_counter(), []
    say = lambda msg: print(f"[{time.perf_counter() - started:7.0f}s] {msg}", flush=True)  # noqa: E731
    say(f"{len(jobs)} runs, setting {setting}, work dir {args.work_dir}; data: "
        + ", ".join(f"{d} = {data_dirs[d]}" for d in args.datasets))
    for i, (seed, dataset, (method, target, batches)) in enumerate(jobs, 1):
        label = method_label(method, target, batches)
        name = label.replace(":", "-") + (f"{args.rare_per_batch}" if batches == "rare" else "")
        cfg = TrainConfig(data=str(data_dirs[dataset]), folds=args.folds, fold_seed=args.fold_seed, seed=seed,
                          model=args.model, img_size=args.img_size, epochs=args.epochs, patience=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, balance=method, balance_target=target,
                          batch_sampler=batches, rare_per_batch=args.rare_per_batch, symmetry=args.symmetry,
                          channels_last=False,  # fixed, not timed per machine: the same numerics for every run
                          tta=False, device="cpu", num_workers=0, name=f"{name}-s{seed}",
                          oof_dir=str(args.work_dir / dataset / setting), folds_dir=str(args.work_dir / "folds"),
                          cache_dir=str(args.work_dir / "cache"))
        validate_config(cfg)
        run_dir = Path(cfg.oof_dir) / cfg.run_name
        if not (run_dir / "oof.csv").exists():
            say(f"run {i}/{len(jobs)}: {dataset} {label} seed {seed} ...")
            run_cv(cfg, resume=True, quiet=True, log=lambda msg: None)
        run = load_run(run_dir)
        rare = rare_labels(run.labels(), run.task, args.rare_below, args.rare_share)
        if dataset == "pbc-rare":  # the reduced class is rare by construction, whatever its share
            rare |= np.array(run.classes) == args.rare_class
        scores = evaluate_run(run_dir, data_dirs[dataset], rare)
        frames.append(scores.assign(dataset=dataset, method=label, seed=seed))
        macro = scores[(scores.split == "oof") & (scores.label == MACRO_RARE)].iloc[0]
        say(f"run {i}/{len(jobs)}: {dataset} {label} seed {seed}: OOF rare macro AUC {macro.auc:.3f} "
            f"F1@0.5 {macro.f1:.3f} F1 tuned {macro.f1_tuned:.3f}  (rare: {', '.join(np.array(run.classes)[rare])})")
    long = pd.concat(frames, ignore_index=True)[["dataset", "split", "method", "seed", "label", "rare", "n_pos",
                                                  *METRICS]]
    order = [method_label(*m) for m in methods]
    note = (f"Setting: {setting}; {args.seeds} seeds; pbc-rare = {args.rare_class} kept at {args.rare_keep:g} "
            f"of its rows, {args.pbc_rows or 'all'} train rows in all (variant seed {args.variant_seed}); "
            f"augmentation --symmetry {args.symmetry}, no TTA; rare sampler: --rare-per-batch "
            f"{args.rare_per_batch} (+rare methods).\n\n"
            f"Command: `python bench/imbalance.py {' '.join(sys.argv[1:] if argv is None else argv)}`")
    text = (f"# Imbalance benchmark\n\n{note}\n\n## Summary (macro over the rare labels; mean ± std over seeds)"
            f"\n\n{summary_table(long, order)}\n\n## Per label\n\n{markdown_tables(long, order)}")
    write_csv(long, args.out.with_suffix(".csv"))
    atomic_write(args.out.with_suffix(".md"), lambda tmp: Path(tmp).write_text(text))
    print(text)
    say(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
