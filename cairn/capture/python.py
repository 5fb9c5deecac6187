"""The Python environment a run starts in: interpreter version, every installed
distribution pinned, the command line, and the environment variables a setting allows.

Distributions do not change within a process, so they are read once; a variable whose
name looks like a secret is never taken, whatever the setting allows.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.metadata
import platform
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Final

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from cairn.core.versioning.blobs import PythonEnvironment

__all__ = ["SECRET_PATTERNS", "capture_python", "installed_requirements", "safe_environment"]

# Never captured, whatever is allowed: names that usually hold credentials.
SECRET_PATTERNS: Final = (
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*KEY*",
    "*CREDENTIAL*",
    "*AUTH*",
)
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.cache
def installed_requirements() -> tuple[str, ...]:
    """``name==version`` of every distribution importable here, once per process."""
    pinned: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        version = dist.version
        if not name or not version:
            continue
        line = f"{name}=={version}"
        try:
            Requirement(line)
        except InvalidRequirement:  # a version PEP 440 cannot spell: left out, not fatal
            continue
        pinned.setdefault(canonicalize_name(name), line)
    return tuple(pinned[k] for k in sorted(pinned))


def safe_environment(environ: Mapping[str, str], allowed: Iterable[str]) -> dict[str, str]:
    """The variables whose names match an ``allowed`` pattern and no secret pattern."""
    patterns = [p.strip() for p in allowed if p.strip()]
    found: dict[str, str] = {}
    for name, value in environ.items():
        upper = name.upper()
        if not _NAME.fullmatch(name) or "\x00" in value:
            continue
        if any(fnmatch.fnmatchcase(upper, s) for s in SECRET_PATTERNS):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            found[name] = value
    return found


def capture_python(
    environ: Mapping[str, str], allowed_variables: Iterable[str] = ()
) -> PythonEnvironment:
    """This process's Python environment as a blob."""
    return PythonEnvironment(
        list(installed_requirements()),
        version=platform.python_version(),
        environment=safe_environment(environ, allowed_variables),
        command_line=[sys.executable.rsplit("/", 1)[-1] or "python", *sys.argv],
    )
