"""Blobs: the typed ingredients a commit holds at its paths (code, config, data, environment).

Every blob is a frozen value with a validated schema and a canonical JSON form, made of
*sections*: a section is either one value taken as a whole (a Docker tag, a command line,
a git reference) or a map whose entries stand alone (hyperparameters by key, requirements
by library, dataset components by path). Diffs and three-way merges work on the entries
(:meth:`Blob.fields`), so they are typed for free: a changed learning rate is one field, a
new version of numpy is one field. Equality is content: two blobs are equal when their kind
and canonical bytes are, whatever class made them.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import InvalidArgument
from cairn.core.model import HyperparameterValue
from cairn.core.validation import (
    check_artifact_key,
    check_hyperparameter_value,
    check_name,
    check_text,
)
from cairn.core.versioning.canonical import (
    Json,
    canonical_bytes,
    decode_value,
    encode_value,
    object_digest,
    parse_canonical,
)

__all__ = [
    "BLOB_KINDS",
    "Blob",
    "Component",
    "DatasetFile",
    "DatasetTree",
    "DockerEnvironment",
    "Field",
    "FileEntry",
    "GitReference",
    "Hyperparameters",
    "NotebookCode",
    "PathDataset",
    "PythonEnvironment",
    "QueryDataset",
    "Range",
    "S3Dataset",
    "S3Object",
    "SnapshotCode",
    "blob_from_body",
    "blob_from_canonical",
]

# A field of a blob: (section,) for a whole section, (section, key) for a map's entry.
Field = tuple[str, ...]
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PYTHON_VERSION = re.compile(r"(\d+(\.\d+){0,2}[\w.+-]*)?")


class Blob:
    """The base of every blob kind. Subclasses are frozen dataclasses that define ``KIND``,
    ``MAPS`` (their keyed sections), :meth:`body` and :meth:`from_body`."""

    KIND: ClassVar[str]
    MAPS: ClassVar[frozenset[str]] = frozenset()

    def body(self) -> dict[str, Json]:
        """The canonical JSON form, section by section."""
        raise NotImplementedError  # every kind defines it

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        """The blob whose canonical form is ``body`` (checked as if made by hand)."""
        raise NotImplementedError  # every kind defines it

    def objects(self) -> tuple[Digest, ...]:
        """The objects of the object store this blob names (file contents, a diff): they
        must be stored before a commit may hold the blob."""
        return ()

    # -- identity -------------------------------------------------------------------------
    def canonical(self) -> bytes:
        return canonical_bytes(self.body())

    def digest(self) -> Digest:
        return object_digest(self.KIND, self.canonical())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Blob):
            return NotImplemented
        return self.KIND == other.KIND and self.canonical() == other.canonical()

    def __hash__(self) -> int:
        return hash((self.KIND, self.canonical()))

    # -- fields, for diff and merge -----------------------------------------------------------
    def fields(self) -> dict[Field, Json]:
        """Every field and its canonical value: a whole section, or one entry of a map."""
        found: dict[Field, Json] = {}
        for section, value in self.body().items():
            if section in self.MAPS:
                for key, entry in value.items():
                    found[(section, key)] = entry
            elif value not in (None, "", [], {}):  # empty sections are absent fields
                found[(section,)] = value
        return found

    @classmethod
    def encode_field(cls, field: Field, value: Any) -> Json:
        """A value given for ``field`` (to settle a merge conflict) in canonical form: a
        value of the field, or a blob of this kind to take the field from (None: the
        field absent). The blob built of the fields is checked as a whole either way."""
        if isinstance(value, Blob):
            if value.KIND != cls.KIND:
                raise InvalidArgument(
                    ".".join(field), f"is a field of {cls.KIND}, not of {value.KIND}"
                )
            return value.fields().get(field)
        return cls._encode_field(field, value)

    @classmethod
    def _encode_field(cls, field: Field, value: Any) -> Json:
        """The kinds whose fields are not plain JSON say how to encode a given value."""
        return value

    @classmethod
    def from_fields(cls, fields: Mapping[Field, Json]) -> Self:
        """The blob made of ``fields`` (as :meth:`fields` gives them)."""
        body: dict[str, Json] = {section: {} for section in cls.MAPS}
        for key, value in fields.items():
            if len(key) == 2 and key[0] in cls.MAPS:
                body[key[0]][key[1]] = value
            elif len(key) == 1 and key[0] not in cls.MAPS:
                body[key[0]] = value
            else:
                raise InvalidArgument("field", f"{'.'.join(key)!r} is not a field of {cls.KIND}")
        return cls.from_body(body)


def _section(body: Mapping[str, Json], name: str, kind: type, default: Json) -> Any:
    value = body.get(name, default)
    if not isinstance(value, kind):
        raise InvalidArgument(name, f"must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _unknown(body: Mapping[str, Json], known: Iterable[str], kind: str) -> None:
    extra = sorted(set(body) - set(known))
    if extra:
        raise InvalidArgument(extra[0], f"is not a section of a {kind} blob")


# -- config ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Range:
    """A continuous hyperparameter range: from ``begin`` to ``end`` by ``step``."""

    begin: int | float
    end: int | float
    step: int | float

    def __post_init__(self) -> None:
        for name in ("begin", "end", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidArgument(f"range {name}", f"must be a number, got {value!r}")
            check_hyperparameter_value(value, f"range {name}")  # an int in 64 bits
            if not math.isfinite(value):
                raise InvalidArgument(f"range {name}", "must be finite")
        if self.begin > self.end:
            raise InvalidArgument("range", f"begin {self.begin} is after end {self.end}")
        if self.step <= 0:
            raise InvalidArgument("range step", f"must be positive, got {self.step}")

    def encode(self) -> list[list[str]]:
        return [encode_value(self.begin), encode_value(self.end), encode_value(self.step)]

    @classmethod
    def decode(cls, value: Json, what: str) -> Range:
        if not isinstance(value, list) or len(value) != 3:
            raise InvalidArgument(what, "must be [begin, end, step]")
        begin, end, step = (decode_value(v, what) for v in value)
        return cls(begin, end, step)  # type: ignore[arg-type]  # checked by __post_init__


def _range(key: str, value: object) -> Range:
    if isinstance(value, Range):
        return value
    if isinstance(value, list | tuple) and len(value) == 3:
        return Range(*value)
    raise InvalidArgument(f"range {key!r}", "must be (begin, end, step)")


@dataclass(frozen=True, eq=False)
class Hyperparameters(Blob):
    """Configuration: hyperparameters (key -> int, float, str or bool, each kept with its
    type, as ``run.log_hyperparameters`` keeps them), continuous ranges and discrete sets."""

    KIND: ClassVar[str] = "config.hyperparameters"
    MAPS: ClassVar[frozenset[str]] = frozenset({"values", "ranges", "sets"})

    values: Mapping[str, HyperparameterValue] = field(default_factory=dict)
    ranges: Mapping[str, Range] = field(default_factory=dict)
    sets: Mapping[str, tuple[HyperparameterValue, ...]] = field(default_factory=dict)

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        ranges: Mapping[str, Any] | None = None,
        sets: Mapping[str, Iterable[Any]] | None = None,
    ) -> None:
        checked = {
            check_name(k, "hyperparameter key"): check_hyperparameter_value(
                v, f"hyperparameter {k!r}"
            )
            for k, v in _mapping(values, "values").items()
        }
        spans = {
            check_name(k, "range key"): _range(k, v) for k, v in _mapping(ranges, "ranges").items()
        }
        choices: dict[str, tuple[HyperparameterValue, ...]] = {}
        for key, options in _mapping(sets, "sets").items():
            check_name(key, "set key")
            if isinstance(options, str | bytes | Mapping) or not isinstance(options, Iterable):
                raise InvalidArgument(f"set {key!r}", "must be a list of values")
            unique = {
                tuple(encode_value(check_hyperparameter_value(o, f"set {key!r}"))): o
                for o in options
            }
            if not unique:
                raise InvalidArgument(f"set {key!r}", "must not be empty")
            choices[key] = tuple(unique[k] for k in sorted(unique))
        object.__setattr__(self, "values", checked)
        object.__setattr__(self, "ranges", spans)
        object.__setattr__(self, "sets", choices)

    @classmethod
    def _encode_field(cls, field: Field, value: Any) -> Json:
        section, key = ((*field, ""))[:2]
        if section == "values":
            return encode_value(check_hyperparameter_value(value, f"hyperparameter {key!r}"))
        if section == "ranges":
            return _range(key, value).encode()
        if section == "sets":
            return cls(sets={key: value}).body()["sets"][key]
        return value

    def body(self) -> dict[str, Json]:
        return {
            "values": {k: encode_value(v) for k, v in self.values.items()},
            "ranges": {k: r.encode() for k, r in self.ranges.items()},
            "sets": {k: [encode_value(v) for v in s] for k, s in self.sets.items()},
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, cls.MAPS, cls.KIND)
        values = _section(body, "values", dict, {})
        ranges = _section(body, "ranges", dict, {})
        sets = _section(body, "sets", dict, {})
        return cls(
            {k: decode_value(v, f"hyperparameter {k!r}") for k, v in values.items()},
            ranges={k: Range.decode(v, f"range {k!r}") for k, v in ranges.items()},
            sets={
                k: [decode_value(o, f"set {k!r}") for o in _list(v, f"set {k!r}")]
                for k, v in sets.items()
            },
        )


# -- environment ----------------------------------------------------------------------------
def _requirements(lines: Iterable[str] | None, what: str) -> dict[str, str]:
    """Requirement lines by canonical library name, each in packaging's normal form."""
    if isinstance(lines, str):
        raise InvalidArgument(what, "must be a list of requirement lines, not one string")
    found: dict[str, str] = {}
    for line in lines or ():
        if not isinstance(line, str):
            raise InvalidArgument(what, f"must be strings, got {type(line).__name__}")
        try:
            parsed = Requirement(line)
        except InvalidRequirement as exc:
            raise InvalidArgument(what, f"{line!r} is not a valid requirement: {exc}") from None
        name = canonicalize_name(parsed.name)
        if name in found:
            raise InvalidArgument(what, f"names {parsed.name!r} twice")
        found[name] = str(parsed)
    return found


