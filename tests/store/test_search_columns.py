"""Search builds entities from table rows by position: each table's columns must be its
value type's fields, in order."""

from __future__ import annotations

import dataclasses

import pytest

from cairn.core.model import ExperimentInfo, ProjectInfo, RunInfo
from cairn.store.metadata.schema import experiments, projects, runs


@pytest.mark.parametrize(
    ("table", "info"), [(runs, RunInfo), (experiments, ExperimentInfo), (projects, ProjectInfo)]
)
def test_table_columns_are_the_fields_in_order(table: object, info: type) -> None:
    columns = [c.name for c in table.c]  # type: ignore[attr-defined]
    assert columns == [f.name for f in dataclasses.fields(info)]
