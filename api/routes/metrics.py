"""``GET /metrics``: the process's Prometheus metrics in the text exposition format 0.0.4.

No authentication, deliberately: Prometheus scrapes without bearer tokens by default, and the
page holds only aggregate counts whose labels are fixed reason codes (no VIN, topic, payload or
customer data; nothing an admin token protects). The API binds to loopback by default; where it
is exposed, keep ``/metrics`` to the monitoring network at the proxy, as usual.

Without a registry (``create_app(..., metrics=None)``, e.g. ``fleetlink serve api``, whose
process ingests nothing) the route answers 404 rather than an empty page: an empty page would
look to Prometheus like a healthy target whose counters never move. ``fleetlink serve ingest``
exposes its own metrics on ``FLEETLINK_INGEST_METRICS_PORT``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from api.deps import State
from api.errors import NotFoundError

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_PLAIN_0_0_4: {}},
            "description": "Prometheus text exposition format 0.0.4",
        },
        404: {"description": "This process has no metrics registry"},
    },
    summary="Prometheus metrics (no authentication)",
)
def metrics(state: State) -> Response:
    # A plain ``def``: FastAPI runs it in a worker thread, so a scrape never blocks the loop.
    if state.metrics is None:
        raise NotFoundError("this process exposes no metrics")
    return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_PLAIN_0_0_4)
