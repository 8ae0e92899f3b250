"""protocol.aio.first_of: the first done wins, the others are cancelled, a timeout returns none."""

from __future__ import annotations

import asyncio

from protocol.aio import first_of


async def test_the_first_done_is_returned_done_and_the_rest_cancelled() -> None:
    event = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue()
    queue.put_nowait(7)
    got, waited = await first_of(queue.get(), event.wait())
    assert got.result() == 7
    assert waited.cancelled()


async def test_a_timeout_returns_with_nothing_done() -> None:
    futures = await first_of(asyncio.Event().wait(), asyncio.sleep(10), timeout_s=0.01)
    assert all(f.cancelled() for f in futures)
