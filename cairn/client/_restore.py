"""Time travel: everything a run was built from, written back to a folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.core.digest import Digest
from cairn.core.versioning.blobs import Blob, GitReference, NotebookCode, PathDataset
from cairn.files.checkout import checkout, write_json
from cairn.files.nofollow import check_folders

if TYPE_CHECKING:
    from cairn.client._entities import Run

__all__ = ["RestoreReport", "restore_run"]


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What ``run.restore`` wrote, and what it could not restore exactly."""

    path: Path
    files: tuple[Path, ...]
    notes: tuple[str, ...]

    def __str__(self) -> str:
        lines = [f"restored {len(self.files)} files into {self.path}"]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def restore_run(run: Run, dest: str | os.PathLike[str]) -> RestoreReport:
    """Write under ``dest``: ``ingredients/`` (the linked commit's ingredients),
    ``captured/`` (the code and environment the run recorded as it started),
    ``hyperparameters.json`` and ``restore.json`` (this report). Every stored byte is
    verified as it is written."""
    root = Path(dest)
    for folder in ("ingredients", "captured"):  # below dest: never through a link
        check_folders(root, [folder])
    versions = run._backend.repositories

    def fetch(digest: Digest, out: Path) -> int:
        return versions.fetch_object(digest, out)

    files: list[Path] = []
    notes: list[str] = []
    link = versions.get_run_commit(run.id)
    commit = None
    if link is None:
        notes.append("the run links to no commit of ingredients (run.log_commit)")
    else:
        commit = link.commit
        blobs = versions.read_blobs(link.repository_id, link.commit)
        files += checkout(blobs, root / "ingredients", fetch)
        notes += _notes(blobs, "ingredients")
    run._client._capture.wait(run.id)
    captured = versions.get_run_capture(run.id)
    if captured:
        files += checkout(captured, root / "captured", fetch)
        notes += _notes(captured, "captured")
    else:
        notes.append("the run recorded no code or environment of its own (capture was off)")
    files.append(write_json(root / "hyperparameters.json", run.get_hyperparameters()))
    report = {
        "run": run.id,
        "commit": commit,
        "key_paths": dict(link.key_paths) if link is not None else {},
        "notes": notes,
    }
    files.append(write_json(root / "restore.json", report))
    return RestoreReport(root, tuple(files), tuple(notes))


def _notes(blobs: dict[str, Blob], where: str) -> list[str]:
    found: list[str] = []
    for path, blob in sorted(blobs.items()):
        git = blob if isinstance(blob, GitReference) else getattr(blob, "git", None)
        if isinstance(git, GitReference):
            found.append(_git_note(f"{where}/{path}", git))
        if isinstance(blob, PathDataset):
            found.append(
                f"{where}/{path}: the dataset's files are not stored, only their digests: "
                "check your copy against manifest.json"
            )
        if isinstance(blob, NotebookCode) and git is None:
            continue
    return found


def _git_note(where: str, git: GitReference) -> str:
    commit = git.commit[:12] or "(no commit)"
    patch = " and apply uncommitted.patch" if git.diff is not None else ""
    if git.remote:
        return f"{where}: code is git commit {commit} of {git.remote}: check it out{patch}"
    return (
        f"{where}: git commit {commit} was never pushed anywhere this run knows of: its "
        f"reference{' and uncommitted diff are' if git.diff else ' is'} written, not the code"
    )
