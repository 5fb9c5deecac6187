"""docs/rest-api.md lists every route of the app."""

from __future__ import annotations

from pathlib import Path

from cairn.core.settings import Settings
from cairn.server import create_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "rest-api.md"


def test_every_route_is_documented(tmp_path: Path) -> None:
    page = DOC.read_text()
    paths = create_app(Settings(home=str(tmp_path))).openapi()["paths"]
    missing = [
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method in operations
        if f"`{method.upper()} {path}" not in page
    ]
    assert paths
    assert not missing, f"not in docs/rest-api.md: {missing}"
