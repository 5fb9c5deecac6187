"""What a capture must never record: variables whose names look like credentials, the
values of command-line options that look like them, and passwords or tokens written into
URLs (``https://token@host/...``, ``postgres://user:password@host/db``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

__all__ = ["HIDDEN", "SECRET_PATTERNS", "redact_arguments", "redact_urls"]

# Never captured, whatever is allowed: names that usually hold credentials.
SECRET_PATTERNS: Final = (
    "*TOKEN*",
    "*SECRET*",
    "*PASS*",
    "*PWD*",
    "*KEY*",
    "*CREDENTIAL*",
    "*AUTH*",
    "*COOKIE*",
    "*SESSION*",
)
HIDDEN: Final = "***"

# scheme://userinfo@ ; userinfo is user, or user:password (a token is often the user part)
_URL_USER: Final = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^/@\s:]*)(?::[^/@\s]*)?@")
_SECRET_OPTION: Final = re.compile(
    r"--?[\w.-]*(?:token|secret|pass|pwd|key|credential|auth|cookie|session)[\w.-]*",
    re.IGNORECASE,
)


def redact_urls(text: str) -> str:
    """``text`` with the credentials of every URL in it taken out: the whole user part
    of http(s) URLs (where tokens go), the password of others (``postgres://user@host``)."""

    def keep(found: re.Match[str]) -> str:
        scheme, user = found.group(1), found.group(2)
        if scheme.lower() in ("http", "https") or not user:
            return f"{scheme}://"
        return f"{scheme}://{user}@"

    return _URL_USER.sub(keep, text)


def redact_arguments(arguments: Sequence[str]) -> list[str]:
    """A command line with the value of every option that looks like a credential
    (``--api-key X``, ``--password=X``) hidden, and credentials taken out of URLs."""
    shown: list[str] = []
    hide_next = False
    for argument in arguments:
        if hide_next and not argument.startswith("-"):
            shown.append(HIDDEN)
            hide_next = False
            continue
        hide_next = False
        option, equals, _ = argument.partition("=")
        if _SECRET_OPTION.fullmatch(option):
            if equals:
                shown.append(f"{option}={HIDDEN}")
                continue
            hide_next = True
        shown.append(redact_urls(argument))
    return shown