def _environment(variables: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in _mapping(variables, "environment").items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise InvalidArgument("environment", f"{name!r} is not a variable name")
        checked[name] = check_text(value, f"environment {name}")
    return checked


def _command_line(words: Iterable[str] | None) -> tuple[str, ...]:
    if isinstance(words, str):
        raise InvalidArgument("command_line", "must be a list of words, not one string")
    return tuple(check_text(w, f"command_line word {i}") for i, w in enumerate(words or ()))


def _packages(names: Iterable[str] | None) -> tuple[str, ...]:
    if isinstance(names, str):
        raise InvalidArgument("apt", "must be a list of package names, not one string")
    return tuple(sorted({check_name(n, "apt package") for n in names or ()}))


@dataclass(frozen=True, eq=False)
class PythonEnvironment(Blob):
    """A Python environment: the interpreter's version, requirements and constraints (by
    library, in ``packaging``'s normal form), environment variables, the command line and
    apt packages."""

    KIND: ClassVar[str] = "environment.python"
    MAPS: ClassVar[frozenset[str]] = frozenset(
        {"requirements", "constraints", "environment", "apt"}
    )

    version: str = ""
    requirements: Mapping[str, str] = field(default_factory=dict)
    constraints: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    command_line: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()

    def __init__(
        self,
        requirements: Iterable[str] | None = None,
        *,
        version: str = "",
        constraints: Iterable[str] | None = None,
        environment: Mapping[str, str] | None = None,
        command_line: Iterable[str] | None = None,
        apt: Iterable[str] | None = None,
    ) -> None:
        if not isinstance(version, str) or not re.fullmatch(r"(\d+(\.\d+){0,2}[\w.+-]*)?", version):
            raise InvalidArgument(
                "version", f"must be a Python version like '3.11.7', got {version!r}"
            )
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "requirements", _requirements(requirements, "requirements"))
        object.__setattr__(self, "constraints", _requirements(constraints, "constraints"))
        object.__setattr__(self, "environment", _environment(environment))
        object.__setattr__(self, "command_line", _command_line(command_line))
        object.__setattr__(self, "apt", _packages(apt))

    @classmethod
    def _encode_field(cls, field: Field, value: Any) -> Json:
        if field[0] in ("requirements", "constraints") and isinstance(value, str):
            ((name, line),) = _requirements([value], field[0]).items()
            if len(field) == 2 and name != field[1]:
                raise InvalidArgument(
                    ".".join(field), f"{value!r} is a requirement on {name}, not {field[1]}"
                )
            return line
        if field[0] == "apt":
            return True if value else None  # kept, or left out
        if field[0] == "command_line":
            return list(_command_line(value))
        return value

    def body(self) -> dict[str, Json]:
        return {
            "version": self.version,
            "requirements": dict(self.requirements),
            "constraints": dict(self.constraints),
            "environment": dict(self.environment),
            "command_line": list(self.command_line),
            "apt": {name: True for name in self.apt},
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, {*cls.MAPS, "version", "command_line"}, cls.KIND)
        return cls(
            list(_section(body, "requirements", dict, {}).values()),
            version=_section(body, "version", str, ""),
            constraints=list(_section(body, "constraints", dict, {}).values()),
            environment=_section(body, "environment", dict, {}),
            command_line=_section(body, "command_line", list, []),
            apt=list(_section(body, "apt", dict, {})),
        )


