"""Versioned ingredients for people: each blob kind as sections (facts, tables, lists)
the templates draw the same way, and each change of a diff as rows of a table, worded
per kind (a hyperparameter's value, a requirement's version, a dataset file's size and
digest). Pure: the page module reads, this shapes; every string is escaped by the
templates."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2.filters import do_filesizeformat

from cairn.core.api import API_PREFIX
from cairn.core.versioning.blobs import (
    Blob,
    DockerEnvironment,
    GitReference,
    Hyperparameters,
    NotebookCode,
    PathDataset,
    PythonEnvironment,
    SnapshotCode,
)
from cairn.core.versioning.canonical import Json, shown
from cairn.core.versioning.diff import FieldChange, PathChange
from cairn.core.versioning.merge import FOLDER, MergeConflict
from cairn.ui.render import cell_text

__all__ = [
    "BlobView",
    "Cell",
    "ChangeRow",
    "ConflictRow",
    "ConflictSide",
    "PathDiff",
    "Section",
    "blob_view",
    "conflict_row",
    "path_diff",
]

STATUS = {"added": "added", "deleted": "removed", "modified": "changed"}


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell: text, maybe a download link (``href`` to ``/api/v1/objects/...``)."""

    text: str
    href: str | None = None
    download: str | None = None
    mono: bool = False
    num: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """One part of a blob: ``facts`` (label, cell), a ``table`` (headers, rows), a ``list``
    of lines, or ``json`` (pretty text)."""

    title: str
    kind: str
    headers: tuple[str, ...] = ()
    rows: Sequence[tuple[Cell, ...]] = ()
    lines: Sequence[str] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class BlobView:
    kind: str
    summary: str  # one line: "3 values", "12 files, 4.1 MiB"
    sections: list[Section]


def _size(n: int) -> str:
    return str(do_filesizeformat(n, binary=True))


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _object(digest: str, name: str) -> Cell:
    return Cell(digest[:12], href=f"{API_PREFIX}/objects/{digest}", download=name, mono=True)


def _facts(title: str, pairs: Sequence[tuple[str, Cell | str]]) -> Section:
    rows = [(Cell(k), v if isinstance(v, Cell) else Cell(v, mono=True)) for k, v in pairs]
    return Section(title, "facts", rows=[r for r in rows if r[1].text])


def _variables(values: dict[str, str]) -> Section | None:
    if not values:
        return None
    rows = [(Cell(k, mono=True), Cell(v, mono=True)) for k, v in sorted(values.items())]
    return Section("environment variables", "table", ("name", "value"), rows)


def _hyperparameters(blob: Hyperparameters) -> BlobView:
    values = [
        (Cell(k, mono=True), Cell(type(v).__name__), Cell(cell_text(v), mono=True))
        for k, v in sorted(blob.values.items())
    ]
    sections = [Section("values", "table", ("key", "type", "value"), values)]
    if blob.ranges:
        rows = [
            (Cell(k, mono=True), *(Cell(cell_text(b), mono=True) for b in (r.begin, r.end, r.step)))
            for k, r in sorted(blob.ranges.items())
        ]
        sections.append(Section("ranges", "table", ("key", "begin", "end", "step"), rows))
    if blob.sets:
        rows = [
            (Cell(k, mono=True), Cell(", ".join(cell_text(v) for v in s), mono=True))
            for k, s in sorted(blob.sets.items())
        ]
        sections.append(Section("sets", "table", ("key", "values"), rows))
    n = len(blob.values)
    return BlobView(blob.KIND, f"{n} value{'s' if n != 1 else ''}", sections)


def _python(blob: PythonEnvironment) -> BlobView:
    sections = [
        _facts(
            "interpreter",
            [("python", blob.version), ("command line", shlex.join(blob.command_line))],
        )
    ]
    sections.append(Section("requirements", "list", lines=sorted(blob.requirements.values())))
    if blob.constraints:
        sections.append(Section("constraints", "list", lines=sorted(blob.constraints.values())))
    if (env := _variables(dict(blob.environment))) is not None:
        sections.append(env)
    if blob.apt:
        sections.append(Section("apt packages", "list", lines=list(blob.apt)))
    n = len(blob.requirements)
    summary = f"Python {blob.version or '?'}, {n} requirement{'s' if n != 1 else ''}"
    return BlobView(blob.KIND, summary, [s for s in sections if s.rows or s.lines])


