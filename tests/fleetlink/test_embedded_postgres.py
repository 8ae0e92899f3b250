"""The embedded PostgreSQL supervisor: persistence, credentials, crash recovery, orphans."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from fleetlink.embedded_postgres import (
    PASSWORD_FILE,
    SUPERUSER,
    EmbeddedPostgres,
    PostgresOptions,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[EmbeddedPostgres]]:
    """Servers a test starts; whatever is still running is stopped afterwards."""
    started: list[EmbeddedPostgres] = []
    yield started
    for server in reversed(started):
        server.stop()


def new_server(servers: list[EmbeddedPostgres], data_dir: Path) -> EmbeddedPostgres:
    server = EmbeddedPostgres(data_dir, PostgresOptions(fsync=False))
    servers.append(server)
    return server


def postmaster_pid(server: EmbeddedPostgres) -> int:
    return int((server.pgdata / "postmaster.pid").read_text().splitlines()[0])


def running(server: EmbeddedPostgres) -> bool:
    return server.is_running  # a call, so type checkers do not narrow it across start/stop


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def write_marker(server: EmbeddedPostgres, value: str) -> None:
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS marker (value text)")
        await conn.execute("INSERT INTO marker VALUES ($1)", value)
    finally:
        await conn.close()


async def read_markers(server: EmbeddedPostgres) -> list[str]:
    conn = await asyncpg.connect(server.dsn())
    try:
        return [r["value"] for r in await conn.fetch("SELECT value FROM marker ORDER BY value")]
    finally:
        await conn.close()


async def test_data_survives_stop_and_start(
    tmp_path: Path, servers: list[EmbeddedPostgres]
) -> None:
    server = new_server(servers, tmp_path / "db")
    await asyncio.to_thread(server.start)
    assert running(server)
    await write_marker(server, "before-restart")

    await asyncio.to_thread(server.stop)
    assert not running(server)
    assert not (server.pgdata / "postmaster.pid").exists()  # a clean shutdown
    await asyncio.to_thread(server.start)

    assert running(server)
    assert await read_markers(server) == ["before-restart"]


async def test_password_file_is_private_and_the_server_checks_passwords(
    tmp_path: Path, servers: list[EmbeddedPostgres]
) -> None:
    server = new_server(servers, tmp_path / "db")
    await asyncio.to_thread(server.start)

    password_file = server.data_dir / PASSWORD_FILE
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert len(server.password) >= 24
    assert not (server.data_dir / ".initdb.pw").exists()  # initdb's copy is gone

    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host=server.options.host,
            port=server.port,
            user=SUPERUSER,
            password=server.password + "-wrong",
            database="postgres",
        )
    conn = await asyncpg.connect(server.dsn())
    try:
        assert await conn.fetchval("SELECT current_user") == SUPERUSER
    finally:
        await conn.close()


async def test_start_after_kill_recovers(tmp_path: Path, servers: list[EmbeddedPostgres]) -> None:
    server = new_server(servers, tmp_path / "db")
    await asyncio.to_thread(server.start)
    await write_marker(server, "committed-before-crash")
    crashed_pid = postmaster_pid(server)

    await asyncio.to_thread(server.kill)
    assert not running(server)
    assert not process_exists(crashed_pid)
    with pytest.raises(OSError):
        await asyncpg.connect(server.dsn(), timeout=5)

    await asyncio.to_thread(server.start)  # stale postmaster.pid: crash recovery
    assert running(server)
    assert postmaster_pid(server) != crashed_pid
    assert await read_markers(server) == ["committed-before-crash"]


async def test_start_takes_over_from_an_orphaned_server(
    tmp_path: Path, servers: list[EmbeddedPostgres]
) -> None:
    data_dir = tmp_path / "db"
    lost = new_server(servers, data_dir)
    await asyncio.to_thread(lost.start)
    await write_marker(lost, "from-the-lost-process")
    orphan_pid = postmaster_pid(lost)
    # A real orphan's parent (the killed FleetLink process) is gone and init reaps it; here the
    # test process is its parent, so reap it ourselves once it exits.
    reaper = threading.Thread(target=os.waitpid, args=(orphan_pid, 0), daemon=True)
    reaper.start()

    successor = new_server(servers, data_dir)
    await asyncio.to_thread(successor.start)

    assert running(successor)
    assert postmaster_pid(successor) != orphan_pid
    await asyncio.to_thread(reaper.join, 10)
    assert not reaper.is_alive()
    assert not process_exists(orphan_pid)
    assert not running(lost)
    assert await read_markers(successor) == ["from-the-lost-process"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another account only for root")
def test_as_root_the_server_runs_without_roots_user_or_group(
    tmp_path: Path, servers: list[EmbeddedPostgres]
) -> None:
    server = new_server(servers, tmp_path / "db")
    server.start()
    status = Path(f"/proc/{postmaster_pid(server)}/status").read_text().splitlines()
    ids = {line.split(":")[0]: line.split()[1:] for line in status if ":" in line}
    assert "0" not in ids["Uid"]
    assert "0" not in ids["Gid"]
    assert "0" not in ids.get("Groups", [])
