"""``/v1/me/notifications``: the signed-in customer's notifications -- the inbox (paged, newest
first), marking one read, and the live Server-Sent Events stream. Customers only; another
customer's notification is not found (404)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import CurrentCustomer, NoStore, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED, NotFoundError
from api.notifications.errors import NotificationNotFoundError
from api.notifications.schemas import NotificationPublic, NotificationsPublic, notification_public
from api.notifications.settings import MAX_SSE_REPLAY
from api.notifications.store import get_notification, list_notifications, mark_read
from api.notifications.stream import StreamRequest, notification_stream
from api.schemas import ErrorBody

MAX_ID = 2**63 - 1

ERROR_BODY_REF = "#/components/schemas/ErrorBody"

router = APIRouter(
    prefix="/v1/me/notifications",
    tags=["notifications"],
    responses={401: UNAUTHENTICATED, 403: FORBIDDEN, 422: INVALID_REQUEST},
    dependencies=[NoStore],  # personal data: no shared cache may keep it
)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such notification of mine (code not_found)"}
}


class _NotFoundError(NotFoundError):
    code = "notification_not_found"


NotificationId = Annotated[int, Path(ge=1, le=MAX_ID, description="The notification's id")]


@router.get(
    "",
    response_model=NotificationsPublic,
    summary="My notifications, newest first, with the state of each channel's delivery",
)
async def list_my_notifications(
    state: State,
    me: CurrentCustomer,
    paging: Paging,
    unread: Annotated[bool, Query(description="Only those not read yet")] = False,
) -> NotificationsPublic:
    async with state.pool.acquire() as conn:
        records, count = await list_notifications(
            conn, me, unread=unread, limit=paging.limit, offset=paging.offset
        )
    return NotificationsPublic(data=[notification_public(r) for r in records], count=count)


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    # Errors are JSON, not events: the declared 422 must not take the stream's media type.
    responses={
        422: {
            "description": INVALID_REQUEST["description"],
            "content": {"application/json": {"schema": {"$ref": ERROR_BODY_REF}}},
        }
    },
    summary="My notifications as they happen (Server-Sent Events)",
    description="`text/event-stream`. Each notification is an event `notification` whose `id` "
    "is the notification id and whose `data` is the notification as in the list. On connect "
    "the stream replays what came after `Last-Event-ID` (sent by a reconnecting EventSource), "
    "or else the newest `replay` notifications, then pushes new ones within a second. A "
    "comment line every 15 s keeps idle connections open. `follow=false` ends the stream "
    "after the replay (catch up, then poll).",
)
async def stream_my_notifications(
    state: State,
    me: CurrentCustomer,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, le=MAX_ID, description="Resume after this notification id"),
    ] = None,
    replay: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_SSE_REPLAY,
            description="Without Last-Event-ID: how many of the newest to send first "
            "(default FLEETLINK_NOTIFY_SSE_REPLAY, 20)",
        ),
    ] = None,
    follow: Annotated[bool, Query(description="Keep the stream open for new ones")] = True,
) -> AsyncIterator[ServerSentEvent]:
    settings = state.notify
    request = StreamRequest(
        customer_id=me,
        last_event_id=last_event_id,
        replay=settings.sse_replay if replay is None else replay,
        follow=follow,
    )
    async for event in notification_stream(
        state.pool, state.notification_hub, request, settings, state.now
    ):
        yield event


@router.get(
    "/{notification_id}",
    response_model=NotificationPublic,
    responses=_NOT_FOUND,
    summary="One of my notifications",
)
async def get_my_notification(
    state: State, me: CurrentCustomer, notification_id: NotificationId
) -> NotificationPublic:
    try:
        async with state.pool.acquire() as conn:
            record = await get_notification(conn, me, notification_id)
    except NotificationNotFoundError as exc:
        raise _NotFoundError(str(exc)) from exc
    return notification_public(record)


@router.post(
    "/{notification_id}/read",
    response_model=NotificationPublic,
    responses=_NOT_FOUND,
    summary="Mark one of my notifications read",
    description="Idempotent: the first read time is kept. The app delivery becomes `read`.",
)
async def read_my_notification(
    state: State, me: CurrentCustomer, notification_id: NotificationId
) -> NotificationPublic:
    try:
        record = await mark_read(state.pool, me, notification_id, now=state.now())
    except NotificationNotFoundError as exc:
        raise _NotFoundError(str(exc)) from exc
    return notification_public(record)
