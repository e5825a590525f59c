"""Every third-party package kit imports is declared, runtime apart from test-only, pinned in the lock, and
pyproject.toml declares the same list as requirements.txt."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(canonical(re.split(r"[<>=!~\[; ]", line)[0]))
    return names


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_modules(folder: Path) -> set[str]:
    modules = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"kit", "__future__"}


def distributions(modules: set[str]) -> set[str]:
    by_module = packages_distributions()
    missing = sorted(m for m in modules if m not in by_module)
    assert not missing, f"imported but not installed: {missing}"
    return {canonical(by_module[m][0]) for m in modules}


def test_every_runtime_import_is_a_runtime_requirement():
    runtime = requirement_names(ROOT / "requirements.txt")
    used = distributions(imported_top_modules(ROOT / "kit"))
    assert used <= runtime, f"kit imports undeclared packages: {sorted(used - runtime)}"
    assert "pytest" not in runtime  # test-only needs stay out of the runtime list


def test_test_imports_are_declared_for_tests():
    declared = requirement_names(ROOT / "requirements.txt") | requirement_names(ROOT / "requirements-test.txt")
    used = distributions(imported_top_modules(ROOT / "tests") - {"conftest", "competitions", "blend_fixtures"}
                         - {p.stem for p in (ROOT / "tests").glob("*.py")})
    assert used <= declared, f"tests import undeclared packages: {sorted(used - declared)}"


def test_pyproject_declares_requirements_txt_and_the_lock_pins_them():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {canonical(re.split(r"[<>=!~\[; ]", d)[0]) for d in project["dependencies"]} == \
        requirement_names(ROOT / "requirements.txt")
    pinned = {canonical(line.split("==")[0]) for line in (ROOT / "constraints.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    wanted = requirement_names(ROOT / "requirements.txt") | requirement_names(ROOT / "requirements-test.txt")
    assert wanted <= pinned, f"not pinned in constraints.txt: {sorted(wanted - pinned)}"
