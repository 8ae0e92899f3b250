"""HTTP for the car's client: python-tuf's ``FetcherInterface`` over urllib3, with the car's
credentials for the director (HTTP Basic, VIN and device secret; the image repository is
public). ``FetcherInterface`` enforces the byte limit of every download: metadata never
beyond the length its parent named, an image never beyond its signed length (TUF's endless
data attack).

Blocking I/O: the client runs it in a worker thread, never on the car's event loop.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping

import urllib3

from simulator.ota_client.tuf_names import DownloadHTTPError, FetcherInterface

DEFAULT_TIMEOUT_S = 30.0
# Connection-level retries only (a pooled keep-alive connection the server closed meanwhile,
# a refused connect under load); an HTTP status is an answer and is never retried here.
RETRIES = urllib3.Retry(total=3, connect=3, read=1, status=0, backoff_factor=0.2, redirect=0)
CHUNK_BYTES = 64 * 1024


def basic_auth(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class HttpFetcher(FetcherInterface):
    def __init__(
        self,
        pool: urllib3.PoolManager,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._pool = pool
        self._headers = dict(headers or {})
        self._timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)

    def _fetch(self, url: str) -> Iterator[bytes]:
        response = self._pool.request(
            "GET",
            url,
            headers=self._headers,
            preload_content=False,
            timeout=self._timeout,
            retries=RETRIES,
        )
        if response.status >= 400:
            response.drain_conn()
            response.release_conn()
            raise DownloadHTTPError(f"HTTP {response.status} for {url}", response.status)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        complete = False
        try:
            yield from response.stream(CHUNK_BYTES)
            complete = True
        finally:
            if complete:
                response.release_conn()
            else:
                # Abandoned mid-body (over the length limit, or verification stopped it):
                # the connection still carries the rest, so it cannot be reused.
                response.close()


class HttpMetadataSource:
    """One repository's metadata at ``base_url`` (ending in ``/``): the trust module's
    :class:`~simulator.ota_client.trust.MetadataSource`."""

    def __init__(self, fetcher: FetcherInterface, base_url: str) -> None:
        self.fetcher = fetcher
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"

    def metadata(self, role: str, version: int | None, max_bytes: int) -> bytes:
        name = f"{version}.{role}.json" if version is not None else f"{role}.json"
        return self.fetcher.download_bytes(self.base_url + name, max_bytes)
