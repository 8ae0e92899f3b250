"""Telemetry history of one vehicle: raw samples or min/avg/max per bucket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import Admin, State
from api.errors import ApiError, NotFoundError
from api.routes.vehicles import VinPath
from api.schemas import (
    BucketPointPublic,
    ErrorBody,
    RawPointPublic,
    SeriesPublic,
    TelemetryHistoryPublic,
)
from ingest.history import Bucket, BucketPoint, HistoryQuery, HistoryReader, RawPoint
from ingest.validation import MAX_SIGNAL_NAME_LENGTH
from protocol.clock import utc_from_ms

router = APIRouter(prefix="/v1/vehicles", tags=["telemetry"])

MAX_SIGNALS = 20
DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 50_000
# Longest range per resolution: a raw day of 1 Hz data is ~86k rows per signal.
MAX_RANGE = {
    None: timedelta(days=1),
    Bucket.MINUTE: timedelta(days=31),
    Bucket.HOUR: timedelta(days=400),
}


class InvalidParameterError(ApiError):
    status_code = 422
    code = "invalid_parameter"


def parse_time(name: str, text: str | None, default: datetime) -> datetime:
    """ISO 8601 (an offset or Z; without one, UTC) or integer epoch milliseconds."""
    if text is None or text == "":
        return default
    try:
        if text.lstrip("-").isdigit():
            return utc_from_ms(int(text))
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidParameterError(
            f"{name}={text[:40]!r} is neither ISO 8601 (2026-11-23T08:00:00Z) nor epoch "
            "milliseconds"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_signals(values: list[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(s.strip() for v in values for s in v.split(",") if s.strip()))
    if not names:
        raise InvalidParameterError("signals: name at least one VSS signal, e.g. Vehicle.Speed")
    if len(names) > MAX_SIGNALS:
        raise InvalidParameterError(f"signals: at most {MAX_SIGNALS} per request")
    for name in names:
        # PostgreSQL text cannot hold NUL (the query would fail with a 500); ingest stores no
        # name with NUL or longer than its limit, so neither could match anything.
        if "\x00" in name:
            raise InvalidParameterError(f"signals: {name[:40]!r} contains NUL")
        if len(name) > MAX_SIGNAL_NAME_LENGTH:
            raise InvalidParameterError(
                f"signals: a name is too long (at most {MAX_SIGNAL_NAME_LENGTH} characters)"
            )
    return names


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """The query parameters of a history request, as given (parsed by the route)."""

    signals: list[str]
    start: str | None
    end: str | None
    bucket: Bucket | None
    limit: int


def history_request(
    signals: Annotated[
        list[str], Query(description="VSS names, comma-separated or repeated", min_length=1)
    ],
    start: Annotated[
        str | None, Query(description="ISO 8601 or epoch ms; default end - 1 h")
    ] = None,
    end: Annotated[str | None, Query(description="ISO 8601 or epoch ms; default now")] = None,
    bucket: Annotated[Bucket | None, Query(description="omit for raw samples")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="points per signal at most")
    ] = DEFAULT_LIMIT,
) -> HistoryRequest:
    return HistoryRequest(signals, start, end, bucket, limit)


#: The history query parameters, shared by every history route.
HistoryParameters = Annotated[HistoryRequest, Depends(history_request)]


@router.get(
    "/{vin}/telemetry",
    response_model=TelemetryHistoryPublic,
    responses={
        401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
        404: {"model": ErrorBody, "description": "Unknown vehicle"},
        422: {
            "model": ErrorBody,
            "description": "Bad parameter (code invalid_parameter or invalid_request)",
        },
    },
    summary="History of some signals: raw samples, or min/avg/max per 1m or 1h bucket",
)
async def telemetry_history(
    *, state: State, _: Admin, vin: VinPath, query: HistoryParameters
) -> TelemetryHistoryPublic:
    bucket = query.bucket
    names = parse_signals(query.signals)
    end_at = parse_time("end", query.end, state.now())
    start_at = parse_time("start", query.start, end_at - DEFAULT_WINDOW)
    if start_at >= end_at:
        raise InvalidParameterError("start must be before end")
    if end_at - start_at > MAX_RANGE[bucket]:
        raise InvalidParameterError(
            f"range {end_at - start_at} exceeds {MAX_RANGE[bucket]} for "
            f"{'raw samples' if bucket is None else bucket.value + ' buckets'}"
        )
    if await state.registry.get(vin) is None:
        raise NotFoundError(f"vehicle {vin} is not registered")
    history = await HistoryReader(state.pool).read(
        HistoryQuery(vin, names, start_at, end_at, bucket, query.limit)
    )
    by_signal: dict[str, list[RawPointPublic | BucketPointPublic]] = {n: [] for n in names}
    points: list[RawPoint | BucketPoint] = list(history.points)
    for point in points:
        by_signal[point.signal].append(_public(point))
    # One series per requested signal, in the order asked, empty where there is no data.
    series = [SeriesPublic(signal=name, points=by_signal[name]) for name in names]
    return TelemetryHistoryPublic(
        vin=vin,
        start=history.start,
        end=history.end,
        bucket=bucket.value if bucket else None,
        series=series,
        truncated=history.truncated,
    )


def _public(point: RawPoint | BucketPoint) -> RawPointPublic | BucketPointPublic:
    if isinstance(point, RawPoint):
        return RawPointPublic(ts=point.ts, value=point.value)
    return BucketPointPublic(
        ts=point.bucket, min=point.min, avg=point.avg, max=point.max, samples=point.samples
    )
