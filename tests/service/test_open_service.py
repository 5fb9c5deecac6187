"""open_service: which object path ``CAIRN_DIRECT_IO`` picks."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.core.errors import InvalidArgument
from cairn.core.settings import Settings, settings_from
from cairn.service import open_service
from cairn.store.objects import LocalObjectStore


@pytest.mark.parametrize(
    ("direct_io", "server", "expected"),
    [
        ("auto", False, False),  # the embedded client: a model is often read right back
        ("auto", True, True),  # cairn server
        ("on", False, True),
        ("off", True, False),
    ],
)
def test_direct_io_setting(tmp_path: Path, direct_io: str, server: bool, expected: bool) -> None:
    settings = Settings(home=str(tmp_path), direct_io=direct_io)
    service = open_service(settings, server=server)
    try:
        assert isinstance(service.context.objects, LocalObjectStore)
        assert service.context.objects.direct_io is expected
    finally:
        service.close()


def test_direct_io_setting_is_checked(tmp_path: Path) -> None:
    assert settings_from({"CAIRN_DIRECT_IO": "on"}).direct_io == "on"
    assert settings_from({"CAIRN_DIRECT_IO": " OFF "}).direct_io == "off"
    with pytest.raises(InvalidArgument) as given:
        open_service(Settings(home=str(tmp_path), direct_io="true"))
    assert given.value.details["field"] == "direct_io"
    with pytest.raises(InvalidArgument) as caught:
        settings_from({"CAIRN_DIRECT_IO": "yes"})
    assert caught.value.details["field"] == "CAIRN_DIRECT_IO"
    assert "auto, on, off" in str(caught.value)
