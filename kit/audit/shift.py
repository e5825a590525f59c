"""Train/test shift. Adversarial validation: a random forest learns to tell test rows from train rows on
the image features; its K-fold out-of-fold ROC AUC is the measure (0.5: indistinguishable, 1: every
image gives its split away). Each train row's out-of-fold probability of being test ranks the most
test-like train rows (a validation subset that looks like test). Per statistic, the two-sample
Kolmogorov-Smirnov statistic says which simple property moved."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold


def adversarial_validation(features: np.ndarray, is_test: np.ndarray, folds: int = 5,
                           seed: int = 0) -> tuple[float, np.ndarray]:
    """(out-of-fold AUC of train vs test, each row's out-of-fold probability of being a test row)."""
    is_test = np.asarray(is_test, dtype=int)
    folds = max(2, min(folds, int(is_test.sum()), int((1 - is_test).sum())))
    p_test = np.zeros(len(is_test))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit, held in splitter.split(features, is_test):
        # balanced: the forest must not win by predicting the larger split
        forest = RandomForestClassifier(n_estimators=300, min_samples_leaf=3, class_weight="balanced",
                                        random_state=seed, n_jobs=1).fit(features[fit], is_test[fit])
        p_test[held] = forest.predict_proba(features[held])[:, 1]
    return float(roc_auc_score(is_test, p_test)), p_test


def feature_shift(statistics: pd.DataFrame, is_test: np.ndarray) -> pd.DataFrame:
    """Per statistic: train and test means, the KS statistic and its p-value, largest shift first."""
    rows = []
    for name in statistics.columns:
        train, test = statistics[name].to_numpy()[~is_test], statistics[name].to_numpy()[is_test]
        result = ks_2samp(train, test)
        rows.append({"feature": name, "train_mean": train.mean(), "test_mean": test.mean(),
                     "ks": float(result.statistic), "p_value": float(result.pvalue)})
    return pd.DataFrame(rows).sort_values("ks", ascending=False, kind="stable").reset_index(drop=True)
