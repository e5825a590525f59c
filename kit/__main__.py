"""python3 -m kit demo | test [args...]

The quick start. Needs only Python 3.10+: creates `.venv` and installs what the command needs when it is
missing or a requirements file changed, at the exact versions of `constraints.txt`, then runs, inside it,
  demo  -> python -m kit.demo   (cross-validate backbones on the embedded data -> thresholds -> blend -> report)
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
CONSTRAINTS = ROOT / "constraints.txt"
COMMANDS = {"demo": ["-m", "kit.demo"], "test": ["-m", "pytest"]}
REQUIREMENTS = {"demo": ROOT / "requirements.txt", "test": ROOT / "requirements-test.txt"}


def ensure_venv(command: str) -> Path:
    """The venv's python, installing `command`'s requirements when they differ from the last install."""
    python = VENV / "bin" / "python"
    requirements = REQUIREMENTS[command]
    stamp = VENV / f".installed-{command}.sha256"
    files = [ROOT / "requirements.txt", requirements, CONSTRAINTS]
    wanted = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    if not python.exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    if not stamp.exists() or stamp.read_text().strip() != wanted:
        print(f"installing {requirements.name} into {VENV} (first time: several minutes)", flush=True)
        subprocess.check_call([str(python), "-m", "pip", "install", "-q", "-r", str(requirements),
                               "-c", str(CONSTRAINTS)])
        stamp.write_text(wanted + "\n")
    return python


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    python = ensure_venv(argv[0])
    os.chdir(ROOT)  # artifacts (folds/, oof/, tune/, submissions/, reports/) live at the repository root
    return subprocess.call([str(python), *COMMANDS[argv[0]], *argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
