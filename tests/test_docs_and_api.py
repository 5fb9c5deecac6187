"""The public surface: __all__ is complete, import is cheap, docs list every setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cairn
from cairn.core.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]


def test_all_is_complete_and_importable() -> None:
    public = {n for n in dir(cairn) if not n.startswith("_")} | {"__version__"}
    assert set(cairn.__all__) == public
    for name in cairn.__all__:
        assert getattr(cairn, name) is not None


def test_errors_share_one_root() -> None:
    for name in cairn.__all__:
        value = getattr(cairn, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, cairn.CairnError)


def test_import_loads_no_heavy_modules() -> None:
    code = (
        "import sys, cairn; heavy = [m for m in ('sqlalchemy', 'blake3', 'alembic') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_setting_is_documented() -> None:
    page = (ROOT / "docs" / "settings.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in page, setting.env
        assert f"`{setting.name}`" in page, setting.name


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    head = readme[:1500]
    assert "scripts/quickstart.sh" in head
    assert "scripts/test.sh" in head
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci
