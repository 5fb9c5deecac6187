"""Search: runs, experiments and projects found with the query language, whole, a keyset
page at a time (see docs/search.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cairn.core.errors import InvalidArgument
from cairn.core.identity import Role
from cairn.core.query import OrderKey, Scope, parse_order, parse_query
from cairn.core.search import (
    Cursor,
    ExperimentRecord,
    Page,
    ProjectRecord,
    Record,
    RepositoryRecord,
    RunRecord,
    check_limit,
    decode_cursor,
    encode_cursor,
    query_fingerprint,
)
from cairn.core.validation import check_entity_id
from cairn.service.access import not_found
from cairn.service.base import ServicePart
from cairn.store.metadata.search import SearchRequest
from cairn.store.metadata.tx import MetadataTx

__all__ = ["SearchService", "parse_columns"]

# Value families a page can carry; `columns=` picks among them.
_FAMILIES = ("hyperparameters", "metrics", "tags", "attributes")


def parse_columns(columns: Sequence[str] | None) -> dict[str, list[str] | None] | None:
    """``["metrics.acc", "hyperparameters", "tags"]`` -> which keys of each family a
    page carries (None: all of a family; a family not named: none). None: everything."""
    if columns is None:
        return None
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
        raise InvalidArgument("columns", "must be a list of names like 'metrics.acc' or 'tags'")
    chosen: dict[str, list[str] | None] = {}
    for column in columns:
        family, _, key = column.partition(".")
        family = "hyperparameters" if family == "params" else family
        if family not in _FAMILIES:
            if "." not in column:
                continue  # a plain field (name, status...): always there
            raise InvalidArgument(
                "columns",
                f"{column!r}: values come from {', '.join(_FAMILIES)} (e.g. 'metrics.acc')",
            )
        if family == "tags" or not key:
            chosen[family] = None
        elif family not in chosen or chosen[family] is not None:
            keys = chosen.setdefault(family, [])
            assert keys is not None
            keys.append(key)
    return chosen


class SearchService(ServicePart):
    def _request(
        self,
        scope: Scope,
        query: str,
        order_by: Sequence[str] | None,
        limit: int,
        cursor: str | None,
        *,
        default_order: Sequence[str],
        experiment_ids: Sequence[str] | None = None,
        project_ids: Sequence[str] | None = None,
        include_deleted: bool = False,
    ) -> tuple[SearchRequest, str]:
        where = parse_query(query, scope)
        if order_by is None or isinstance(order_by, str):
            order_by = [order_by] if isinstance(order_by, str) else list(default_order)
        order: list[OrderKey] = parse_order(order_by, scope)
        limit = check_limit(limit, self.settings.max_search_limit)
        for name, ids in (("experiment_ids", experiment_ids), ("project_ids", project_ids)):
            if ids is not None:
                for entity_id in ids:
                    check_entity_id(entity_id, name)
        principal = self.access.restricted()
        if principal is not None:  # a named container it cannot read is as none
            for kind, ids in (("experiment", experiment_ids), ("project", project_ids)):
                for entity_id in ids or ():
                    self._allow(entity_id, Role.READER, kind)
        scope_text = repr(
            (sorted(experiment_ids or []), sorted(project_ids or []), include_deleted)
        )
        fingerprint = query_fingerprint(scope.value, query, [str(k) for k in order], scope_text)
        decoded: Cursor | None = None
        if cursor is not None:
            decoded = decode_cursor(cursor, fingerprint)
        now = self.clock()
        return SearchRequest(
            scope=scope,
            where=where,
            order=order,
            limit=limit,
            cursor=decoded,
            experiment_ids=list(experiment_ids) if experiment_ids is not None else None,
            project_ids=list(project_ids) if project_ids is not None else None,
            include_deleted=include_deleted,
            now=now,
            crashed_before=now - int(self.settings.heartbeat_timeout * 1000),
            readable_by=None if principal is None else principal.user_id,
        ), fingerprint

    def find_runs(
        self,
        query: str = "",
        *,
        experiment_ids: Sequence[str] | None = None,
        project_ids: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        columns: Sequence[str] | None = None,
        include_deleted: bool = False,
    ) -> Page[RunRecord]:
        """Runs matching ``query`` (all runs when empty), newest first unless
        ``order_by`` says otherwise, with their values (``columns``: only those)."""
        request, fingerprint = self._request(
            Scope.RUNS,
            query,
            order_by,
            limit,
            cursor,
            default_order=(),
            experiment_ids=experiment_ids,
            project_ids=project_ids,
            include_deleted=include_deleted,
        )
        wanted = parse_columns(columns)
        with self.metadata.read() as tx:
            _check_scope(tx, request)
            found, last = tx.search.page(request)
            infos = self._present_all(found, request.now)
            ids = [i.id for i in infos]
            values = _values(tx, ids, wanted)
        items = [
            RunRecord(
                info,
                hyperparameters=values["hyperparameters"].get(info.id, {}),
                metrics=values["metrics"].get(info.id, {}),
                tags=values["tags"].get(info.id, []),
                attributes=values["attributes"].get(info.id, {}),
            )
            for info in infos
        ]
        return Page(items, _next(last, infos, fingerprint))

    def count_runs(
        self,
        query: str = "",
        *,
        experiment_ids: Sequence[str] | None = None,
        project_ids: Sequence[str] | None = None,
        include_deleted: bool = False,
    ) -> int:
        request, _ = self._request(
            Scope.RUNS,
            query,
            (),
            1,
            None,
            default_order=(),
            experiment_ids=experiment_ids,
            project_ids=project_ids,
            include_deleted=include_deleted,
        )
        with self.metadata.read() as tx:
            _check_scope(tx, request)
            return tx.search.count(request)

    def _records(self, request: SearchRequest, fingerprint: str) -> Page[Any]:
        """A page of experiments, projects or repositories with their tags and
        attributes."""
        with self.metadata.read() as tx:
            _check_scope(tx, request)
            infos, last = tx.search.page(request)
            ids = [i.id for i in infos]
            tags = tx.search.tags(ids)
            attributes = tx.search.attributes(ids, None)
        items = [Record(i, tags.get(i.id, []), attributes.get(i.id, {})) for i in infos]
        return Page(items, _next(last, infos, fingerprint))

    def find_experiments(
        self,
        query: str = "",
        *,
        project_ids: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> Page[ExperimentRecord]:
        request, fingerprint = self._request(
            Scope.EXPERIMENTS,
            query,
            order_by,
            limit,
            cursor,
            default_order=(),
            project_ids=project_ids,
            include_deleted=include_deleted,
        )
        return self._records(request, fingerprint)

    def find_repositories(
        self,
        query: str = "",
        *,
        project_ids: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[RepositoryRecord]:
        request, fingerprint = self._request(
            Scope.REPOSITORIES,
            query,
            order_by,
            limit,
            cursor,
            default_order=(),
            project_ids=project_ids,
        )
        return self._records(request, fingerprint)

    def find_projects(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> Page[ProjectRecord]:
        request, fingerprint = self._request(
            Scope.PROJECTS,
            query,
            order_by,
            limit,
            cursor,
            default_order=(),
            include_deleted=include_deleted,
        )
        return self._records(request, fingerprint)


def _check_scope(tx: MetadataTx, request: SearchRequest) -> None:
    unknown = tx.search.unknown(request)
    if unknown is not None:
        kind, entity_id = unknown
        raise not_found(kind, entity_id)


def _values(
    tx: MetadataTx, ids: list[str], wanted: dict[str, list[str] | None] | None
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for family in _FAMILIES:
        if wanted is not None and family not in wanted:
            found[family] = {}
            continue
        keys = None if wanted is None else wanted[family]
        if family == "hyperparameters":
            found[family] = tx.search.hyperparameters(ids, keys)
        elif family == "metrics":
            found[family] = tx.search.metrics(ids, keys)
        elif family == "tags":
            found[family] = tx.search.tags(ids)
        else:
            found[family] = tx.search.attributes(ids, keys)
    return found


def _next(last: tuple[Any, ...] | None, infos: Sequence[Any], fingerprint: str) -> str | None:
    if last is None or not infos:
        return None
    return encode_cursor(Cursor(last, infos[-1].id, fingerprint))
