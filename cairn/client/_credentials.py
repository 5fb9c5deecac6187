"""The API token the HTTP client sends: given, ``CAIRN_TOKEN``, or the credentials file.

The credentials file (``CAIRN_CREDENTIALS_FILE``, default ``$XDG_CONFIG_HOME/cairn/credentials``,
i.e. ``~/.config/cairn/credentials``) holds one token a line, for the server whose URL leads
the line, or for any server on a line of the token alone::

    # cairn credentials (chmod 600)
    https://cairn.example.com cairn_3q2...
    http://127.0.0.1:5000 cairn_x8f...

The first line naming the server's URL wins, else the first line without a URL. A file that
its group or others may read is refused (an error saying how to fix it), as ssh refuses a
private key others can read: the token is as good as a password.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from cairn.core.errors import InvalidArgument

__all__ = ["credentials_path", "token_for"]


def credentials_path(configured: str | None, environ: Mapping[str, str]) -> Path:
    if configured:
        return Path(configured).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "cairn" / "credentials"


def token_for(url: str, path: Path) -> str | None:
    """The token the credentials file at ``path`` holds for ``url`` (None: no file, or no
    line for that server)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        mode = os.fstat(fd).st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidArgument(
                "credentials",
                f"{os.fspath(path)} may be read by others (mode {stat.filemode(mode)}): it "
                f"holds API tokens, so it must be yours alone: chmod 600 {os.fspath(path)}",
            )
        with os.fdopen(fd, encoding="utf-8") as file:
            fd = -1
            text = file.read()
    finally:
        if fd != -1:
            os.close(fd)
    wanted = url.rstrip("/")
    anywhere = None
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) == 1 and anywhere is None:
            anywhere = words[0]
        elif len(words) == 2 and words[0].rstrip("/") == wanted:
            return words[1]
    return anywhere