@dataclass(frozen=True, eq=False)
class DockerEnvironment(Blob):
    """A container image (repository, tag, digest), with environment variables and the
    command line."""

    KIND: ClassVar[str] = "environment.docker"
    MAPS: ClassVar[frozenset[str]] = frozenset({"environment"})

    repository: str = ""
    tag: str = ""
    image_digest: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    command_line: tuple[str, ...] = ()

    def __init__(
        self,
        repository: str,
        tag: str = "",
        digest: str = "",
        *,
        environment: Mapping[str, str] | None = None,
        command_line: Iterable[str] | None = None,
    ) -> None:
        if not isinstance(repository, str) or not repository.strip():
            raise InvalidArgument("repository", "must name an image repository")
        check_name(repository, "repository")
        if not isinstance(tag, str) or (tag and not re.fullmatch(r"[\w][\w.-]{0,127}", tag)):
            raise InvalidArgument("tag", f"is not a Docker tag: {tag!r}")
        if not isinstance(digest, str) or (
            digest and not re.fullmatch(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}", digest)
        ):
            raise InvalidArgument("digest", f"is not an image digest like 'sha256:...': {digest!r}")
        object.__setattr__(self, "repository", repository)
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "image_digest", digest)
        object.__setattr__(self, "environment", _environment(environment))
        object.__setattr__(self, "command_line", _command_line(command_line))

    def body(self) -> dict[str, Json]:
        return {
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.image_digest,
            "environment": dict(self.environment),
            "command_line": list(self.command_line),
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, {*cls.MAPS, "repository", "tag", "digest", "command_line"}, cls.KIND)
        return cls(
            _section(body, "repository", str, ""),
            _section(body, "tag", str, ""),
            _section(body, "digest", str, ""),
            environment=_section(body, "environment", dict, {}),
            command_line=_section(body, "command_line", list, []),
        )


