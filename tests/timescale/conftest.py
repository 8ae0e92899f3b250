"""The TimescaleDB path, against PGlite + TimescaleDB served by ``tests/pglite/server.mjs``.

``timescale_pool`` (module scope) starts the node server on a free port, creates the extension,
applies every FleetLink migration and yields an asyncpg pool of exactly one connection: PGlite
has one backend and the server serves one client at a time. The server has no COPY (asyncpg
raises FeatureNotSupportedError) and never runs TimescaleDB background jobs by itself: tests
call ``CALL run_job(id)``. Each test module gets a fresh in-memory database (start-up ~3 s);
its tests must run on the module's event loop:
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.

Without node or the npm packages (``npm ci --prefix tests/pglite``) the tests are skipped,
except under CI, where ``.ci/run`` installs them and their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from fleetlink.embedded_postgres import free_port
from fleetlink.migrations import migrate

PGLITE_DIR = Path(__file__).resolve().parent.parent / "pglite"
SERVER = PGLITE_DIR / "server.mjs"
PACKAGE = PGLITE_DIR / "node_modules" / "@unni-craftsman" / "pglite" / "package.json"
READY_TIMEOUT_S = 60.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (.ci/run must install it)")
    pytest.skip(reason)


class PgliteServer:
    """One ``node server.mjs`` process, stopped through its own Popen handle."""

    def __init__(self, node: str, port: int) -> None:
        self.port = port
        self.output: list[str] = []
        self._process = subprocess.Popen(
            [node, str(SERVER), "--port", str(port), "--host", "127.0.0.1"],
            cwd=PGLITE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._ready = threading.Event()
        # Drain its output for as long as it runs: a full pipe would block the server.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.output.append(line.rstrip())
            if line.startswith("READY "):
                self._ready.set()
        self._ready.set()  # exited: wake the waiter

    def wait_ready(self) -> None:
        if not self._ready.wait(READY_TIMEOUT_S) or self._process.poll() is not None:
            self.stop()
            raise RuntimeError("PGlite server did not start:\n" + "\n".join(self.output))

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._reader.join(5)


@pytest.fixture(scope="module")
def pglite_server() -> Iterator[PgliteServer]:
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed")
    elif not PACKAGE.is_file():
        _unavailable("PGlite npm packages missing (npm ci --prefix tests/pglite)")
    assert node is not None
    server = PgliteServer(node, free_port())
    server.wait_ready()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def timescale_pool(pglite_server: PgliteServer) -> AsyncIterator[asyncpg.Pool]:
    """A migrated TimescaleDB database behind a one-connection pool."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        host="127.0.0.1",
        port=pglite_server.port,
        user="postgres",
        database="template1",
        ssl=False,
        min_size=1,
        max_size=1,
    )
    async with pool.acquire() as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        await migrate(conn)
    yield pool
    await pool.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "timescale_pool" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
