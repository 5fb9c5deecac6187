"""The in-process service and the HTTP backend keep one contract
(:mod:`cairn.service.contracts`): for every part of a Backend, both sides offer exactly
the protocol's methods, each with the protocol's signature (parameter names, kinds,
defaults, annotations and return type). A method that one side gains, loses or changes
fails here until the other side and the protocol follow.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.client._http import HttpBackend
from cairn.core.settings import Settings
from cairn.service import TrackingService, open_service
from cairn.service.contracts import PARTS, Backend


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TrackingService]:
    with_store = open_service(Settings(home=str(tmp_path / "home")))
    yield with_store
    with_store.close()


@pytest.fixture
def http() -> Iterator[HttpBackend]:
    backend = HttpBackend("http://127.0.0.1:9", Settings())  # connects to nothing yet
    yield backend
    backend.close()


def public_methods(cls: type[Any]) -> dict[str, inspect.Signature]:
    """The public methods a class offers (its own and inherited), by signature."""
    found: dict[str, inspect.Signature] = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        member = inspect.getattr_static(cls, name)
        if isinstance(member, staticmethod | classmethod):
            member = member.__func__
        if inspect.isfunction(member):
            found[name] = inspect.signature(member)
    return found


def differences(protocol: type[Any], side: type[Any]) -> list[str]:
    """How ``side`` departs from ``protocol``: missing, extra or changed methods."""
    wanted, offered = public_methods(protocol), public_methods(side)
    problems = [f"{side.__name__} lacks {name}{wanted[name]}" for name in wanted.keys() - offered]
    problems += [
        f"{side.__name__}.{name} is not in {protocol.__name__}: add it there and to the "
        "other side, or make it private"
        for name in offered.keys() - wanted
    ]
    for name in sorted(wanted.keys() & offered):
        if _spelled(wanted[name]) != _spelled(offered[name]):
            problems.append(
                f"{side.__name__}.{name}{offered[name]} differs from "
                f"{protocol.__name__}.{name}{wanted[name]}"
            )
    return sorted(problems)


def _spelled(signature: inspect.Signature) -> tuple[object, ...]:
    """A signature as comparable data (annotations are strings: postponed evaluation)."""
    return (
        tuple(
            (p.name, p.kind, p.default, str(p.annotation)) for p in signature.parameters.values()
        ),
        str(signature.return_annotation),
    )


def test_both_backends_keep_every_part_of_the_contract(
    service: TrackingService, http: HttpBackend
) -> None:
    assert set(PARTS) == {
        name for name, member in vars(Backend).items() if isinstance(member, property)
    }, "PARTS must list every part of Backend"
    problems: list[str] = []
    for part, protocol in PARTS.items():
        for backend in (service, http):
            problems += differences(protocol, type(getattr(backend, part)))
    assert not problems, "\n".join(problems)


def test_both_backends_close() -> None:
    for side in (TrackingService, HttpBackend):
        assert public_methods(side)["close"] == public_methods(Backend)["close"]


# The comparison itself must catch what it is meant to catch.
class _Protocol:
    def get(self, run_id: str, *, deleted: bool = False) -> int: ...

    def put(self, run_id: str) -> None: ...


class _Keeps:
    def get(self, run_id: str, *, deleted: bool = False) -> int:
        return 0

    def put(self, run_id: str) -> None:
        pass

    def _helper(self) -> None:  # private: not part of any contract
        pass


class _Drifts:
    def get(self, run_id: str, *, deleted: bool = True) -> int:  # another default
        return 0

    def put(self, run: str) -> None:  # another name
        pass

    def extra(self) -> None:  # only on this side
        pass


class _Lacks:
    def get(self, run_id: str, deleted: bool = False) -> int:  # no longer keyword-only
        return 0


def test_the_comparison_finds_each_kind_of_drift() -> None:
    assert differences(_Protocol, _Keeps) == []
    drift = differences(_Protocol, _Drifts)
    assert len(drift) == 3, drift
    assert any("extra is not in _Protocol" in d for d in drift)
    assert any("_Drifts.get" in d for d in drift)
    assert any("_Drifts.put" in d for d in drift)
    lacks = differences(_Protocol, _Lacks)
    assert any("lacks put" in d for d in lacks)
    assert any("_Lacks.get" in d for d in lacks)