def _docker(blob: DockerEnvironment) -> BlobView:
    image = [
        ("repository", blob.repository),
        ("tag", blob.tag),
        ("digest", blob.image_digest),
        ("command line", shlex.join(blob.command_line)),
    ]
    sections = [_facts("image", image)]
    if (env := _variables(dict(blob.environment))) is not None:
        sections.append(env)
    name = blob.repository + (f":{blob.tag}" if blob.tag else "")
    return BlobView(blob.KIND, name, sections)


def _git_facts(blob: GitReference) -> Sequence[tuple[str, Cell | str]]:
    diff: Cell | str = "" if blob.diff is None else _object(blob.diff, "uncommitted.patch")
    return [
        ("remote", blob.remote),
        ("commit", blob.commit),
        ("branch", blob.branch),
        ("tag", blob.tag),
        ("uncommitted changes", "yes" if blob.dirty else "no"),
        ("diff", diff),
    ]


def _git(blob: GitReference) -> BlobView:
    summary = " ".join(x for x in (blob.branch, blob.commit[:12]) if x) or blob.remote
    return BlobView(blob.KIND, summary, [_facts("reference", _git_facts(blob))])


def _snapshot(blob: SnapshotCode) -> BlobView:
    rows = [
        (Cell(f.path, mono=True), Cell(_size(f.size), num=True), _object(f.digest, f.path))
        for f in blob.files
    ]
    total = sum(f.size for f in blob.files)
    n = len(blob.files)
    section = Section("files", "table", ("path", "size", "digest"), rows)
    return BlobView(blob.KIND, f"{n} file{'s' if n != 1 else ''}, {_size(total)}", [section])


def _notebook(blob: NotebookCode) -> BlobView:
    name = blob.path.rsplit("/", 1)[-1]
    facts: list[tuple[str, Cell | str]] = [
        ("path", blob.path),
        ("size", _size(blob.size)),
        ("content", _object(blob.content, name)),
    ]
    sections = [_facts("notebook", facts)]
    if blob.git is not None:
        sections.append(_facts("git", _git_facts(blob.git)))
    return BlobView(blob.KIND, blob.path, sections)


def _dataset(blob: PathDataset) -> BlobView:
    rows = [
        (
            Cell(c.path, mono=True),
            Cell(_size(c.size), num=True),
            Cell(c.digest[:16], mono=True),
            Cell(_time(c.modified)),
        )
        for c in blob.components
    ]
    n = len(blob.components)
    headers = ("path", "size", "digest", "last modified (UTC)")
    section = Section("components", "table", headers, rows)
    return BlobView(blob.KIND, f"{n} file{'s' if n != 1 else ''}, {_size(blob.size)}", [section])


_VIEWS: dict[type[Blob], Callable[[Any], BlobView]] = {
    Hyperparameters: _hyperparameters,
    PythonEnvironment: _python,
    DockerEnvironment: _docker,
    GitReference: _git,
    SnapshotCode: _snapshot,
    NotebookCode: _notebook,
    PathDataset: _dataset,
}


def blob_view(blob: Blob) -> BlobView:
    """``blob`` for people, by its kind; a kind without a view of its own as pretty JSON."""
    for cls, make in _VIEWS.items():
        if isinstance(blob, cls):
            return make(blob)
    text = json.dumps(blob.body(), ensure_ascii=False, indent=2, sort_keys=True)
    return BlobView(blob.KIND, "", [Section("content", "json", text=text)])


