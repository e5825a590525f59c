"""Outliers: an isolation forest (scikit-learn) on the standardized image statistics, the pixel embedding
and, with a run, its embeddings. Score = how easily a row is isolated (higher = more unusual); a row is
flagged when its score is more than `z` robust standard deviations (1.4826 MAD) above the median score."""
from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest


def isolation_scores(features: np.ndarray, seed: int = 0) -> np.ndarray:
    forest = IsolationForest(n_estimators=300, random_state=seed, n_jobs=1).fit(features)
    return -forest.score_samples(features)


def robust_z(scores: np.ndarray) -> np.ndarray:
    median = np.median(scores)
    spread = 1.4826 * np.median(np.abs(scores - median))
    return (scores - median) / max(spread, 1e-12)


def flag_outliers(scores: np.ndarray, z: float) -> np.ndarray:
    return robust_z(scores) > z
