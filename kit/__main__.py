"""python3 -m kit demo | test [args...]

The quick start. Needs only Python 3.10+: creates `.venv` from `requirements.txt` when it is missing or
the requirements changed, then runs, inside it,
  demo  -> python -m kit.demo   (cross-validate two backbones on the embedded data -> thresholds -> blend)
  test  -> python -m pytest     (the test suite; CI runs exactly this)
Standard library only: this runs before any dependency is installed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements.txt"
COMMANDS = {"demo": ["-m", "kit.demo"], "test": ["-m", "pytest"]}


def ensure_venv() -> Path:
    """The venv's python, installing requirements when their hash differs from the last install."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not python.exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    if not stamp.exists() or stamp.read_text().strip() != wanted:
        print(f"installing {REQUIREMENTS} into {VENV} (first time: several minutes)", flush=True)
        subprocess.check_call([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)])
        stamp.write_text(wanted + "\n")
    return python


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    python = ensure_venv()
    os.chdir(ROOT)  # artifacts (folds/, oof/, tune/, submissions/) live at the repository root
    return subprocess.call([str(python), *COMMANDS[argv[0]], *argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
