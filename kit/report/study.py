"""The report of an Optuna study written by `kit.tune hparams`: optimisation history, per-epoch values,
parameter importances (Optuna's matplotlib visualisations) and the best trial against trial 0, which
kit enqueues as its own defaults."""
from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import pandas as pd
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import TrialState
from optuna.visualization import matplotlib as optuna_plots

from kit.report.inputs import ReportError
from kit.report.page import Page
from kit.report.plots import styled
from kit.runs import read_json
from kit.tune.studies import JOURNAL, Heartbeat, default_storage, open_storage


def fanova() -> FanovaImportanceEvaluator:
    """fANOVA fits a random forest: a fixed seed keeps the table and the figure equal."""
    return FanovaImportanceEvaluator(seed=0)


def laid_out(fig):
    """Optuna's figures come without a layout engine: long parameter names would be cut off."""
    fig.set_layout_engine("constrained")
    return fig


def load_study(study_name: str, storage: str | None, tune_dir: str | Path) -> optuna.Study:
    """The study from `storage` (default: where kit.tune hparams keeps it: `journal:<tune_dir>/<study>.log`,
    or the sqlite file of an older kit), with a clear error."""
    try:
        spec = storage or default_storage(Path(tune_dir), study_name)
        if storage is None:
            path = Path(spec.removeprefix(JOURNAL).removeprefix("sqlite:///"))
            if not path.exists():
                raise ReportError(f"{path} does not exist: no study {study_name!r} under {tune_dir} (see --storage)")
        return optuna.load_study(study_name=study_name, storage=open_storage(spec, Heartbeat(None, 1.0)))
    except KeyError as err:
        raise ReportError(f"{storage or tune_dir}: holds no study {study_name!r}") from err
    except ValueError as err:
        raise ReportError(str(err)) from err


def study_table(study: optuna.Study, metric: str | None) -> pd.DataFrame:
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    first = study.trials[0] if study.trials else None
    row = {"study": study.study_name, "metric": metric, "direction": study.direction.name.lower(),
           "n_trials": len(study.trials), "n_complete": len(complete),
           "n_pruned": sum(t.state == TrialState.PRUNED for t in study.trials),
           "best_trial": study.best_trial.number if complete else None,
           "best_value": study.best_value if complete else None,
           "default_value": first.value if first is not None and first.state == TrialState.COMPLETE else None}
    return pd.DataFrame([row])


def best_vs_default(study: optuna.Study) -> pd.DataFrame:
    """Each searched config key: its value in trial 0 (kit's defaults) and in the best trial."""
    default = study.trials[0].user_attrs.get("config", {})
    best = study.best_trial.user_attrs.get("config", {})
    keys = list(dict.fromkeys([*default, *best]))
    rows = [{"key": "objective value", "default (trial 0)": study.trials[0].value, "best": study.best_value}]
    rows += [{"key": k, "default (trial 0)": default.get(k), "best": best.get(k)} for k in keys]
    return pd.DataFrame(rows)


@styled
def write_study_report(study_name: str, reports_dir: str | Path, tune_dir: str | Path = "tune",
                       storage: str | None = None) -> Path:
    """`<reports_dir>/study-<study>/index.html`."""
    study = load_study(study_name, storage, tune_dir)
    summary_path = Path(tune_dir) / f"{study_name}-summary.json"
    metric = read_json(summary_path).get("metric") if summary_path.exists() else None
    page = Page(f"kit report: study {study_name}", Path(reports_dir) / f"study-{study_name}")
    page.table(study_table(study, metric), "study-summary")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        page.note("no trial has finished yet")
        return page.write()
    # Optuna's plots switch matplotlib to their own style (undone when @styled returns); they are experimental
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        page.section("Best trial vs the defaults")
        page.table(best_vs_default(study), "best-vs-default")
        page.section("Optimisation history")
        history = optuna_plots.plot_optimization_history(study, target_name=metric or "Objective Value")
        page.figure(laid_out(history.figure), "history")
        if any(t.intermediate_values for t in study.trials):
            page.figure(laid_out(optuna_plots.plot_intermediate_values(study).figure), "intermediate-values",
                        "the metric each trial reported per epoch (what the pruner saw)")
        page.section("Parameter importances (fANOVA)")
        try:
            importances = optuna.importance.get_param_importances(study, evaluator=fanova())
            chart = optuna_plots.plot_param_importances(study, evaluator=fanova())
        except (RuntimeError, ValueError) as err:  # too few trials, or nothing varied yet
            page.note(f"importances not available: {err}")
        else:
            page.table(pd.DataFrame({"param": list(importances), "importance": list(importances.values())}),
                       "importances")
            page.figure(laid_out(chart.figure), "importances")
    return page.write()
