"""Duplicate pairs within train, within test and across train/test, and their clusters.

Kinds, strongest first: `exact` (same decoded pixels), `phash` (perceptual hash within `max_hamming` of 64
bits: re-encoded, resized, lightly edited copies), `embedding` (cosine similarity of a run's centred
features at least `min_cosine`, opt-in: only as good as the run). A pair is listed once, under its strongest kind. Clusters are the
connected components of all pairs; the train members of a cluster form one group of groups.csv, so
`kit.cv --groups-file` keeps them in one fold (a chain through a test image counts too)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from kit.audit.hashes import HASH_BITS, close_hashes
from kit.audit.inputs import TRAIN, AuditData

KINDS = ("exact", "phash", "embedding")
COLUMNS = ["id_a", "split_a", "id_b", "split_b", "kind", "distance", "labels_agree"]


def exact_pairs(digests: list[str]):
    """(a, b) rows of every pair with the same digest, a < b."""
    by_digest: dict[str, list[int]] = {}
    for row, digest in enumerate(digests):
        by_digest.setdefault(digest, []).append(row)
    pairs = [(a, b) for rows in by_digest.values() for i, a in enumerate(rows) for b in rows[i + 1:]]
    return np.array(pairs, dtype=int).reshape(-1, 2)


def embedding_pairs(unit: np.ndarray, min_cosine: float, block: int = 1024):
    """(a, b, 1 - cosine) of every pair a < b of unit-length rows with cosine >= min_cosine."""
    found = []
    for start in range(0, len(unit), block):
        cosine = unit[start:start + block] @ unit.T
        a, b = np.nonzero(cosine >= min_cosine)
        a = a + start
        keep = a < b
        found.append(np.stack([a[keep], b[keep], 1.0 - cosine[a[keep] - start, b[keep]]], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 3))


def find_duplicates(data: AuditData, digests: list[str], hashes: np.ndarray, max_hamming: int,
                    unit_embeddings: np.ndarray | None = None, min_cosine: float | None = None) -> pd.DataFrame:
    """duplicates.csv: one row per pair, strongest kind first; `distance` is 0 for exact, the Hamming
    distance / 64 for phash, 1 - cosine for embedding; `labels_agree` for train-train pairs (else empty)."""
    found: dict[tuple[int, int], tuple[str, float]] = {}
    for a, b in exact_pairs(digests):
        found[(a, b)] = ("exact", 0.0)
    a, b, d = close_hashes(hashes, max_hamming)
    for a_, b_, d_ in zip(a, b, d):
        found.setdefault((int(a_), int(b_)), ("phash", d_ / HASH_BITS))
    if unit_embeddings is not None and min_cosine is not None:
        for a_, b_, d_ in embedding_pairs(unit_embeddings, min_cosine):
            found.setdefault((int(a_), int(b_)), ("embedding", float(d_)))
    rows = []
    for (a, b), (kind, distance) in sorted(found.items(), key=lambda item: (KINDS.index(item[1][0]), item[1][1],
                                                                              item[0])):
        both_train = data.split[a] == TRAIN and data.split[b] == TRAIN
        agree = (data.labels[a] == data.labels[b]) if both_train else ""
        rows.append((data.ids[a], data.split[a], data.ids[b], data.split[b], kind, round(distance, 6), agree))
    return pd.DataFrame(rows, columns=COLUMNS)


def clusters(data: AuditData, pairs: pd.DataFrame) -> np.ndarray:
    """Component index of every row (train then test) over the duplicate pairs."""
    row_of = {(i, s): k for k, (i, s) in enumerate(zip(data.ids, data.split))}
    a = np.array([row_of[(i, s)] for i, s in zip(pairs["id_a"], pairs["split_a"])], dtype=int)
    b = np.array([row_of[(i, s)] for i, s in zip(pairs["id_b"], pairs["split_b"])], dtype=int)
    n = len(data.ids)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def groups_frame(data: AuditData, component: np.ndarray) -> pd.DataFrame:
    """groups.csv: the train ids of every cluster with several train members, and its group `dup<k>`;
    train ids not listed are groups of their own (as `kit.cv --groups-file` reads it)."""
    train = component[:data.n_train]
    sizes = np.bincount(train) if len(train) else np.zeros(0, int)
    rows = np.flatnonzero(sizes[train] > 1) if len(train) else np.zeros(0, int)
    names = {c: f"dup{k:05d}" for k, c in enumerate(dict.fromkeys(train[rows]))}
    return pd.DataFrame({"id": data.ids[rows], "group": [names[c] for c in train[rows]]})
