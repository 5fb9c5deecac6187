"""What the server and the HTTP client agree on, spelled once."""

from __future__ import annotations

__all__ = ["API_PREFIX"]

# Every REST route lives under this path (a server behind a proxy may add its own before it).
API_PREFIX = "/api/v1"