# -- code -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GitReference(Blob):
    """Code in git: remote, commit, branch, tag, whether the work tree had uncommitted
    changes, and the object holding that diff. Diffed and merged as a whole."""

    KIND: ClassVar[str] = "code.git"

    remote: str = ""
    commit: str = ""
    branch: str = ""
    tag: str = ""
    dirty: bool = False
    diff: Digest | None = None

    def __post_init__(self) -> None:
        for name in ("remote", "branch", "tag"):
            value = getattr(self, name)
            if not isinstance(value, str) or "\x00" in value or "\n" in value:
                raise InvalidArgument(name, "must be one line of text")
        if not isinstance(self.commit, str) or (
            self.commit and not re.fullmatch(r"[0-9a-f]{7,64}", self.commit)
        ):
            raise InvalidArgument("commit", f"is not a git commit id: {self.commit!r}")
        if not isinstance(self.dirty, bool):
            raise InvalidArgument("dirty", "must be true or false")
        if self.diff is not None:
            parse_digest(self.diff, "diff")
        if not (self.remote or self.commit):
            raise InvalidArgument("commit", "a git reference needs a commit or a remote")

    def objects(self) -> tuple[Digest, ...]:
        return () if self.diff is None else (self.diff,)

    def body(self) -> dict[str, Json]:
        reference = {
            "remote": self.remote,
            "commit": self.commit,
            "branch": self.branch,
            "tag": self.tag,
            "dirty": self.dirty,
            "diff": self.diff,
        }
        return {"reference": {k: v for k, v in reference.items() if v not in ("", None)}}

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, {"reference"}, cls.KIND)
        reference = _section(body, "reference", dict, {})
        _unknown(reference, ("remote", "commit", "branch", "tag", "dirty", "diff"), cls.KIND)
        return cls(**reference)


@dataclass(frozen=True, order=True, slots=True)
class FileEntry:
    """One file of a snapshot: its path in the snapshot, digest and size."""

    path: str
    digest: Digest
    size: int

    def __post_init__(self) -> None:
        _check_file(self.path, self.digest, self.size)


# A path of plain names (no segment that starts with '.', no character a path rule is
# about): taken as is. Any other goes through every rule of check_artifact_key. A capture
# of 20,000 files checks 20,000 paths, most of them plain.
_PLAIN_PATH = re.compile(r"[\w+=,@-][\w.+=,@-]*(?:/[\w+=,@-][\w.+=,@-]*)*", re.ASCII)


def _check_file(path: str, digest: str, size: int) -> None:
    if not (isinstance(path, str) and len(path) <= 1024 and _PLAIN_PATH.fullmatch(path)):
        check_artifact_key(path, "file path")
    parse_digest(digest, "file digest")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidArgument("file size", f"must be a size in bytes, got {size!r}")


