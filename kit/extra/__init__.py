"""Extra training rows without leaking into the OOF: pseudo-labelled test rows (`--pseudo`), external labelled
data (`--extra-data`) and distillation from a teacher (`--teacher`).

Fold k of a run is validated on fold k's rows, so nothing fold k trains on may come from a model that saw
them: fold k's pseudo-labels are the source's fold-k test predictions (its members' fold-k models through
the blend's fold-k recipe), fold k's teacher targets are the teacher's fold-k models predicting fold k's
training rows. The fold-averaged test predictions (`--pseudo-mode leaky`) and the teacher's OOF
(`--distill-mode oof`) are there for comparison only. Extra rows are trained on, never validated, never in
oof.csv. Modules: plan (checks before any work, per-fold rows), sources (honest predictions of a run or
blend for fold k), rows (the training dataset and its targets).
"""
from kit.extra.plan import ExtraPlan, check_folds, check_unchanged, describe, fold_extra, plan_extra
from kit.extra.rows import FoldExtra, TrainingRows, training_set
from kit.extra.sources import SourceError

__all__ = ["ExtraPlan", "FoldExtra", "SourceError", "TrainingRows", "check_folds", "check_unchanged", "describe",
           "fold_extra", "plan_extra", "training_set"]
