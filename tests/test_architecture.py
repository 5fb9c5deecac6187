"""The shape of the package, read from every import under cairn/: an allowlist per layer.

Layers: core (0) -> files, store (1) -> service (2) -> faces (3: server, ui, cli, client).

- A module imports only from its own layer or lower (``files`` and ``store`` share layer 1,
  but ``files`` imports nothing of ``store``: the store, the service and the faces all
  write local files with it).
- ``cairn.core`` is pure: of the standard library it imports only :data:`CORE_STDLIB` (no
  I/O, no clock, no garbage collector), of other packages only :data:`CORE_THIRD_PARTY`,
  and it calls no built-in that does I/O (:data:`CORE_FORBIDDEN_BUILTINS`).
- Faces never import ``cairn.store``: they go through the service. Faces do not import
  each other, except that the server mounts the UI and the CLI is built on the client
  (and starts the server).
- Inside the store, the metadata store and the object stores do not import each other,
  and no object-store adapter imports another: each knows only the port.

The package entry modules (``cairn/__init__.py``, ``cairn/__main__.py``) may import
anything. Every import counts, including those under ``if TYPE_CHECKING:`` and inside
functions.
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
    "cairn.files": 1,
    "cairn.capture": 1,
    "cairn.store": 1,
    "cairn.service": 2,
    "cairn.server": 3,
    "cairn.ui": 3,
    "cairn.cli": 3,
    "cairn.client": 3,
    "cairn.versioning": 3,
}
# Layer -> the other layers of the same level it may import.
SIDEWAYS: dict[str, frozenset[str]] = {
    "cairn.store": frozenset({"cairn.files"}),
    "cairn.capture": frozenset({"cairn.files"}),
    "cairn.server": frozenset({"cairn.ui"}),
    "cairn.cli": frozenset({"cairn.client", "cairn.server", "cairn.versioning"}),
}
FACES = frozenset({"cairn.server", "cairn.ui", "cairn.cli", "cairn.client", "cairn.versioning"})
ENTRY_MODULES = frozenset({"cairn", "cairn.__main__"})
# What the pure core may import: values and computation only.
CORE_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "array",
        "base64",  # opaque search cursors
        "binascii",
        "collections",
        "dataclasses",
        "datetime",  # dates written in search queries (parsed; the clock is never read)
        "enum",
        "functools",
        "itertools",
        "json",
        "math",
        "numbers",
        "operator",
        "re",
        "secrets",  # random bits for ids; the caller may pass its own source
        "string",
        "struct",
        "types",
        "typing",
        "unicodedata",
        "uuid",
    }
)
# hashing; the search grammar; requirement parsing
CORE_THIRD_PARTY = frozenset({"blake3", "lark", "packaging"})
CORE_FORBIDDEN_BUILTINS = frozenset(
    {"open", "print", "input", "breakpoint", "__import__", "exec", "eval", "compile"}
)
# Store packages that must not import each other, and object-store modules that may
# import only the port (and their own helpers).
STORE_SIDES = ("cairn.store.metadata", "cairn.store.objects")
OBJECT_ADAPTERS = frozenset(
    {"cairn.store.objects.local", "cairn.store.objects.memory", "cairn.store.objects.s3"}
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
        if _under(module, layer):
            return layer
    return None


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


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
    """The rule violations of one module, given its source and dotted name."""
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
        broken = _import_rule_broken(module, own, target)
        if broken:
            violations.append(Violation(path, node.lineno, ast.unparse(node), broken))
    if own == "cairn.core":
        for call in ast.walk(tree):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in CORE_FORBIDDEN_BUILTINS
            ):
                reason = f"cairn.core is pure: it must not call {call.func.id}()"
                violations.append(Violation(path, call.lineno, ast.unparse(call), reason))
    return sorted(violations, key=lambda v: v.line)


def _import_rule_broken(module: str, own: str, target: str) -> str | None:
    top = target.partition(".")[0]
    if top != PACKAGE:
        if own == "cairn.core" and top not in CORE_STDLIB | CORE_THIRD_PARTY:
            return f"cairn.core is pure: {top} is not on its allowlist (no I/O, clock or gc)"
        return None
    if target in ENTRY_MODULES:
        return f"imports the package entry {target}, which sits above every layer"
    layer = layer_of(target)
    if layer is None:
        return f"imports {target}, which belongs to no layer"
    if LAYERS[layer] > LAYERS[own]:
        return f"upward import: {own} (layer {LAYERS[own]}) -> {layer} (layer {LAYERS[layer]})"
    if LAYERS[layer] == LAYERS[own] and layer != own and layer not in SIDEWAYS.get(own, ()):
        return f"{own} must not import {layer}, which sits beside it"
    if own in FACES and layer == "cairn.store":
        return f"faces never import the store ({target}): they go through the service"
    return _store_rule_broken(module, target)


def _store_rule_broken(module: str, target: str) -> str | None:
    for side in STORE_SIDES:
        other = [s for s in STORE_SIDES if s != side]
        if _under(module, side) and any(_under(target, o) for o in other):
            return f"{side} must not import {target}: the two stores stand apart"
    adapter = next((a for a in OBJECT_ADAPTERS if _under(module, a)), None)
    if adapter is not None and any(_under(target, a) for a in OBJECT_ADAPTERS if a != adapter):
        return f"object-store adapters never import each other ({target}): share the port"
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
        # Faces: not each other (but the allowed pairs), and never the store.
        ("cairn.client._client", False, "from cairn.cli import main", ["beside"]),
        ("cairn.ui.pages", False, "from cairn.server import app", ["beside"]),
        ("cairn.server.app", False, "from cairn.cli import main", ["beside"]),
        ("cairn.server.app", False, "from cairn.ui import pages", []),
        ("cairn.cli.main", False, "from cairn.client import Client\nimport cairn.server", []),
        ("cairn.server.routes.a", False, "from cairn.store.objects.port import W", ["never"]),
        ("cairn.client._http", False, "import cairn.store.objects.local", ["never"]),
        ("cairn.client._http", False, "from cairn.files.writing import w", []),
        ("cairn.client._http", False, "from cairn.service.contracts import B", []),
        # files and store share a layer; files stands below the store.
        ("cairn.files.writing", False, "from cairn.store.objects import port", ["beside"]),
        ("cairn.store.objects.local", False, "from cairn.files.writing import w", []),
        # Inside the store.
        (
            "cairn.store.objects.memory",
            False,
            "from cairn.store.objects.local import w",
            ["adapters"],
        ),
        ("cairn.store.objects.local", False, "from .memory import M", ["adapters"]),
        ("cairn.store.objects.local", False, "from .port import ObjectStore", []),
        ("cairn.store.metadata.tx", False, "from cairn.store.objects import port", ["apart"]),
        ("cairn.store.objects.local", False, "import cairn.store.metadata.tx", ["apart"]),
        # Core purity: an allowlist, not a blocklist.
        ("cairn.core.ids", False, "import os.path", ["allowlist"]),
        ("cairn.core.ids", False, "from pathlib import Path", ["allowlist"]),
        ("cairn.core.ids", False, "import urllib.parse, json", ["allowlist"]),
        ("cairn.core.ids", False, "import time", ["allowlist"]),
        ("cairn.core.ids", False, "import gc", ["allowlist"]),
        ("cairn.core.ids", False, "import numpy", ["allowlist"]),
        ("cairn.core.ids", False, "import json, uuid, secrets, blake3", []),
        ("cairn.core.ids", False, "def f(p):\n    return open(p).read()", ["open()"]),
        ("cairn.core.ids", False, "def f(x):\n    print(x)", ["print()"]),
        ("cairn.core.ids", False, "def f(x):\n    return x.open()", []),  # a method
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
