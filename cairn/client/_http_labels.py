"""Tags, attributes and hyperparameters over REST (the
:class:`~cairn.service.contracts.Labels` part of the HTTP backend)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cairn.client._transport import Transport
from cairn.client._transport import path_id as _id
from cairn.core.model import HyperparameterValue
from cairn.core.settings import Settings
from cairn.core.validation import (
    check_hyperparameter_value,
    check_mapping,
    check_name,
    check_names,
    encode_attribute,
)

__all__ = ["HttpLabels"]

_KEYS_PER_REQUEST = 100


class HttpLabels:
    """Tags, attributes and hyperparameters."""

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self._t = transport
        self.settings = settings

    def add_tags(self, entity_id: str, tags: Iterable[str]) -> None:
        body = {"tags": check_names(tags, "tag")}
        self._t.post(f"/entities/{_id(entity_id, 'entity_id')}/tags", body)

    def remove_tags(self, entity_id: str, tags: Iterable[str]) -> None:
        body = {"tags": check_names(tags, "tag")}
        self._t.post(f"/entities/{_id(entity_id, 'entity_id')}/tags/remove", body)

    def get_tags(self, entity_id: str) -> list[str]:
        tags: list[str] = self._t.get(f"/entities/{_id(entity_id, 'entity_id')}/tags")
        return tags

    def set_attributes(self, entity_id: str, values: Mapping[str, Any]) -> None:
        check_mapping(values, "attributes")
        limit = self.settings.max_attribute_bytes
        for key, value in values.items():
            encode_attribute(value, f"attribute {check_name(key, 'attribute key')!r}", limit)
        path = f"/entities/{_id(entity_id, 'entity_id')}/attributes"
        self._t.request("PATCH", path, json={"attributes": dict(values)})

    def get_attributes(self, entity_id: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
        path = f"/entities/{_id(entity_id, 'entity_id')}/attributes"
        if keys is None:
            everything: dict[str, Any] = self._t.get(path)
            return everything
        wanted = check_names(keys, "attribute key")
        found: dict[str, Any] = {}
        # In pieces: no URL outgrows what a server or a proxy takes (none for no key).
        for start in range(0, len(wanted), _KEYS_PER_REQUEST):
            found.update(self._t.get(path, key=wanted[start : start + _KEYS_PER_REQUEST]))
        return found

    def remove_attributes(self, entity_id: str, keys: Iterable[str]) -> None:
        body = {"keys": check_names(keys, "attribute key")}
        self._t.post(f"/entities/{_id(entity_id, 'entity_id')}/attributes/remove", body)

    def log_hyperparameters(
        self, run_id: str, values: Mapping[str, Any], *, overwrite: bool = False
    ) -> None:
        check_mapping(values, "hyperparameters")
        checked = {  # numpy scalars become plain int/float/bool here, as in the service
            check_name(k, "hyperparameter key"): check_hyperparameter_value(
                v, f"hyperparameter {k!r}"
            )
            for k, v in values.items()
        }
        body = {"hyperparameters": checked, "overwrite": overwrite}
        self._t.post(f"/runs/{_id(run_id, 'run_id')}/hyperparameters", body)

    def get_hyperparameters(self, run_id: str) -> dict[str, HyperparameterValue]:
        path = f"/runs/{_id(run_id, 'run_id')}/hyperparameters"
        found: dict[str, HyperparameterValue] = self._t.get(path)
        return found
