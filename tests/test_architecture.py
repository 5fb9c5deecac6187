"""Layers point down: read every import under cairn/ and fail on an arrow upward.

core (0) -> store (1) -> service (2) -> faces (3: server, ui, cli, client). A module imports
only from its own layer or lower; faces do not import each other, except the server mounts the
UI and the CLI is built on the client (and starts the server). The package entry modules
(``cairn/__init__.py``, ``cairn/__main__.py``) may import anything. ``cairn.core`` is pure: no
stdlib module that does I/O. Every import counts, including those under ``if TYPE_CHECKING:``
and inside functions.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "cairn"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE

LAYERS: dict[str, int] = {
    "cairn.core": 0,
    "cairn.store": 1,
    "cairn.service": 2,
    "cairn.server": 3,
    "cairn.ui": 3,
    "cairn.cli": 3,
    "cairn.client": 3,
}
# Face -> the other faces it may import.
FACE_IMPORTS: dict[str, frozenset[str]] = {
    "cairn.server": frozenset({"cairn.ui"}),
    "cairn.cli": frozenset({"cairn.client", "cairn.server"}),
}
ENTRY_MODULES = frozenset({"cairn", "cairn.__main__"})
CORE_FORBIDDEN_STDLIB = frozenset(
    {
        "os",
        "io",
        "sqlite3",
        "socket",
        "subprocess",
        "pathlib",
        "shutil",
        "tempfile",
        "threading",
        "urllib",
        "http",
    }
)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    statement: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: `{self.statement}`: {self.reason}"


def layer_of(module: str) -> str | None:
    """The layer package ``module`` sits in, or None."""
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def _in_package(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def resolve_imports(
    tree: ast.Module, module: str, *, is_package: bool, known_modules: frozenset[str]
) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every (statement, imported module) in ``tree``, relative imports made absolute.

    For ``from X import a`` the target is ``X.a`` when that is a module of the package
    (``from cairn import core``), else ``X``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[ast.Import | ast.ImportFrom, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level > len(parts):
                    raise ValueError(f"{module}: relative import beyond the top-level package")
                base = ".".join(parts[: len(parts) - node.level + 1])
                if node.module:
                    base = f"{base}.{node.module}"
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((node, candidate if candidate in known_modules else base))
    return found


def check_source(
    source: str,
    module: str,
    *,
    path: str,
    is_package: bool = False,
    known_modules: frozenset[str] = frozenset(),
) -> list[Violation]:
    """The layer violations of one module, given its source and dotted name."""
    tree = ast.parse(source, filename=path)
    if module in ENTRY_MODULES:
        return []
    own = layer_of(module)
    if own is None:
        return [Violation(path, 1, module, f"{module} belongs to no layer; add it to LAYERS")]
    violations: list[Violation] = []
    for node, target in resolve_imports(
        tree, module, is_package=is_package, known_modules=known_modules
    ):
        broken = _import_rule_broken(own, target)
        if broken:
            violations.append(Violation(path, node.lineno, ast.unparse(node), broken))
    return sorted(violations, key=lambda v: v.line)


def _import_rule_broken(own: str, target: str) -> str | None:
    if not _in_package(target):
        top = target.partition(".")[0]
        if own == "cairn.core" and top in CORE_FORBIDDEN_STDLIB:
            return f"cairn.core is pure, it must not import {top} (I/O)"
        return None
    if target in ENTRY_MODULES:
        return f"imports the package entry {target}, which sits above every layer"
    layer = layer_of(target)
    if layer is None:
        return f"imports {target}, which belongs to no layer"
    if LAYERS[layer] > LAYERS[own]:
        return f"upward import: {own} (layer {LAYERS[own]}) -> {layer} (layer {LAYERS[layer]})"
    if LAYERS[layer] == LAYERS[own] and layer != own and layer not in FACE_IMPORTS.get(own, ()):
        return f"faces do not import each other: {own} -> {layer}"
    return None


def module_name(path: Path, root: Path = PACKAGE_DIR) -> tuple[str, bool]:
    """The dotted name of the module in ``path``, and whether it is a package."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def check_package(root: Path = PACKAGE_DIR) -> tuple[int, list[Violation]]:
    """(number of modules read, violations) for every module under ``root``."""
    files = sorted(root.rglob("*.py"))
    names = {path: module_name(path, root) for path in files}
    known = frozenset(name for name, _ in names.values())
    violations: list[Violation] = []
    for path, (name, is_package) in names.items():
        violations += check_source(
            path.read_text(encoding="utf-8"),
            name,
            path=str(path.relative_to(root.parent)),
            is_package=is_package,
            known_modules=known,
        )
    return len(files), violations


