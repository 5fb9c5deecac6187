"""What a command prints while the server it was given does not answer: one warning line,
then one error line, exit status 1; and an https:// URL to a plain-HTTP server at once."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.cli._common import WarningLine
from cairn.core.settings import Settings
from tests.cli.conftest import Invoke
from tests.servers import serve_in_thread


@pytest.fixture(autouse=True)
def no_warning_line_left() -> Iterator[None]:
    """The CLI installs its warning handler on the process's ``cairn`` logger: taken off
    again, so that other tests in this process log as a library does."""
    yield
    logger = logging.getLogger("cairn")
    for handler in [h for h in logger.handlers if isinstance(h, WarningLine)]:
        logger.removeHandler(handler)


def test_a_down_server_gives_one_warning_then_the_error(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_RETRY_TIMEOUT", "2")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        for _ in range(2):  # a second command in the same process: the same two lines
            result = invoke("projects", "ls", "--url", url)
            assert result.exit_code == 1, (result.stdout, result.stderr)
            assert result.stdout == ""
            warning, error = result.stderr.splitlines()
            assert re.fullmatch(
                rf"warning: cairn server at {re.escape(url)} unreachable "
                r"\(connection refused\), retrying until \d\d:\d\d:\d\d",
                warning,
            ), warning
            assert error.startswith(
                f"error: cannot reach the Cairn server at {url}: connection refused, retried for 2."
            ), error


def test_https_to_a_plain_http_server_is_an_error_at_once(invoke: Invoke, tmp_path: Path) -> None:
    with serve_in_thread(Settings(home=str(tmp_path / "home"))) as url:
        https = url.replace("http://", "https://")
        started = time.monotonic()
        result = invoke("projects", "ls", "--url", https)
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {https} answered in plain HTTP: use http:// "
        "(TLS handshake failed: wrong version number)\n"
    )
    assert elapsed < 1.0