@dataclass(frozen=True, eq=False)
class SnapshotCode(Blob):
    """Source files themselves (for code outside git): each file's bytes are an object in
    the object store; diffed and merged file by file."""

    KIND: ClassVar[str] = "code.snapshot"
    MAPS: ClassVar[frozenset[str]] = frozenset({"files"})

    files: tuple[FileEntry, ...] = ()

    def __init__(self, files: Iterable[FileEntry]) -> None:
        object.__setattr__(self, "files", _unique_paths(files, "files"))

    def objects(self) -> tuple[Digest, ...]:
        return tuple(f.digest for f in self.files)

    def body(self) -> dict[str, Json]:
        return {"files": {f.path: [f.digest, f.size] for f in self.files}}

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, cls.MAPS, cls.KIND)
        files = _section(body, "files", dict, {})
        return cls(
            FileEntry(path, *_pair(value, f"file {path!r}")) for path, value in files.items()
        )


@dataclass(frozen=True, eq=False)
class NotebookCode(Blob):
    """A Jupyter notebook: its path, the object holding its content, its size, and the git
    reference of the work tree it came from, if any. Diffed and merged as a whole."""

    KIND: ClassVar[str] = "code.notebook"

    path: str = ""
    content: str = ""
    size: int = 0
    git: GitReference | None = None

    def __post_init__(self) -> None:
        FileEntry(self.path, Digest(self.content), self.size)  # the same rules as any file
        if self.git is not None and not isinstance(self.git, GitReference):
            raise InvalidArgument("git", "must be a git reference")

    def objects(self) -> tuple[Digest, ...]:
        return (Digest(self.content), *(() if self.git is None else self.git.objects()))

    def body(self) -> dict[str, Json]:
        notebook: dict[str, Json] = {"path": self.path, "content": self.content, "size": self.size}
        if self.git is not None:
            notebook["git"] = self.git.body()["reference"]
        return {"notebook": notebook}

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, {"notebook"}, cls.KIND)
        notebook = dict(_section(body, "notebook", dict, {}))
        _unknown(notebook, ("path", "content", "size", "git"), cls.KIND)
        git = notebook.pop("git", None)
        return cls(
            **notebook,
            git=None if git is None else GitReference.from_body({"reference": git}),
        )


# -- data -----------------------------------------------------------------------------------
@dataclass(frozen=True, order=True, slots=True)
class Component:
    """One file of a dataset: path (relative to the dataset), size, modification time (ms)
    and digest. A symbolic link is recorded as one (``link``: its target as written; size
    and digest are those of the target text), never followed."""

    path: str
    size: int
    modified: int
    digest: Digest
    link: str | None = None

    def __post_init__(self) -> None:
        _check_file(self.path, self.digest, self.size)  # the same rules as any file
        if isinstance(self.modified, bool) or not isinstance(self.modified, int):
            raise InvalidArgument("modified", "must be milliseconds since the epoch")
        if self.link is not None and (not isinstance(self.link, str) or not self.link):
            raise InvalidArgument("link", f"must be a link's target, got {self.link!r}")

    def value(self) -> dict[str, Json]:
        """The canonical form (``link`` only for a link, so older ids stay the same)."""
        found: dict[str, Json] = {
            "size": self.size,
            "modified": self.modified,
            "digest": self.digest,
        }
        if self.link is not None:
            found["link"] = self.link
        return found


@dataclass(frozen=True, eq=False)
class PathDataset(Blob):
    """A dataset of local files, as components; diffed and merged component by component.
    ``captured``: the files' bytes are in the object store too (a dataset version that can
    be checked out), not only described."""

    KIND: ClassVar[str] = "dataset.path"
    MAPS: ClassVar[frozenset[str]] = frozenset({"components"})

    components: tuple[Component, ...] = ()
    captured: bool = False

    def __init__(self, components: Iterable[Component], captured: bool = False) -> None:
        if not isinstance(captured, bool):
            raise InvalidArgument("captured", f"must be true or false, got {captured!r}")
        object.__setattr__(self, "components", _unique_paths(components, "components"))
        object.__setattr__(self, "captured", captured)

    @property
    def size(self) -> int:
        return sum(c.size for c in self.components)

    def objects(self) -> tuple[Digest, ...]:
        if not self.captured:
            return ()
        return tuple(dict.fromkeys(c.digest for c in self.components if c.link is None))

    def body(self) -> dict[str, Json]:
        found: dict[str, Json] = {"components": {c.path: c.value() for c in self.components}}
        if self.captured:  # absent when not, so uncaptured ids stay as they were
            found["captured"] = True
        return found

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, {*cls.MAPS, "captured"}, cls.KIND)
        components = _section(body, "components", dict, {})
        captured = _section(body, "captured", bool, False)
        found = []
        for path, value in components.items():
            keys = set(value) if isinstance(value, dict) else set()
            if keys not in ({"size", "modified", "digest"}, {"size", "modified", "digest", "link"}):
                raise InvalidArgument(
                    f"component {path!r}", "must have size, modified, digest (and link)"
                )
            found.append(
                Component(
                    path, value["size"], value["modified"], value["digest"], value.get("link")
                )
            )
        return cls(found, captured)