# -- diffs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One changed field: what it is, added/removed/changed, its two sides, and a note
    (which parts of a dataset file changed, a version moving)."""

    label: str
    status: str
    before: str
    after: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class PathDiff:
    path: str
    status: str  # added, removed, changed
    kind: str  # the kind after (before, for a removed path); "a → b" if it changed kind
    rows: list[ChangeRow]
    left_out: bool = False  # its fields, in a diff too long to show them all

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)


# The library name at the start of a requirement line (packaging's normal form keeps the
# name first): read with a pattern, as parsing 1,000 lines again costs half a second.
_NAME = re.compile(r"\s*[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _requirement_version(line: Json) -> str:
    """``numpy==1.26`` -> ``==1.26``: what a requirement asks of its library."""
    if not isinstance(line, str):
        return shown(line)
    found = _NAME.match(line)
    rest = line[found.end() :].strip() if found else line
    return rest or "(any version)"


def _component(value: Json) -> str:
    if not isinstance(value, dict):
        return shown(value)
    size = value.get("size")
    modified = value.get("modified")
    digest = str(value.get("digest", ""))
    parts = [_size(size) if isinstance(size, int) else "", digest[:12]]
    if isinstance(modified, int):
        parts.append(_time(modified))
    return " · ".join(p for p in parts if p)


def _component_note(before: Json, after: Json) -> str:
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return ""
    moved = [k for k in ("size", "digest", "modified") if before.get(k) != after.get(k)]
    return ", ".join(moved) + " changed" if moved else ""


def _file(value: Json) -> str:
    if isinstance(value, list) and len(value) == 2:
        return f"{_size(value[1])} · {str(value[0])[:12]}"
    return shown(value)


def _side(value: Json, fmt: Callable[[Json], str]) -> str:
    return "" if value is None else fmt(value)


def change_row(kind: str, change: FieldChange) -> ChangeRow:
    """One field change, worded for the blob kind it belongs to."""
    section, *rest = change.field
    key = rest[0] if rest else ""
    status = STATUS[change.status]
    before, after = change.before, change.after
    if kind == Hyperparameters.KIND:
        label = key if section == "values" else f"{section[:-1]} {key}"
        return ChangeRow(label, status, _side(before, shown), _side(after, shown))
    if kind == PythonEnvironment.KIND and section in ("requirements", "constraints"):
        label = key if section == "requirements" else f"{key} (constraint)"
        old, new = _side(before, _requirement_version), _side(after, _requirement_version)
        note = "version change" if status == "changed" else ""
        return ChangeRow(label, status, old, new, note)
    if kind == PathDataset.KIND and section == "components":
        note = _component_note(before, after)
        return ChangeRow(key, status, _side(before, _component), _side(after, _component), note)
    if kind == SnapshotCode.KIND and section == "files":
        return ChangeRow(key, status, _side(before, _file), _side(after, _file))
    label = ".".join(change.field)
    return ChangeRow(label, status, _side(before, shown), _side(after, shown))


def _rows(kind: str, change: FieldChange) -> list[ChangeRow]:
    """A field whose two sides are objects (a git reference, a notebook) as one row per
    key that differs; a dataset file stays one row (its note says what changed)."""
    before, after = change.before, change.after
    if kind == PathDataset.KIND or not (isinstance(before, dict) and isinstance(after, dict)):
        return [change_row(kind, change)]
    name = ".".join(change.field)
    return [
        ChangeRow(
            f"{name}.{key}",
            STATUS[_status_of(before.get(key), after.get(key))],
            _side(before.get(key), shown),
            _side(after.get(key), shown),
        )
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]


def _status_of(before: Json, after: Json) -> str:
    return "added" if before is None else "deleted" if after is None else "modified"


def path_diff(change: PathChange, fields: bool = True) -> PathDiff:
    """A path's change; ``fields=False`` leaves its fields out (a diff too long to show
    every field of every path)."""
    before, after = change.before, change.after
    either = after if after is not None else before
    row_kind = "" if either is None else either.KIND
    kind = row_kind
    if before is not None and after is not None and before.KIND != after.KIND:
        kind = f"{before.KIND} → {after.KIND}"
    rows = [row for f in change.fields for row in _rows(row_kind, f)] if fields else []
    left_out = not fields and bool(change.fields)
    return PathDiff(change.path, STATUS[change.status], kind, rows, left_out)


# -- merge conflicts -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConflictSide:
    """One side of a conflict: its text, and a whole blob drawn (a path in conflict as a
    whole: a git reference changed on both sides, a path added twice)."""

    text: str
    blob: BlobView | None = None


@dataclass(frozen=True, slots=True)
class ConflictRow:
    path: str
    field: str  # "" for the path as a whole
    base: ConflictSide
    ours: ConflictSide
    theirs: ConflictSide


def _conflict_side(value: Any) -> ConflictSide:
    if value is None:
        return ConflictSide("(absent)")
    if value is FOLDER:
        return ConflictSide("(a folder)")
    if isinstance(value, Blob):
        view = blob_view(value)
        return ConflictSide(f"{value.KIND}: {view.summary}".rstrip(": "), view)
    return ConflictSide(shown(value))


def conflict_row(conflict: MergeConflict) -> ConflictRow:
    name = "" if conflict.field is None else ".".join(conflict.field)
    return ConflictRow(
        conflict.path,
        name,
        _conflict_side(conflict.base),
        _conflict_side(conflict.ours),
        _conflict_side(conflict.theirs),
    )
