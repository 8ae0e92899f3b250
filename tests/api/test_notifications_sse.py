"""The SSE stream over a real HTTP server (uvicorn on a free loopback port): a new notification
arrives within a second, only for its customer; Last-Event-ID replays what was missed;
keep-alive comments; a stream ends when the client leaves or the server shuts down."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from api.notifications.hub import NotificationHub
from fleetlink.embedded_postgres import free_port
from tests.api.customer_platform import VIN_A, VIN_B, Platform, running_platform
from tests.api.test_notifications_helpers import (
    Owner,
    alert_payload,
    booking_payload,
    consumer,
    deliveries_of,
    emit,
    later,
    notifications_of,
    owner,
)

pytestmark = pytest.mark.integration

WAIT_S = 5.0


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (pytest owns the process's signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Served:
    platform: Platform
    url: str
    server: uvicorn.Server

    @property
    def hub(self) -> NotificationHub:
        hub: NotificationHub = self.platform.app.state.fleetlink.notification_hub
        return hub


@contextlib.asynccontextmanager
async def serve(pool: asyncpg.Pool) -> AsyncIterator[Served]:
    async with running_platform(pool) as platform:
        port = free_port()
        server = _Server(
            uvicorn.Config(
                platform.app,
                host="127.0.0.1",
                port=port,
                lifespan="off",  # running_platform runs the app's lifespan
                log_level="warning",
                timeout_graceful_shutdown=10,
            )
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.02)
        try:
            yield Served(platform, f"http://127.0.0.1:{port}", server)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)


@dataclass
class Event:
    id: str | None = None
    event: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


@dataclass
class Stream:
    """An open SSE response, parsed (WHATWG HTML, 9.2.6) by a background reader."""

    response: httpx.Response
    events: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    async def read(self) -> None:
        current = Event()
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    await self.events.put(current)
                    current = Event()
                elif line.startswith(":"):
                    current.comments.append(line[1:].strip())
                else:
                    name, _, value = line.partition(":")
                    setattr(current, name, value.removeprefix(" "))
        finally:
            await self.events.put(None)  # the stream ended

    async def next(self, timeout_s: float = WAIT_S) -> Event | None:
        return await asyncio.wait_for(self.events.get(), timeout_s)

    async def next_notification(self, timeout_s: float = WAIT_S) -> Event:
        """The next event that is not only a comment."""
        while True:
            event = await self.next(timeout_s)
            assert event is not None, "the stream ended"
            if event.data is not None:
                return event


@contextlib.asynccontextmanager
async def stream(
    served: Served, who: Owner, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=httpx.Timeout(10.0)) as client,
        client.stream(
            "GET",
            f"/v1/me/notifications/stream{query}",
            headers={**who.headers, **(headers or {})},
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        # Personal data: no cache may keep it.
        assert "no-store" in response.headers["cache-control"]
        opened = Stream(response)
        reader = asyncio.create_task(opened.read())
        try:
            first = await opened.next()
            assert first is not None and "connected" in first.comments
            yield opened
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader


async def notify_about(served: Served, topic: str, number: int, vin: str = VIN_A) -> None:
    """An event for ``vin``'s owner, through the outbox and the notifier as in production."""
    platform = served.platform
    payload = (
        alert_payload(number, vin)
        if topic.startswith("alert")
        else booking_payload(number, vin, topic.split(".")[1])
    )
    await emit(
        platform.pool,
        topic,
        f"{topic.partition('.')[0]}:{number}",
        payload,
        occurred_at=later(platform.clock),
        vin=vin,
    )
    outbox, _ = consumer(platform.pool, platform.clock)
    await outbox.process_pending()


