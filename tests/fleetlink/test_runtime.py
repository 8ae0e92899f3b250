"""The embedded runtime's own guarantees: one owner per data directory, and a start-up that
Ctrl-C interrupts leaves nothing running."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest

from fleetlink.data_dir import DataDirInUseError, DataDirLock
from fleetlink.embedded_postgres import free_port
from fleetlink.runtime import UpOptions, _serve_until, embedded_stack


def test_a_data_directory_has_one_owner(tmp_path: Path) -> None:
    with DataDirLock(tmp_path):
        with pytest.raises(DataDirInUseError) as raised:
            DataDirLock(tmp_path).acquire()
        assert raised.value.code == "data_dir_in_use"
        assert str(os.getpid()) in str(raised.value)
    DataDirLock(tmp_path).acquire()  # released on exit: the next owner gets it


async def test_a_second_stack_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with DataDirLock(tmp_path), pytest.raises(DataDirInUseError):
        async with embedded_stack(UpOptions(data_dir=tmp_path, vehicles=0)):
            pytest.fail("a second stack started on a directory in use")
    # The refused stack started nothing: no database cluster was even created.
    assert not (tmp_path / "pgdata").exists()


def _postmaster_alive(data_dir: Path) -> bool:
    try:
        pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    except FileNotFoundError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("interrupt_after_s", [0.2, 1.5])
async def test_interrupted_start_up_leaves_nothing_running(
    tmp_path: Path, interrupt_after_s: float
) -> None:
    options = UpOptions(
        data_dir=tmp_path, vehicles=2, mqtt_port=free_port(), api_port=free_port(), db_fsync=False
    )
    task = asyncio.create_task(
        _serve_until(options, io.StringIO(), asyncio.Event(), asyncio.Event())
    )
    await asyncio.sleep(interrupt_after_s)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _postmaster_alive(tmp_path)
    # The directory is free again: a new owner can take it.
    DataDirLock(tmp_path).acquire()