@dataclass(frozen=True, eq=False)
class DatasetFile(Blob):
    """One file of a dataset version kept as a tree: the blob at ``files/<its path>`` of
    the version's commit (the path is the tree's, not the blob's, so one blob serves every
    path and version whose file has the same size, time and bytes). ``captured``: its
    bytes are in the object store. A link is recorded as one (``link``: its target as
    written; size and digest are those of the target text), never followed."""

    KIND: ClassVar[str] = "dataset.file"

    size: int = 0
    modified: int = 0
    content: str = ""  # the digest of its bytes (``digest()`` is the blob's own id)
    link: str | None = None
    captured: bool = False

    def __post_init__(self) -> None:
        parse_digest(self.content, "file digest")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidArgument("file size", f"must be a size in bytes, got {self.size!r}")
        if isinstance(self.modified, bool) or not isinstance(self.modified, int):
            raise InvalidArgument("modified", "must be milliseconds since the epoch")
        if self.link is not None and (not isinstance(self.link, str) or not self.link):
            raise InvalidArgument("link", f"must be a link's target, got {self.link!r}")
        if not isinstance(self.captured, bool):
            raise InvalidArgument("captured", f"must be true or false, got {self.captured!r}")

    @classmethod
    def of(cls, component: Component, captured: bool) -> DatasetFile:
        return cls(component.size, component.modified, component.digest, component.link, captured)

    def component(self, path: str) -> Component:
        return Component(path, self.size, self.modified, Digest(self.content), self.link)

    def objects(self) -> tuple[Digest, ...]:
        return (Digest(self.content),) if self.captured and self.link is None else ()

    def body(self) -> dict[str, Json]:
        found: dict[str, Json] = {
            "size": self.size,
            "modified": self.modified,
            "digest": self.content,
        }
        if self.link is not None:
            found["link"] = self.link
        if self.captured:
            found["captured"] = True
        return found

    def canonical(self) -> bytes:
        if self.link is not None:
            return canonical_bytes(self.body())
        return self.plain_canonical(self.size, self.modified, self.content, self.captured)

    @staticmethod
    def plain_canonical(size: int, modified: int, content: str, captured: bool) -> bytes:
        """The canonical form of a file that is not a link, spelled out as the JSON of
        :meth:`body` is (keys sorted, no spaces) in a tenth of ``json.dumps``' time: a
        version of 20,000 files makes 20,000 of these each time it is captured."""
        head = '{"captured":true,' if captured else "{"
        return f'{head}"digest":"{content}","modified":{modified},"size":{size}}}'.encode()

    @classmethod
    def _plain(cls, size: int, modified: int, content: str, captured: bool) -> DatasetFile:
        """A file whose values come from its canonical bytes, matched whole (so checked)."""
        blob = object.__new__(cls)
        for name, value in (
            ("size", size),
            ("modified", modified),
            ("content", content),
            ("link", None),
            ("captured", captured),
        ):
            object.__setattr__(blob, name, value)
        return blob

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, ("size", "modified", "digest", "link", "captured"), cls.KIND)
        missing = {"size", "modified", "digest"} - set(body)
        if missing:
            raise InvalidArgument(sorted(missing)[0], f"is missing from a {cls.KIND} blob")
        captured = body.get("captured", False)
        if captured is not True and "captured" in body:
            raise InvalidArgument("captured", "is true or absent")
        return cls(body["size"], body["modified"], body["digest"], body.get("link"), captured)


# The canonical bytes of a dataset file that is not a link (plain_canonical's), whole:
# integers as JSON writes them (no leading zero, within 64 bits checked by int()).
_PLAIN_FILE = re.compile(
    rb'\{(?:("captured":true),)?"digest":"([0-9a-f]{64})",'
    rb'"modified":(0|-?[1-9][0-9]{0,18}),"size":(0|[1-9][0-9]{0,18})\}'
)


