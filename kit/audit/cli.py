"""python -m kit.audit [--data DIR] [--run NAME] : know the data before training.

Writes audit/<data>/: report.html (self-contained, thumbnails embedded), duplicates.csv, groups.csv
(for kit.cv --groups-file), outliers.csv and exclude.csv (flagged train outliers, for kit.cv --exclude-ids),
shift.csv and shift_features.csv (when there is a test set), label_issues.csv (with --run). The folder is a
view of the data: it is rewritten on every call. Findings are information: the exit code is 0; bad input
(missing folder, unknown run, undecodable image) is an error, exit 2, before anything is written.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kit.config import add_config_flags, resolve_config

DATA_FLAGS = ("data", "id_col", "label_col", "label_cols", "label_sep", "path_col", "image_dir", "test_image_dir",
              "channels", "in_chans", "task", "cache_dir", "oof_dir", "device")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kit.audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None, help="a finished run (or blend) under --oof-dir: its fold-0 "
                        "embeddings join the checks (runs only) and its OOF gives the label issues")
    parser.add_argument("--out-dir", default="audit", help="the audit goes to <out-dir>/<data name>/")
    parser.add_argument("--thumb-size", type=int, default=64, help="thumbnail size of the hashes, statistics "
                        "and gallery (through the kit's cache)")
    parser.add_argument("--max-hamming", type=int, default=6, help="near duplicates: perceptual hashes at most "
                        "this many of 64 bits apart (unrelated photos here were 8 or more)")
    parser.add_argument("--min-cosine", type=float, default=None,
                        help="near duplicates also by the run's embeddings: centred cosine at least this (with "
                             "--run; off by default: a 1-epoch pbc run at 0.98 paired 9,589 unrelated images, "
                             "so use it with a strong, e.g. pretrained, run)")
    parser.add_argument("--outlier-z", type=float, default=4.0,
                        help="outliers: isolation-forest score this many robust standard deviations above median")
    parser.add_argument("--seed", type=int, default=0, help="seed of the forests and the PCA")
    add_config_flags(parser, only=DATA_FLAGS)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from kit.audit.run import AuditError, audit  # heavy imports after argparse's --help

    try:
        if args.thumb_size < 8:
            raise ValueError(f"--thumb-size must be at least 8 (got {args.thumb_size})")
        if not 0 <= args.max_hamming <= 64:
            raise ValueError(f"--max-hamming must be in 0..64 (got {args.max_hamming})")
        cfg = resolve_config(args)
        start = time.perf_counter()
        result = audit(cfg, Path(args.out_dir), args.run, args.thumb_size, args.max_hamming, args.min_cosine,
                       args.outlier_z, args.seed)
    except (ValueError, FileNotFoundError, AuditError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.summary_text(time.perf_counter() - start))
    return 0
