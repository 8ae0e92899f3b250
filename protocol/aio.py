"""A small asyncio helper shared by the cloud and the simulated car (no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any


async def first_of(
    *awaitables: Awaitable[Any], timeout_s: float | None = None
) -> Sequence[asyncio.Future[Any]]:
    """Wait until the first of ``awaitables`` is done (or ``timeout_s`` passed), cancel the
    others, and return them all as futures, in order: the caller asks which are ``done()``
    (and not ``cancelled()``) for their results."""
    futures = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(futures, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()  # a no-op for those already done
        # Let the cancellations land, so that done()/cancelled() tell the final story.
        await asyncio.gather(*futures, return_exceptions=True)
    return futures