@dataclass(frozen=True, eq=False)
class DatasetTree(Blob):
    """A dataset version of local files kept as a tree: this blob (at ``dataset``) says
    how many files there are, their total size (links not counted) and whether their
    bytes were captured; the files themselves are the ``dataset.file`` blobs under
    ``files/`` of the same commit, one per file, so a version that changes one file
    makes new tree nodes only along that file's path."""

    KIND: ClassVar[str] = "dataset.tree"

    files: int = 0
    size: int = 0
    captured: bool = False

    def __post_init__(self) -> None:
        for name in ("files", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument(name, f"must be a count, got {value!r}")
        if not isinstance(self.captured, bool):
            raise InvalidArgument("captured", f"must be true or false, got {self.captured!r}")

    def body(self) -> dict[str, Json]:
        found: dict[str, Json] = {"files": self.files, "size": self.size}
        if self.captured:
            found["captured"] = True
        return found

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, ("files", "size", "captured"), cls.KIND)
        captured = body.get("captured", False)
        if captured is not True and "captured" in body:
            raise InvalidArgument("captured", "is true or absent")
        return cls(_section(body, "files", int, 0), _section(body, "size", int, 0), captured)


@dataclass(frozen=True, order=True, slots=True)
class S3Object:
    """One object under an S3 prefix, as listed: key (relative to the prefix), size,
    ETag, version id (None where the bucket keeps no versions) and last-modified (ms);
    ``digest``: the BLAKE3 of its bytes, once captured into the object store."""

    key: str
    size: int
    etag: str
    modified: int
    version: str | None = None
    digest: str | None = None

    @property
    def path(self) -> str:  # for the unique-path rule of components
        return self.key

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise InvalidArgument("key", f"must be an object key, got {self.key!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidArgument("size", f"must be a size in bytes, got {self.size!r}")
        if not isinstance(self.etag, str):
            raise InvalidArgument("etag", f"must be a string, got {self.etag!r}")
        if isinstance(self.modified, bool) or not isinstance(self.modified, int):
            raise InvalidArgument("modified", "must be milliseconds since the epoch")
        if self.version is not None and (not isinstance(self.version, str) or not self.version):
            raise InvalidArgument("version", f"must be a version id, got {self.version!r}")
        if self.digest is not None:
            parse_digest(self.digest, f"digest of {self.key!r}")

    def value(self) -> dict[str, Json]:
        found: dict[str, Json] = {"size": self.size, "etag": self.etag, "modified": self.modified}
        if self.version is not None:
            found["version"] = self.version
        if self.digest is not None:  # absent when listed only: those ids stay the same
            found["digest"] = self.digest
        return found


@dataclass(frozen=True, eq=False)
class S3Dataset(Blob):
    """The objects under an S3 prefix, recorded without downloading them; diffed and
    merged object by object (a changed ETag or version is a changed object).
    ``captured``: each object's bytes are in the object store too (its ``digest``), so
    the version checks out to a folder (:meth:`components`)."""

    KIND: ClassVar[str] = "dataset.s3"
    MAPS: ClassVar[frozenset[str]] = frozenset({"objects"})

    uri: str = ""
    entries: tuple[S3Object, ...] = ()
    captured: bool = False

    def __init__(self, uri: str, objects: Iterable[S3Object], captured: bool = False) -> None:
        if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) <= 5:
            raise InvalidArgument("uri", f"must be s3://BUCKET/PREFIX, got {uri!r}")
        object.__setattr__(self, "uri", uri)
        if isinstance(objects, str | bytes):
            raise InvalidArgument("objects", "must be a list")
        ordered = tuple(sorted(objects))
        for before, after in itertools.pairwise(ordered):
            if before.key == after.key:
                raise InvalidArgument("objects", f"name {after.key!r} twice")
        if not isinstance(captured, bool):
            raise InvalidArgument("captured", f"must be true or false, got {captured!r}")
        if captured:
            for entry in ordered:
                if entry.digest is None:
                    raise InvalidArgument(f"object {entry.key!r}", "is captured without a digest")
        object.__setattr__(self, "entries", ordered)
        object.__setattr__(self, "captured", captured)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.entries)

    def objects(self) -> tuple[Digest, ...]:
        if not self.captured:
            return ()
        return tuple(dict.fromkeys(Digest(o.digest) for o in self.entries if o.digest))

    def components(self) -> tuple[Component, ...]:
        """A captured prefix as the files it checks out to (folder markers, keys ending
        in ``/``, left out); a key that cannot be a relative path is refused, naming it."""
        return tuple(
            Component(o.key, o.size, o.modified, Digest(o.digest))
            for o in self.entries
            if o.digest is not None and not o.key.endswith("/")
        )

    def body(self) -> dict[str, Json]:
        found: dict[str, Json] = {
            "uri": self.uri,
            "objects": {o.key: o.value() for o in self.entries},
        }
        if self.captured:  # absent when not, so listed-only ids stay as they were
            found["captured"] = True
        return found

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, {*cls.MAPS, "uri", "captured"}, cls.KIND)
        listed = _section(body, "objects", dict, {})
        captured = _section(body, "captured", bool, False)
        found = []
        allowed = {"size", "etag", "modified", "version", "digest"}
        for key, value in listed.items():
            keys = set(value) if isinstance(value, dict) else set()
            if not {"size", "etag", "modified"} <= keys <= allowed:
                raise InvalidArgument(f"object {key!r}", "must have size, etag, modified")
            found.append(
                S3Object(
                    key,
                    value["size"],
                    value["etag"],
                    value["modified"],
                    value.get("version"),
                    value.get("digest"),
                )
            )
        return cls(_section(body, "uri", str, ""), found, captured)


