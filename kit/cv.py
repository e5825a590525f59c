"""python -m kit.cv --model efficientnet_b0 --folds 5 : cross-validate one timm backbone.

Writes oof/<run>/ (config.json, oof.csv, test.csv, summary.csv, scores.json, fold<k>/best.pt).
Several backbones, their folds spread over devices (one fold process per device at a time):
    python -m kit.cv --model resnet18 efficientnet_b0 convnext_tiny --devices 0,1,2,3
    python -m kit.cv --model resnet10t resnet18 --devices cpu          # one after another
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from kit.config import add_config_flags, resolve_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kit.cv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a JSON config file (e.g. tune/<study>.json); flags override it")
    parser.add_argument("--fold", type=int, nargs="+", help="run only these folds (merge happens when all exist)")
    parser.add_argument("--resume", action="store_true", help="continue interrupted folds from their last epoch")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing run of the same name first")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    parser.add_argument("--devices", default=None,
                        help="schedule every fold of every --model as its own process over these devices: GPU "
                             "indices (0,1,2,3) or cpu; default with several models: every GPU, else cpu")
    add_config_flags(parser, several=("model",))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from kit.crossval import RunError, run_cv  # heavy imports (torch) after argparse's --help
    from kit.distributed import init_from_env
    models = args.model or [None]
    try:
        cfgs = [resolve_config(argparse.Namespace(**{**vars(args), "model": m}), args.config) for m in models]
        if len(cfgs) > 1 or args.devices is not None:
            from kit.schedule import parse_devices, schedule

            return schedule(cfgs, parse_devices(args.devices), args.fold, args.overwrite)
        dist, device = init_from_env(cfgs[0].device)  # under torchrun: this rank's process group and device
        cfg = replace(cfgs[0], device=device)
        quiet = args.quiet or not dist.main
        run_cv(cfg, folds_to_run=args.fold, resume=args.resume, overwrite=args.overwrite, quiet=quiet,
               log=(lambda *a, **k: None) if quiet else print)
    except (ValueError, FileNotFoundError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