async def until(condition: Any, timeout_s: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - state of the server under test, polled
            await asyncio.sleep(0.02)


@pytest.fixture
async def served(pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    # Keep-alives and polls far apart: a push within a second can only come from the NOTIFY.
    monkeypatch.setenv("FLEETLINK_NOTIFY_SSE_KEEPALIVE_S", "30")
    monkeypatch.setenv("FLEETLINK_NOTIFY_SSE_POLL_INTERVAL_S", "30")
    async with serve(pool) as running:
        yield running


async def test_a_new_notification_arrives_within_a_second_for_its_owner_only(
    served: Served,
) -> None:
    ada = await owner(served.platform, "ada@example.com", VIN_A)
    bob = await owner(served.platform, "bob@example.com", VIN_B)
    async with stream(served, ada) as adas, stream(served, bob) as bobs:
        await asyncio.wait_for(served.hub.listening.wait(), WAIT_S)
        await asyncio.sleep(0.1)  # the listener's initial wake-up has been handled
        loop = asyncio.get_running_loop()
        await notify_about(served, "alert.opened", 7)
        committed = loop.time()
        event = await adas.next_notification()
        assert loop.time() - committed < 1.0
        [notification] = await notifications_of(served.platform.pool, ada.id)
        assert event.event == "notification"
        assert event.id == str(notification["id"])
        assert event.json["title"] == "Brake pads wearing out (front left)"
        assert event.json["data"]["alert_id"] == 7
        # Bob's stream stays silent.
        with pytest.raises(TimeoutError):
            await bobs.next_notification(timeout_s=0.5)
    app = (await deliveries_of(served.platform.pool, notification["id"]))["app"]
    assert app["state"] == "delivered"  # written to Ada's open stream


async def test_reconnecting_with_last_event_id_replays_what_was_missed(served: Served) -> None:
    ada = await owner(served.platform, "ada@example.com", VIN_A)
    async with stream(served, ada) as first:
        await notify_about(served, "booking.suggested", 3)
        seen = await first.next_notification()
    # Offline while two more happen.
    await notify_about(served, "booking.confirmed", 3)
    await notify_about(served, "booking.checked_in", 3)
    async with stream(served, ada, headers={"Last-Event-ID": seen.id or ""}) as again:
        missed = [await again.next_notification(), await again.next_notification()]
        assert [e.json["topic"] for e in missed] == ["booking.confirmed", "booking.checked_in"]
        assert int(missed[0].id or 0) > int(seen.id or 0)
        # And it goes on live.
        await notify_about(served, "booking.completed", 3)
        assert (await again.next_notification()).json["topic"] == "booking.completed"


async def test_without_last_event_id_the_newest_are_replayed(served: Served) -> None:
    ada = await owner(served.platform, "ada@example.com", VIN_A)
    for step in ("suggested", "confirmed", "checked_in"):
        await notify_about(served, f"booking.{step}", 3)
    async with stream(served, ada, "?replay=2&follow=false") as replay:
        topics = []
        while (event := await replay.next()) is not None:
            if event.data is not None:
                topics.append(event.json["topic"])
    # Oldest first, then the stream ended (follow=false).
    assert topics == ["booking.confirmed", "booking.checked_in"]
    async with stream(served, ada, "?replay=0&follow=false") as nothing:
        assert (await nothing.next()) is None


async def test_a_bad_last_event_id_is_refused(served: Served) -> None:
    ada = await owner(served.platform, "ada@example.com", VIN_A)
    async with httpx.AsyncClient(base_url=served.url) as client:
        response = await client.get(
            "/v1/me/notifications/stream", headers={**ada.headers, "Last-Event-ID": "x"}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_request"
        anonymous = await client.get("/v1/me/notifications/stream")
        assert anonymous.status_code == 401


async def test_idle_streams_get_keep_alive_comments(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETLINK_NOTIFY_SSE_KEEPALIVE_S", "0.3")
    async with serve(pool) as running:
        ada = await owner(running.platform, "ada@example.com", VIN_A)
        async with stream(running, ada) as idle:
            loop = asyncio.get_running_loop()
            started = loop.time()
            event = await idle.next(timeout_s=2)
            assert event is not None and event.comments == ["keep-alive"]
            assert event.data is None
            assert loop.time() - started < 1.0


async def test_a_client_that_leaves_frees_its_subscription(served: Served) -> None:
    ada = await owner(served.platform, "ada@example.com", VIN_A)
    async with stream(served, ada):
        await until(lambda: served.hub.subscribers == 1)
        await asyncio.wait_for(served.hub.listening.wait(), WAIT_S)
    # The server notices the closed connection and ends the stream; with no stream left the
    # hub gives back its LISTEN connection.
    await until(lambda: served.hub.subscribers == 0)
    await until(lambda: not served.hub.listening.is_set())


async def test_server_shutdown_ends_open_streams_promptly(served: Served) -> None:
    ada = await owner(served.platform, "ada@example.com", VIN_A)
    async with stream(served, ada) as open_stream:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await served.hub.close()
        while (event := await open_stream.next(timeout_s=2)) is not None:
            assert event.data is None
        assert loop.time() - started < 1.0
    # Nothing keeps uvicorn waiting now.
    served.server.should_exit = True
    await until(lambda: not served.server.server_state.connections, timeout_s=2)
