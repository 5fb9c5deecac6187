"""The use cases of Cairn. The one place business rules live.

Loaded lazily: :mod:`cairn.service.contracts` is imported by the HTTP client, which must
not load the stores (SQLAlchemy) that the service itself is built on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.service.tracking import TrackingService, open_service

__all__ = ["TrackingService", "open_service"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cairn.service import tracking

        return getattr(tracking, name)
    raise AttributeError(f"module 'cairn.service' has no attribute {name!r}")