def test_layers_point_down() -> None:
    count, violations = check_package()
    assert count > 0, f"no modules found under {PACKAGE_DIR}"
    assert not violations, "imports that break the layers:\n" + "\n".join(map(str, violations))


# The checker itself: each rule must catch what it is meant to catch, or the test above is
# vacuous.
KNOWN = frozenset({"cairn", "cairn.core", "cairn.core.ids", "cairn.store", "cairn.service"})


@pytest.mark.parametrize(
    ("module", "is_package", "source", "expected"),
    [
        # Upward, in every spelling.
        ("cairn.core.ids", False, "import cairn.store.objects", ["upward"]),
        ("cairn.core.ids", False, "from cairn.service import tracking", ["upward"]),
        ("cairn.store.metadata.runs", False, "from ...service import x", ["upward"]),
        ("cairn.store.metadata", True, "from ...service.base import x", ["upward"]),
        ("cairn.core", True, "from .. import service", ["upward"]),
        ("cairn.service.a", False, "def f():\n    from cairn.client import Client", ["upward"]),
        (
            "cairn.store.x",
            False,
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cairn.service import S",
            ["upward"],
        ),
        # The package entry re-exports the client: importing it from a layer points up.
        ("cairn.core.ids", False, "from cairn import Client", ["package entry"]),
        ("cairn.store.x", False, "import cairn", ["package entry"]),
        # Faces.
        ("cairn.client._client", False, "from cairn.cli import main", ["faces"]),
        ("cairn.ui.pages", False, "from cairn.server import app", ["faces"]),
        ("cairn.server.app", False, "from cairn.cli import main", ["faces"]),
        ("cairn.server.app", False, "from cairn.ui import pages", []),
        ("cairn.cli.main", False, "from cairn.client import Client\nimport cairn.server", []),
        # Core purity.
        ("cairn.core.ids", False, "import os.path", ["pure"]),
        ("cairn.core.ids", False, "from pathlib import Path", ["pure"]),
        ("cairn.core.ids", False, "import urllib.parse, json", ["pure"]),
        ("cairn.core.ids", False, "import json, uuid, secrets, osmosis", []),
        ("cairn.store.objects.local", False, "import os, io, threading", []),
        # Allowed: own layer and below, relative or absolute.
        ("cairn.core.tree", False, "from .ids import new_id\nfrom cairn.core import ids", []),
        ("cairn.core", True, "from . import ids", []),
        ("cairn.core.ids", False, "from cairn import core", []),
        ("cairn.service.a", False, "from cairn.store import x\nfrom ..core.ids import y", []),
        # Entry modules may import anything; unknown top-level modules are flagged.
        ("cairn", True, "from cairn.client import Client\nimport cairn.cli", []),
        ("cairn.__main__", False, "import cairn.server", []),
        ("cairn.misc", False, "import json", ["no layer"]),
        ("cairn.core.ids", False, "import cairn.misc", ["no layer"]),
    ],
)
def test_checker(module: str, is_package: bool, source: str, expected: list[str]) -> None:
    violations = check_source(
        source, module, path="fake.py", is_package=is_package, known_modules=KNOWN
    )
    assert len(violations) == len(expected), violations
    for violation, words in zip(violations, expected, strict=True):
        assert words in violation.reason


def test_violation_message_names_file_line_and_import() -> None:
    source = '"""Doc."""\n\nimport json\nfrom ..service.tracking import open_service\n'
    [violation] = check_source(source, "cairn.core.ids", path="cairn/core/ids.py")
    assert str(violation).startswith(
        "cairn/core/ids.py:4: `from ..service.tracking import open_service`: upward import"
    )


def test_checker_reads_the_real_tree(tmp_path: Path) -> None:
    """check_package finds a violation planted in a package laid out on disk."""
    root = tmp_path / "cairn"
    (root / "core").mkdir(parents=True)
    (root / "service").mkdir()
    (root / "__init__.py").write_text("from cairn.service import run\n")
    (root / "core" / "__init__.py").write_text("")
    (root / "core" / "bad.py").write_text("x = 1\nfrom .. import service\n")
    (root / "service" / "__init__.py").write_text("from ..core import bad\n")
    count, violations = check_package(root)
    assert count == 4
    assert [(v.path, v.line) for v in violations] == [("cairn/core/bad.py", 2)]
