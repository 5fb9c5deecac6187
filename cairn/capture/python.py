"""The Python environment a run starts in: interpreter version, every installed
distribution pinned, the command line, and the environment variables a setting allows.

Distributions do not change within a process, so they are read once; a variable whose
name looks like a secret is never taken, whatever the setting allows.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.metadata
import os
import platform
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from cairn.capture.secrets import SECRET_PATTERNS, redact_arguments, redact_urls
from cairn.core.versioning.blobs import PythonEnvironment

__all__ = ["SECRET_PATTERNS", "capture_python", "installed_requirements", "safe_environment"]

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.cache
def installed_requirements() -> tuple[str, ...]:
    """``name==version`` of every distribution importable here (the first one on
    ``sys.path`` for a name, as imports find it), once per process.

    The name and version come from the ``{name}-{version}.dist-info`` folder's own name,
    which the packaging specifications require to be both, normalized: reading every
    ``METADATA`` file through :mod:`importlib.metadata` costs some 45 ms for 65
    distributions, the folder names under 2 ms. Anything else (an ``.egg-info``, a folder
    named otherwise, a zip on the path) is read through :mod:`importlib.metadata`.
    """
    pinned: dict[str, str] = {}
    for entry in dict.fromkeys(sys.path):
        for name, version in _distributions_in(entry or "."):
            key = canonicalize_name(name)
            if key not in pinned and _pinnable(key, version):
                pinned[key] = f"{key}=={version}"
    return tuple(pinned[k] for k in sorted(pinned))


def _distributions_in(entry: str) -> Iterator[tuple[str, str]]:
    try:
        found = sorted(os.scandir(entry), key=lambda e: e.name)
    except NotADirectoryError:  # a zip on the path: importlib.metadata reads inside it
        for dist in importlib.metadata.distributions(path=[entry]):
            yield dist.metadata["Name"] or "", dist.version or ""
        return
    except OSError:
        return
    for item in found:
        stem, dot, suffix = item.name.rpartition(".")
        if suffix not in ("dist-info", "egg-info") or not dot:
            continue
        name, dash, version = stem.partition("-")
        if suffix == "dist-info" and dash and "-" not in version:
            yield name, version
            continue
        dist = importlib.metadata.PathDistribution(Path(item.path))
        yield dist.metadata["Name"] or "", dist.version or ""


def _pinnable(name: str, version: str) -> bool:
    """Whether ``name==version`` is a requirement packaging can read (a version PEP 440
    cannot spell is left out, not fatal)."""
    if not name or not version:
        return False
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def safe_environment(environ: Mapping[str, str], allowed: Iterable[str]) -> dict[str, str]:
    """The variables whose names match an ``allowed`` pattern and no secret pattern,
    credentials taken out of URLs in their values."""
    wanted = _matcher(tuple(p.strip() for p in allowed if p.strip()))
    return {
        name: redact_urls(_text(value))
        for name, value in environ.items()
        if wanted(name)
        and _NAME.fullmatch(name)
        and "\x00" not in value
        and not _SECRET(name.upper())
    }


def _text(value: str) -> str:
    """Text as recorded: bytes that were not UTF-8 (kept by Python as lone surrogates in
    ``sys.argv`` and ``os.environ``) become U+FFFD."""
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@functools.lru_cache(maxsize=16)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], object]:
    """One compiled test for a set of shell-style patterns (fnmatch's own translation)."""
    if not patterns:
        return lambda _: False
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


_SECRET: Final = _matcher(SECRET_PATTERNS)


def capture_python(
    environ: Mapping[str, str], allowed_variables: Iterable[str] = ()
) -> PythonEnvironment:
    """This process's Python environment as a blob (made once for the same variables
    and command line: a sweep of runs asks for the same one again and again)."""
    variables = safe_environment(environ, allowed_variables)
    arguments = redact_arguments([_text(a) for a in sys.argv])
    command = (sys.executable.rsplit("/", 1)[-1] or "python", *arguments)
    return _environment(tuple(sorted(variables.items())), command)


@functools.lru_cache(maxsize=8)
def _environment(
    variables: tuple[tuple[str, str], ...], command: tuple[str, ...]
) -> PythonEnvironment:
    return PythonEnvironment(
        list(installed_requirements()),
        version=platform.python_version(),
        environment=dict(variables),
        command_line=list(command),
    )
