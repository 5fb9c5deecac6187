"""Runs named the ways people name them: a full id in any case, the start or the end of
an id (the short id ``cairn runs ls`` shows is its random tail), or
``PROJECT/EXPERIMENT/RUN_NAME``."""

from __future__ import annotations

import re

from cairn.core.errors import InvalidArgument, NotFound
from cairn.core.ids import short_id
from cairn.core.model import RunInfo
from cairn.core.validation import UUID_PATTERN, check_id_fragment
from cairn.service.contracts import Entities

__all__ = ["find_run"]

_UUID = re.compile(UUID_PATTERN)
_FORMS = "an id, 8 or more hex digits of one (its start or its end), or PROJECT/EXPERIMENT/NAME"


def find_run(entities: Entities, ref: str) -> RunInfo:
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidArgument("run", f"must be {_FORMS}")
    text = ref.strip()
    if "/" in text:
        return _by_path(entities, text)
    lowered = text.lower()
    if _UUID.fullmatch(lowered):
        return entities.get_run(lowered)
    try:
        fragment = check_id_fragment(lowered, "run")
    except InvalidArgument:
        raise InvalidArgument("run", f"must be {_FORMS}, got {text!r}") from None
    found = entities.find_runs_by_id(fragment)
    if not found:
        raise NotFound(f"no run whose id starts or ends with {text!r}", kind="run", id=text)
    if len(found) > 1:
        listed = "; ".join(f"{short_id(r.id)} {r.name!r} ({r.id})" for r in found)
        raise InvalidArgument("run", f"{text!r} names {len(found)} runs or more: {listed}")
    return found[0]


def _by_path(entities: Entities, path: str) -> RunInfo:
    """Names may hold '/' themselves: every way of cutting the path in three is tried,
    left to right, and the first that names a run wins."""
    cuts = [i for i, ch in enumerate(path) if ch == "/" and 0 < i < len(path) - 1]
    missing: NotFound | None = None
    for a, first in enumerate(cuts):
        for second in cuts[a + 1 :]:
            if second == first + 1:
                continue
            project, experiment, name = path[:first], path[first + 1 : second], path[second + 1 :]
            try:
                found = entities.get_project_by_name(project)
                exp = entities.get_experiment_by_name(found.id, experiment)
                return entities.get_run_by_name(exp.id, name)
            except NotFound as exc:
                missing = missing or exc
    if missing is None:
        raise InvalidArgument("run", f"expected PROJECT/EXPERIMENT/NAME, got {path!r}")
    raise missing
