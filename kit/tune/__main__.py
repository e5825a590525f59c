"""`python -m kit.tune [thresholds | hparams] ...` (see kit/tune/cli.py)."""
from kit.tune.cli import main

if __name__ == "__main__":
    outcome = main()
    raise SystemExit(outcome if isinstance(outcome, int) else 0)   # hparams' exit code, else success
