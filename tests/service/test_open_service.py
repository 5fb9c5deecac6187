"""open_service: which object path ``CAIRN_DIRECT_IO`` picks."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.core.errors import InvalidArgument
from cairn.core.settings import Settings, settings_from
from cairn.service import open_service
from cairn.store.objects import LocalObjectStore
from cairn.store.objects.chunked import ChunkedStore


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
        chunked = service.context.objects
        assert isinstance(chunked, ChunkedStore)  # chunk_size is on by default
        assert isinstance(chunked.inner, LocalObjectStore)
        assert chunked.inner.direct_io is expected
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


def test_chunk_size_picks_the_chunked_store(tmp_path: Path) -> None:
    chunked = open_service(Settings(home=str(tmp_path), chunk_size=1 << 16, chunk_min_file=5))
    try:
        objects = chunked.context.objects
        assert isinstance(objects, ChunkedStore)
        assert (objects.chunk_size, objects.min_file) == (1 << 16, 5)
    finally:
        chunked.close()
    whole = open_service(Settings(home=str(tmp_path), chunk_size=0))
    try:
        assert isinstance(whole.context.objects, LocalObjectStore)  # 0: every object whole
    finally:
        whole.close()
    assert settings_from({"CAIRN_CHUNK_SIZE": "0"}).chunk_size == 0
    for bad in ("1000", "8192", str(8 << 20), "-1"):
        with pytest.raises(InvalidArgument) as caught:
            settings_from({"CAIRN_CHUNK_SIZE": bad})
        assert caught.value.details["field"] == "CAIRN_CHUNK_SIZE"
