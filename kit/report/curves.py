"""Training and spread figures of a run: learning curves per fold from `summary.csv`, the metric's spread
over folds from `scores.json`, and the spread over seeds of one config."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from kit.report.plots import subplots

CURVES = (("train_loss", "train loss"), ("valid_loss", "valid loss"), ("valid_metric", "valid metric"),
          ("lr", "learning rate"))


def best_epochs(summary: pd.DataFrame, greater_is_better: bool) -> pd.DataFrame:
    """Per fold: the epoch whose valid metric was best (the first of ties, as early stopping keeps it),
    that metric, and how many epochs ran."""
    rows = []
    for fold, group in summary.groupby("fold", sort=True):
        values = group["valid_metric"].to_numpy(dtype=np.float64)
        if np.isnan(values).all():
            best = 0
        else:
            best = int(np.nanargmax(values) if greater_is_better else np.nanargmin(values))
        rows.append({"fold": int(fold), "best_epoch": int(group["epoch"].iloc[best]),
                     "best_valid_metric": float(values[best]), "epochs_run": int(len(group))})
    return pd.DataFrame(rows)


def learning_curves_figure(summary: pd.DataFrame, best: pd.DataFrame, metric: str):
    """Train/valid loss, the validation metric and the learning rate against the epoch, one line per fold;
    the best epoch of each fold is marked on every panel."""
    fig, axes = subplots(1, len(CURVES), width=2.8, height=2.4)
    for ax, (column, title) in zip(axes, CURVES):
        for fold, group in summary.groupby("fold", sort=True):
            line, = ax.plot(group["epoch"], group[column], marker=".", label=f"fold {fold}")
            best_epoch = best.loc[best["fold"] == fold, "best_epoch"].iloc[0]
            at_best = group.loc[group["epoch"] == best_epoch, column]
            ax.plot([best_epoch], at_best, marker="*", markersize=11, color=line.get_color(), linestyle="")
        ax.set(title=metric if column == "valid_metric" else title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if column == "lr":
            ax.set_yscale("log")
    axes[0].legend(title="★ best epoch")
    return fig


def fold_table(scores: dict) -> pd.DataFrame:
    """scores.json as rows: one per fold, then mean ± std over folds, then the pooled OOF ('overall')."""
    folds = pd.DataFrame([{"fold": str(k), **v} for k, v in scores["folds"].items()])
    metrics = list(scores["overall"])
    spread = {"fold": "mean ± std"}
    for m in metrics:
        values = folds[m].to_numpy(dtype=np.float64)
        spread[m] = f"{np.nanmean(values):.4f} ± {np.nanstd(values):.4f}"
    overall = {"fold": "overall (pooled OOF)", **scores["overall"]}
    return pd.concat([folds, pd.DataFrame([spread, overall])], ignore_index=True)[["fold", *metrics]]


def fold_spread_figure(scores: dict):
    """Each metric per fold (dots), their mean ± std (bar) and the pooled OOF value (line)."""
    metrics = list(scores["overall"])
    fig, axes = subplots(1, len(metrics), width=2.2, height=2.2)
    for ax, m in zip(axes, metrics):
        values = np.array([v[m] for v in scores["folds"].values()], dtype=np.float64)
        ax.plot(np.zeros(len(values)), values, "o", alpha=0.6, label="folds")
        ax.errorbar([0.3], [np.nanmean(values)], yerr=[np.nanstd(values)], fmt="s", capsize=4,
                    label="mean ± std")
        ax.axhline(scores["overall"][m], color="grey", linestyle="--", label="pooled OOF")
        ax.set(title=m, xlim=(-0.5, 0.8), xticks=[])
    axes[0].legend()
    return fig


def seed_table(seed_runs: list[tuple[str, int, dict]]) -> pd.DataFrame:
    """(name, seed, overall scores) of the seeds of one config -> a row each, then mean and std."""
    frame = pd.DataFrame([{"run": name, "seed": seed, **overall} for name, seed, overall in seed_runs])
    metrics = [c for c in frame.columns if c not in ("run", "seed")]
    mean = {"run": "mean", "seed": "", **frame[metrics].mean().to_dict()}
    std = {"run": "std", "seed": "", **frame[metrics].std(ddof=0).to_dict()}
    return pd.concat([frame, pd.DataFrame([mean, std])], ignore_index=True)
