"""The HTTP backend: the service's contract (:class:`~cairn.service.contracts.Backend`)
kept over REST, one part per aggregate on one transport.

Arguments are checked here with the same core rules the service applies, so a bad call
raises the same error, naming the same field, as the embedded client, before anything is
sent; the server checks again.
"""

from __future__ import annotations

import os

from cairn.client._credentials import credentials_path, token_for
from cairn.client._http_artifacts import HttpArtifacts
from cairn.client._http_entities import HttpEntities
from cairn.client._http_labels import HttpLabels
from cairn.client._http_metrics import HttpMetrics
from cairn.client._http_roles import HttpRoles
from cairn.client._http_search import HttpSearch
from cairn.client._http_versioning import HttpRepositories
from cairn.client._transport import Transport
from cairn.core.settings import Settings

__all__ = ["HttpBackend"]


class HttpBackend:
    def __init__(self, url: str, settings: Settings) -> None:
        self.settings = settings
        # The API token: given (Client(token=...), CAIRN_TOKEN), else the credentials file's.
        token = settings.token or token_for(
            url, credentials_path(settings.credentials_file, os.environ)
        )
        self.transport = Transport(
            url,
            timeout=settings.request_timeout,
            retry_timeout=settings.retry_timeout,
            token=token,
        )
        self.entities = HttpEntities(self.transport, settings)
        self.labels = HttpLabels(self.transport, settings)
        self.metrics = HttpMetrics(self.transport, settings)
        self.artifacts = HttpArtifacts(self.transport, settings)
        self.repositories = HttpRepositories(self.transport, settings)
        self.search = HttpSearch(self.transport, settings)
        self.roles = HttpRoles(self.transport, settings)

    def close(self) -> None:
        self.transport.close()
