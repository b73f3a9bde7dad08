"""The base of the DoFns that fetch over HTTP: one client per DoFn instance, opened in setup()."""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from transforms.http import HttpClient, HttpSettings, Response


class HttpFetchFn(beam.DoFn):
    """Holds picklable settings; the (unpicklable) client lives only on the worker."""

    def __init__(self, settings: HttpSettings, max_bytes: int) -> None:
        self.settings = settings
        self.max_bytes = max_bytes
        self._client: HttpClient | None = None

    def setup(self) -> None:
        self._client = HttpClient(self.settings)

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # A method, not a property: Beam inspects every attribute of a DoFn while building the graph.
    def get(self, url: str, **kwargs: Any) -> Response:
        """GET with the worker's client and this DoFn's byte cap (see HttpClient.get)."""
        if self._client is None:
            raise RuntimeError("HttpFetchFn used before setup()")
        return self._client.get(url, max_bytes=self.max_bytes, **kwargs)
