"""Rules every page module keeps, read from the source: page handlers are ``async``, and
the service is reached only through ``call(...)`` (a worker thread), so the event loop
never waits on the database; templates are autoescaped whatever their name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cairn.ui.render import environment

PAGES = Path(__file__).resolve().parents[2] / "cairn" / "ui" / "pages"
MODULES = sorted(p for p in PAGES.glob("*.py") if p.name != "__init__.py")


def _is_route(decorator: ast.expr) -> bool:
    return (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr in {"get", "post", "put", "delete", "api_route"}
    )


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_page_handlers_are_async_and_hop_off_the_loop(module: Path) -> None:
    tree = ast.parse(module.read_text())
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(map(_is_route, node.decorator_list)):
            pytest.fail(f"{module.name}: page handler {node.name} must be async def")
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "service":
            holder = parents.get(node)
            called = isinstance(holder, ast.Call) and getattr(holder.func, "id", None) == "call"
            assert called and node in holder.args, (  # type: ignore[union-attr]
                f"{module.name}:{node.lineno}: service(...) outside call(...) "
                "would run a store call on the event loop"
            )


def test_every_template_is_autoescaped() -> None:
    env = environment()
    assert env.autoescape is True
    rendered = env.from_string("{{ x }}").render(x="<script>")
    assert rendered == "&lt;script&gt;"
