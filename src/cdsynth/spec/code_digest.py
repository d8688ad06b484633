"""Digests of the code a rule runs, passed to Snakemake as a param.

Snakemake's own `code` trigger compares a script's modification time, so a fresh checkout or a `touch`
reruns every job, while an edit in the package, which the script imports, reruns none. The digest covers
the script and every `cdsynth` module it imports, directly or not (imports inside functions included),
and is computed from each file's syntax tree: comments and formatting do not count, code does.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "cdsynth"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def imported_modules(tree: ast.AST) -> set[str]:
    """Names of the package's modules a file imports (`from cdsynth import x` counts as cdsynth.x)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")}


def module_file(name: str) -> Path | None:
    """The file of package module `name`, or None when `name` is not a module (cdsynth.io.read_json)."""
    base = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    return next((path for path in (base / "__init__.py", base.with_suffix(".py")) if path.is_file()), None)


def label(path: Path) -> str:
    return f"{PACKAGE}/{path.relative_to(PACKAGE_DIR)}" if path.is_relative_to(PACKAGE_DIR) else path.name


@cache
def parsed(path: Path) -> tuple[str, list[Path]]:
    """(dump of the syntax tree, package files imported) of one file; rules share most of their modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return ast.dump(tree), [file for file in map(module_file, imported_modules(tree)) if file is not None]


def import_closure(script: str | Path) -> dict[str, str]:
    """{label: syntax tree dump} of `script` and every package module it reaches through imports."""
    trees: dict[str, str] = {}
    todo = [Path(script).resolve()]
    while todo:
        path = todo.pop()
        name = label(path)
        if name in trees:
            continue
        trees[name], imports = parsed(path)
        todo += imports
    return trees


@cache
def code_digest(script: str | Path) -> str:
    """A 16-hex-digit digest of `script` and the package modules it reaches through imports."""
    trees = import_closure(script)
    digest = hashlib.sha256()
    for name in sorted(trees):
        digest.update(f"{name}\0{trees[name]}\0".encode())
    return digest.hexdigest()[:16]
