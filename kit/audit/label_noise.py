"""Label issues of a finished run (confident learning, Northcutt et al. 2021, in its simplest form): per
class, the threshold is the mean OOF probability of that class over the rows labelled with it (its
typical self-confidence). A row is an issue when its given label is below its class's threshold while
another label is above its own:

- multi-class: p(given) < t(given) and some other class k has p(k) >= t(k) -> suggested k;
- multi-label, per (row, class): labelled 1 with p < t1 and 1 - p >= t0, or labelled 0 with 1 - p < t0
  and p >= t1 (t1 = mean p over the positives, t0 = mean 1 - p over the negatives).

The list is only as good as the run: a weak model (near-constant probabilities) doubts many labels by tiny
margins; read it from the lowest margin down.

`margin` = p(given) / t(given) - p(suggested) / t(suggested): lowest = most suspicious, listed first."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kit.metrics import MULTICLASS

EPS = 1e-12


def label_issues(ids, Y: np.ndarray, P: np.ndarray, classes: list[str], task: str) -> pd.DataFrame:
    Y, P = np.asarray(Y) > 0, np.asarray(P, dtype=np.float64)
    positives = Y.sum(axis=0)
    t1 = np.where(positives > 0, (P * Y).sum(axis=0) / np.maximum(positives, 1), np.inf)
    rows = []
    if task == MULTICLASS:
        given = Y.argmax(axis=1)
        ratio = P / np.maximum(t1, EPS)
        for r in range(len(Y)):
            g = given[r]
            others = np.flatnonzero((P[r] >= t1) & (np.arange(len(classes)) != g))
            if P[r, g] < t1[g] and len(others):
                k = others[np.argmax(ratio[r, others])]
                rows.append((ids[r], classes[g], classes[k], P[r, g], P[r, k], ratio[r, g] - ratio[r, k]))
    else:
        negatives = (~Y).sum(axis=0)
        t0 = np.where(negatives > 0, ((1 - P) * ~Y).sum(axis=0) / np.maximum(negatives, 1), np.inf)
        for r, c in zip(*np.nonzero(Y & (P < t1) & (1 - P >= t0))):
            rows.append((ids[r], classes[c], "(not " + classes[c] + ")", P[r, c], 1 - P[r, c],
                         P[r, c] / t1[c] - (1 - P[r, c]) / t0[c]))
        for r, c in zip(*np.nonzero(~Y & (P >= t1) & (1 - P < t0))):
            rows.append((ids[r], "(not " + classes[c] + ")", classes[c], 1 - P[r, c], P[r, c],
                         (1 - P[r, c]) / t0[c] - P[r, c] / t1[c]))
    frame = pd.DataFrame(rows, columns=["id", "given", "suggested", "p_given", "p_suggested", "margin"])
    return frame.sort_values("margin", kind="stable").reset_index(drop=True)
