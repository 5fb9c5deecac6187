"""The use cases of Cairn. The one place business rules live."""

from cairn.service.tracking import TrackingService, open_service

__all__ = ["TrackingService", "open_service"]
