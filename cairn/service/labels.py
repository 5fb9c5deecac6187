"""Tags, attributes and hyperparameters: the small key/value metadata of entities."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from cairn.core.errors import Conflict
from cairn.core.identity import Role
from cairn.core.model import (
    HyperparameterValue,
    decode_hyperparameter,
    encode_hyperparameter,
)
from cairn.core.validation import (
    check_hyperparameter_value,
    check_mapping,
    check_name,
    check_names,
    encode_attribute,
)
from cairn.service.base import ServicePart
from cairn.store.metadata.hyperparameters import EncodedHyperparameter

__all__ = ["LabelService"]


class LabelService(ServicePart):
    """Tags, attributes and hyperparameters."""

    # -- tags -------------------------------------------------------------------------
    def add_tags(self, entity_id: str, tags: Iterable[str]) -> None:
        names = check_names(tags, "tag")
        self._allow(entity_id, Role.WRITER)
        with self.metadata.write() as tx:
            self._require_writable(tx, entity_id)
            tx.labels.add_tags(entity_id, names, self.clock())

    def remove_tags(self, entity_id: str, tags: Iterable[str]) -> None:
        names = check_names(tags, "tag")
        self._allow(entity_id, Role.WRITER)
        with self.metadata.write() as tx:
            self._require_writable(tx, entity_id)
            tx.labels.remove_tags(entity_id, names)

    def get_tags(self, entity_id: str) -> list[str]:
        self._allow(entity_id, Role.READER)
        with self.metadata.read() as tx:
            self._require_kind(tx, entity_id)
            return tx.labels.tags(entity_id)

    # -- attributes -------------------------------------------------------------------
    def set_attributes(self, entity_id: str, values: Mapping[str, Any]) -> None:
        check_mapping(values, "attributes")
        limit = self.settings.max_attribute_bytes
        encoded = {
            check_name(k, "attribute key"): encode_attribute(v, f"attribute {k!r}", limit)
            for k, v in values.items()
        }
        self._allow(entity_id, Role.WRITER)
        with self.metadata.write() as tx:
            self._require_writable(tx, entity_id)
            tx.labels.put_attributes(entity_id, encoded, self.clock())

    def get_attributes(self, entity_id: str, keys: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = None if keys is None else check_names(keys, "attribute key")
        self._allow(entity_id, Role.READER)
        with self.metadata.read() as tx:
            self._require_kind(tx, entity_id)
            rows = tx.labels.attributes(entity_id, wanted)
        return {k: json.loads(v) for k, v in rows.items()}

    def remove_attributes(self, entity_id: str, keys: Iterable[str]) -> None:
        names = check_names(keys, "attribute key")
        self._allow(entity_id, Role.WRITER)
        with self.metadata.write() as tx:
            self._require_writable(tx, entity_id)
            tx.labels.remove_attributes(entity_id, names)

    # -- hyperparameters --------------------------------------------------------------
    def log_hyperparameters(
        self, run_id: str, values: Mapping[str, Any], *, overwrite: bool = False
    ) -> None:
        """Log run inputs. A key logged again with another value is a Conflict
        unless ``overwrite``; the same value again changes nothing."""
        check_mapping(values, "hyperparameters")
        items: list[EncodedHyperparameter] = []
        for key, value in values.items():
            check_name(key, "hyperparameter key")
            kind, text, number = encode_hyperparameter(
                check_hyperparameter_value(value, f"hyperparameter {key!r}")
            )
            items.append((key, kind, text, number))
        self._allow(run_id, Role.WRITER, "run")
        with self.metadata.write() as tx:
            self._require_recording_run(tx, run_id)  # an empty call still names one
            if not items:
                return
            # Insert-if-absent first, then compare: race-safe between processes. A new
            # run's keys are all new, and then there is nothing to compare.
            if tx.hyperparameters.insert_new(run_id, items) == len(items):
                return
            stored = tx.hyperparameters.of_run(run_id, [k for k, *_ in items])
            changed = [item for item in items if stored[item[0]] != (item[1], item[2])]
            if changed and not overwrite:
                key, kind, text, _ = changed[0]
                old = decode_hyperparameter(*stored[key])
                raise Conflict(
                    f"hyperparameter {key!r} is already {old!r} on run {run_id}; "
                    f"logging {decode_hyperparameter(kind, text)!r} needs overwrite=True",
                    field=key,
                    run_id=run_id,
                )
            tx.hyperparameters.replace(run_id, changed)

    def get_hyperparameters(self, run_id: str) -> dict[str, HyperparameterValue]:
        self._allow(run_id, Role.READER, "run")
        with self.metadata.read() as tx:
            self._require_run(tx, run_id)
            rows = tx.hyperparameters.of_run(run_id)
        return {k: decode_hyperparameter(kind, text) for k, (kind, text) in rows.items()}
