"""A blend's own diagnostics: what it learned (weights or stacker coefficients, from weights.json), how
differently its members err (correlation of their OOF residuals), and members vs blend (scores.json)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.report.plots import matrix_panel, metric_bars, subplots
from kit.runs import RunPredictions


def weights_table(report: dict) -> pd.DataFrame:
    """weights.json as a table: a run per row (weight, per-fold weights, hill-climbing counts) or, for a
    stacker, a class per row (one coefficient per feature, then the intercept)."""
    if "coef" in report:
        rows = [{"class": c, **coefs, "intercept": report["intercept"][c]} for c, coefs in report["coef"].items()]
        return pd.DataFrame(rows)
    frame = pd.DataFrame({"run": list(report["weights"]), "weight": list(report["weights"].values())})
    for fold, weights in report.get("fold_weights", {}).items():
        frame[f"fold {fold}"] = frame["run"].map(weights)
    for extra in ("counts", "single_scores"):
        if isinstance(report.get(extra), dict):
            frame[extra] = frame["run"].map(report[extra])
    return frame


def weights_figure(table: pd.DataFrame):
    """Weights per run (overall and per fold) as bars, or the stacker's coefficients as a heatmap."""
    if "class" in table.columns:
        coef = table.drop(columns=["class", "intercept"])
        values = coef.to_numpy(dtype=float)
        # symmetric colour scale, white at 0; NaN coefficients belong to a class with one value only
        limit = max(np.nan_to_num(np.abs(values)).max(), 1e-9)
        fig, (ax,) = subplots(1, 1, width=1.0 + 0.5 * coef.shape[1], height=1.0 + 0.3 * len(table))
        image = ax.imshow(values, cmap="RdBu_r", aspect="auto", vmin=-limit, vmax=limit)
        ax.set_xticks(range(coef.shape[1]), coef.columns, rotation=90)
        ax.set_yticks(range(len(table)), table["class"])
        ax.set_title("stacker coefficients (class x member logit)")
        fig.colorbar(image, ax=ax)
        return fig
    columns = ["weight", *[c for c in table.columns if c.startswith("fold ")]]
    fig, (ax,) = subplots(1, 1, width=1.5 + 0.6 * len(table) * len(columns) / 2, height=2.8)
    table.set_index("run")[columns].plot.bar(ax=ax, rot=0)
    ax.set(title="member weights (overall and refit per fold)", ylabel="weight", xlabel="")
    return fig


def error_correlation(members: list[RunPredictions]) -> pd.DataFrame:
    """Pearson correlation of the members' OOF residuals (probability - label, every row and class): low
    correlation = members err on different rows = room for the blend to gain."""
    residuals = np.stack([(m.oof_matrix() - m.labels()).ravel() for m in members])
    corr = np.corrcoef(residuals) if len(members) > 1 else np.ones((1, 1))
    frame = pd.DataFrame(corr, columns=[m.name for m in members])
    frame.insert(0, "run", [m.name for m in members])
    return frame


def correlation_figure(corr: pd.DataFrame):
    names = list(corr["run"])
    fig, (ax,) = subplots(1, 1, width=1.6 + 0.7 * len(names), height=1.4 + 0.6 * len(names))
    matrix_panel(ax, corr[names].to_numpy(), names, "OOF residual correlation of the members", ".2f",
                 "member", "member", cmap="RdBu_r", vmin=-1, vmax=1)
    return fig


def member_scores(scores: dict, blend_name: str) -> pd.DataFrame:
    """The blend's scores.json: each member's pooled OOF metrics, then the blend's own (honest) ones."""
    rows = [{"name": name, "kind": "member", **values} for name, values in scores["runs"].items()]
    rows.append({"name": blend_name, "kind": "blend", **scores["overall"]})
    return pd.DataFrame(rows)


def member_scores_figure(table: pd.DataFrame):
    metrics = [c for c in table.columns if c not in ("name", "kind")]
    return metric_bars(table, "name", metrics)
