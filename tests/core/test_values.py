"""Pure values: ids, hyperparameter encoding, trees, settings, errors."""

from __future__ import annotations

import math
import pickle
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.core.digest import digest_bytes
from cairn.core.errors import CairnError, Conflict, InvalidArgument
from cairn.core.ids import uuid7
from cairn.core.model import RunStatus, decode_hyperparameter, encode_hyperparameter
from cairn.core.settings import SETTINGS, Settings, settings_from
from cairn.core.tree import Tree, TreeEntry


def test_uuid7_is_versioned_and_time_sorted() -> None:
    a, b = uuid7(1_000), uuid7(2_000)
    assert uuid.UUID(a).version == 7
    assert a < b
    assert int(a.replace("-", "")[:12], 16) == 1_000


@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(), st.booleans()))
def test_hyperparameter_encoding_round_trips_type_and_value(value: object) -> None:
    kind, text, _ = encode_hyperparameter(value)  # type: ignore[arg-type]
    back = decode_hyperparameter(kind, text)
    assert type(back) is type(value)
    assert back == value or (math.isnan(back) and math.isnan(value))  # type: ignore[arg-type]


def test_one_and_one_point_oh_differ() -> None:
    encoded = {encode_hyperparameter(v)[:2] for v in (1, 1.0, "1", True)}
    assert len(encoded) == 4


def _d(content: bytes) -> str:
    return digest_bytes(content)


def test_tree_digest_is_canonical() -> None:
    entries = [TreeEntry("b/x", _d(b"1"), 1), TreeEntry("a", _d(b"22"), 2)]
    one, two = Tree.of(entries), Tree.of(reversed(entries))
    assert one.encode() == two.encode()
    assert one.digest() == two.digest()
    assert Tree.decode(one.encode()) == one
    assert one.size == 3


def test_tree_rules() -> None:
    with pytest.raises(InvalidArgument, match="both a file and a folder"):
        Tree.of([TreeEntry("a", _d(b""), 0), TreeEntry("a/b", _d(b""), 0)])
    with pytest.raises(InvalidArgument, match="appears twice"):
        Tree.of([TreeEntry("a", _d(b""), 0), TreeEntry("a", _d(b""), 0)])
    with pytest.raises(InvalidArgument):
        Tree.of([TreeEntry("../a", _d(b""), 0)])
    with pytest.raises(InvalidArgument, match="not a valid tree"):
        Tree.decode(b'{"kind": "blob"}')


def test_tree_under_folder() -> None:
    tree = Tree.of([TreeEntry("p/a", _d(b"1"), 1), TreeEntry("p/q/b", _d(b"2"), 1)])
    assert [e.path for e in tree.under("p")] == ["a", "q/b"]
    assert tree.under("q") == []


def test_settings_from_environment_and_overrides() -> None:
    env = {"CAIRN_HOME": "/h", "CAIRN_MAX_ATTRIBUTE_BYTES": "10"}
    settings = settings_from(env, home="/override")
    assert settings.home == "/override"
    assert settings.max_attribute_bytes == 10
    with pytest.raises(InvalidArgument, match="CAIRN_BATCH_SIZE"):
        settings_from({"CAIRN_BATCH_SIZE": "-3"})


def test_settings_table_matches_the_dataclass() -> None:
    assert [s.name for s in SETTINGS] == list(Settings.__dataclass_fields__)
    for setting in SETTINGS:
        assert getattr(Settings(), setting.name) == setting.default
        assert setting.env == "CAIRN_" + setting.name.upper()


def test_secrets_never_print() -> None:
    settings = Settings(store_uri="postgresql+psycopg://u:hunter2@h/db")
    assert "hunter2" not in repr(settings)


def test_errors_carry_fields_and_pickle() -> None:
    err = Conflict("lr is set", field="lr")
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, CairnError)
    assert type(back) is Conflict
    assert back.details == {"field": "lr"}
    bad = pickle.loads(pickle.dumps(InvalidArgument("name", "too long")))
    assert str(bad) == "name: too long"


def test_run_status_parse_names_the_choices() -> None:
    assert RunStatus.parse("failed") is RunStatus.FAILED
    with pytest.raises(InvalidArgument, match="running, finished, failed, killed"):
        RunStatus.parse("done")
