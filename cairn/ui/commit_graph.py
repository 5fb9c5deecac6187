"""The commit log's graph of merges, as ``git log --graph`` draws it: commits newest first
(every commit above its parents), each in a lane; a lane runs down to the commit's first
parent, and a merge's other parents branch off into lanes of their own.

Each row is drawn on its own (a small SVG in the row's first cell, see
``templates/repository.html``): lines from the top of the row (0 %), its middle (50 %,
where the commit's dot is) or its bottom (100 %), so rows of any height join up.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from cairn.core.digest import Digest
from cairn.core.versioning.info import CommitInfo

__all__ = ["LANE", "GraphRow", "graph_rows", "newest_first"]

LANE = 16  # px between lanes
TOP, MID, BOTTOM = "0%", "50%", "100%"


@dataclass(frozen=True, slots=True)
class GraphRow:
    commit: CommitInfo
    column: int  # the lane of the commit's dot
    lanes: int  # lanes drawn in this row (the SVG's width is lanes * LANE)
    lines: tuple[tuple[int, str, int, str], ...]  # (x1 px, y1 %, x2 px, y2 %)

    @property
    def x(self) -> int:
        return _x(self.column)

    @property
    def width(self) -> int:
        return max(1, self.lanes) * LANE


def _x(lane: int) -> int:
    return lane * LANE + LANE // 2


def newest_first(commits: Iterable[CommitInfo]) -> list[CommitInfo]:
    """``commits`` newest first, every commit before its parents (among those given): the
    union of several branches' logs in one order."""
    known = {c.id: c for c in commits}
    children: dict[Digest, int] = dict.fromkeys(known, 0)
    for c in known.values():
        for p in set(c.parents):
            if p in children:
                children[p] += 1
    ready = [(-c.time, c.id) for c in known.values() if children[c.id] == 0]
    heapq.heapify(ready)
    ordered = []
    while ready:
        _, digest = heapq.heappop(ready)
        commit = known[digest]
        ordered.append(commit)
        for p in set(commit.parents):
            if p in children:
                children[p] -= 1
                if children[p] == 0:
                    heapq.heappush(ready, (-known[p].time, p))
    return ordered


def _slot(lanes: list[Digest | None]) -> int:
    """The first free lane (a new one at the right if none is free)."""
    for i, held in enumerate(lanes):
        if held is None:
            return i
    lanes.append(None)
    return len(lanes) - 1


def graph_rows(commits: list[CommitInfo]) -> list[GraphRow]:
    """The graph of ``commits`` (newest first, children before parents). Lanes never shift
    sideways: a lane freed by a branch that ended is reused by the next one to start."""
    lanes: list[Digest | None] = []  # lane -> the commit it runs down to
    rows = []
    for commit in commits:
        incoming = [i for i, held in enumerate(lanes) if held == commit.id]
        column = incoming[0] if incoming else _slot(lanes)
        drawn = len(lanes)
        lines = [(_x(i), TOP, _x(column), MID) for i in incoming]
        lines += [
            (_x(i), TOP, _x(i), BOTTOM) for i, h in enumerate(lanes) if h not in (None, commit.id)
        ]
        for i in incoming:
            lanes[i] = None
        for k, parent in enumerate(dict.fromkeys(commit.parents)):
            waiting = [i for i, held in enumerate(lanes) if held == parent]
            if waiting:  # another lane already runs to this parent: join it
                target = waiting[0]
            else:
                target = column if k == 0 and lanes[column] is None else _slot(lanes)
                lanes[target] = parent
            lines.append((_x(column), MID, _x(target), BOTTOM))
        while lanes and lanes[-1] is None:
            lanes.pop()
        width = max(drawn, len(lanes), column + 1)
        rows.append(GraphRow(commit, column, width, tuple(lines)))
    return rows