@dataclass(frozen=True, eq=False)
class QueryDataset(Blob):
    """A dataset that is the answer of a query: its text, the database it ran on (a URL
    without its password), when it ran (ms), how long it took (ms) and how many rows it
    gave. Each is a field of its own in a diff."""

    KIND: ClassVar[str] = "dataset.query"

    text: str = ""
    source: str = ""
    executed_at: int | None = None
    duration_ms: int | None = None
    row_count: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidArgument("text", "must be the query's text")
        if not isinstance(self.source, str):
            raise InvalidArgument("source", f"must be a string, got {self.source!r}")
        for name in ("executed_at", "duration_ms", "row_count"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidArgument(name, f"must be an integer, got {value!r}")
            if value is not None and value < 0:
                raise InvalidArgument(name, f"must not be negative, got {value!r}")

    def body(self) -> dict[str, Json]:
        found: dict[str, Json] = {"text": self.text, "source": self.source}
        for name in ("executed_at", "duration_ms", "row_count"):
            if getattr(self, name) is not None:
                found[name] = getattr(self, name)
        return found

    @classmethod
    def from_body(cls, body: Mapping[str, Json]) -> Self:
        _unknown(body, ("text", "source", "executed_at", "duration_ms", "row_count"), cls.KIND)
        return cls(**body)  # checked by __post_init__


# -- decoding -------------------------------------------------------------------------------
BLOB_KINDS: dict[str, type[Blob]] = {
    kind.KIND: kind
    for kind in (
        Hyperparameters,
        PythonEnvironment,
        DockerEnvironment,
        GitReference,
        SnapshotCode,
        NotebookCode,
        PathDataset,
        DatasetTree,
        DatasetFile,
        S3Dataset,
        QueryDataset,
    )
}


def blob_from_canonical(kind: str, data: bytes) -> Blob:
    """The blob of ``kind`` whose canonical bytes are ``data`` (read back from a store or
    sent by a client). A plain dataset file, of which a version holds thousands, is read
    by one regular expression when its bytes are exactly its canonical form."""
    if kind == DatasetFile.KIND:
        found = _PLAIN_FILE.fullmatch(data)
        if found is not None:
            captured, content, modified, size = found.groups()
            return DatasetFile._plain(int(size), int(modified), content.decode(), bool(captured))
    return blob_from_body(kind, parse_canonical(data, kind))


def blob_from_body(kind: str, body: Json) -> Blob:
    """The blob of ``kind`` whose canonical form is ``body``."""
    cls = BLOB_KINDS.get(kind)
    if cls is None:
        known = ", ".join(sorted(BLOB_KINDS))
        raise InvalidArgument("kind", f"{kind!r} is not a blob kind (one of {known})")
    if not isinstance(body, dict):
        raise InvalidArgument("blob", f"a {kind} blob must be a JSON object")
    return cls.from_body(body)


# -- helpers --------------------------------------------------------------------------------
def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(what, f"must be a mapping, got {type(value).__name__}")
    return value


def _list(value: Json, what: str) -> list[Json]:
    if not isinstance(value, list):
        raise InvalidArgument(what, "must be a list")
    return value


def _pair(value: Json, what: str) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidArgument(what, "must be [digest, size]")
    return value[0], value[1]


def _unique_paths(entries: Iterable[Any], what: str) -> tuple[Any, ...]:
    if isinstance(entries, str | bytes):
        raise InvalidArgument(what, "must be a list")
    ordered = tuple(sorted(entries))
    for before, after in itertools.pairwise(ordered):
        if before.path == after.path:
            raise InvalidArgument(what, f"name {after.path!r} twice")
    paths = {e.path for e in ordered}
    for entry in ordered:  # a file cannot also be a folder of others
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            if (folder := "/".join(parts[:depth])) in paths:
                raise InvalidArgument(what, f"{folder!r} is a file and a folder of {entry.path!r}")
    return ordered
