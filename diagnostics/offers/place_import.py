"""Geofences from operators' place lists: GeoJSON, CSV, or the shipped :mod:`protocol.places`.

All or nothing: an import stops at the first bad item with one :class:`PlaceImportError` that
says where (``line`` for CSV, 1-based, the header being line 1; ``feature`` for GeoJSON and
place lists, 0-based) and why. The API turns it into a single 422: a place list that is half
imported would leave offers silently missing for the rest, which nobody notices.

GeoJSON (RFC 7946, positions ``[lon, lat]``, an optional altitude ignored): a FeatureCollection
of Features, or a single Feature. Each Feature has an ``id`` (a string or number; or
``properties.id``) and ``properties`` ``kind`` (a :class:`~protocol.places.PlaceKind` value),
``name``, and optionally ``brand``, ``partner_id`` and ``radius_m``. A Point becomes a
:class:`~diagnostics.offers.geo.Circle` of ``radius_m`` (default ``default_radius_m``); a
Polygon keeps its first ring as exterior and the others as holes (``radius_m`` is ignored).

CSV: a header row (names case-insensitive, surrounding blanks ignored) with ``id, kind, name,
lat, lon`` and optionally ``radius_m, brand, partner_id, wkt``; other columns are ignored, blank
rows skipped. A row with a ``wkt`` value ``POLYGON((lon lat, ...), (hole ...))`` (WKT order:
longitude first) is a polygon and leaves ``lat``/``lon`` empty; the ``lat``/``lon`` columns
may then be left out of the header altogether.

Refused: input that is not UTF-8, JSON or CSV; unknown kinds; missing fields; numbers that are
not numbers, not finite or out of range; invalid geometry (see :mod:`diagnostics.offers.geo`);
duplicate ids; more than :data:`MAX_PLACES` places.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable

from diagnostics.offers.geo import (
    MAX_CIRCLE_RADIUS_M,
    Circle,
    GeoError,
    Geofence,
    Geometry,
    Polygon,
)
from protocol.places import Place, PlaceKind

#: Upper bound of one import: a national network of stations and dealers fits many times over,
#: while a runaway export (every POI of a country) is refused before it fills memory.
MAX_PLACES = 50_000
#: Radius of a place given as a point: a forecourt or a dealer's yard, with room for GNSS error.
DEFAULT_RADIUS_M = 150.0

_KIND_VALUES = frozenset(kind.value for kind in PlaceKind)
_KINDS = ", ".join(kind.value for kind in PlaceKind)
_CSV_REQUIRED = ("id", "kind", "name")
_WKT_POLYGON = re.compile(r"\s*POLYGON\s*\((.*)\)\s*", re.IGNORECASE | re.DOTALL)
# Rings inside POLYGON( ... ): "(...)" separated by commas; ring bodies hold no parentheses.
_WKT_RINGS = re.compile(r"\s*\([^()]*\)(?:\s*,\s*\([^()]*\))*\s*")
_WKT_RING = re.compile(r"\(([^()]*)\)")


class PlaceImportError(GeoError):
    """A place list that cannot be imported; ``line`` (CSV) or ``feature`` says where."""

    code = "invalid_places"

    def __init__(
        self,
        message: str,
        *,
        value: object = None,
        line: int | None = None,
        feature: int | None = None,
    ) -> None:
        if line is not None:
            message = f"line {line}: {message}"
        elif feature is not None:
            message = f"feature {feature}: {message}"
        super().__init__(message, value=value)
        self.line = line
        self.feature = feature


def geofences_from_geojson(
    data: str | bytes, *, default_radius_m: float = DEFAULT_RADIUS_M
) -> list[Geofence]:
    """The fences of a GeoJSON FeatureCollection or Feature, in file order."""
    _check_default_radius(default_radius_m)
    text = _decode(data)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlaceImportError(
            f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise PlaceImportError("invalid JSON: nested too deeply") from exc
    kind = document.get("type") if isinstance(document, dict) else None
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise PlaceImportError("a FeatureCollection needs a 'features' list")
    elif kind == "Feature":
        features = [document]
    else:
        raise PlaceImportError("expected a GeoJSON FeatureCollection or Feature", value=kind)
    if len(features) > MAX_PLACES:
        raise PlaceImportError(f"more than {MAX_PLACES} places", feature=MAX_PLACES)

    fences: list[Geofence] = []
    first_seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        try:
            fence = _fence_from_feature(feature, default_radius_m)
        except GeoError as exc:
            raise PlaceImportError(str(exc), value=exc.value, feature=index) from exc
        if fence.id in first_seen:
            raise PlaceImportError(
                f"duplicate id {fence.id!r} (first in feature {first_seen[fence.id]})",
                value=fence.id,
                feature=index,
            )
        first_seen[fence.id] = index
        fences.append(fence)
    return fences


def geofences_from_csv(
    data: str | bytes, *, default_radius_m: float = DEFAULT_RADIUS_M
) -> list[Geofence]:
    """The fences of a CSV place list, in file order."""
    _check_default_radius(default_radius_m)
    reader = csv.reader(io.StringIO(_decode(data), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise PlaceImportError("empty CSV: a header row is required", line=1)
        columns = _csv_columns(header)
        fences: list[Geofence] = []
        first_seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line (or only separators): spreadsheets leave them
            if len(fences) == MAX_PLACES:
                raise PlaceImportError(f"more than {MAX_PLACES} places", line=line)
            if len(row) != len(header):
                raise PlaceImportError(
                    f"expected {len(header)} fields, got {len(row)}", value=row, line=line
                )
            cells = {name: row[i].strip() for name, i in columns.items()}
            try:
                fence = _fence_from_row(cells, default_radius_m)
            except GeoError as exc:
                raise PlaceImportError(str(exc), value=exc.value, line=line) from exc
            if fence.id in first_seen:
                raise PlaceImportError(
                    f"duplicate id {fence.id!r} (first on line {first_seen[fence.id]})",
                    value=fence.id,
                    line=line,
                )
            first_seen[fence.id] = line
            fences.append(fence)
    except csv.Error as exc:
        raise PlaceImportError(f"invalid CSV: {exc}", line=reader.line_num) from exc
    return fences


def geofences_from_places(
    places: Iterable[Place], *, default_radius_m: float = DEFAULT_RADIUS_M
) -> list[Geofence]:
    """One circle of ``default_radius_m`` per place (the shipped data holds points only).

    ``partner_id`` stays ``None``: the shipped places name brands, not partner contracts;
    offer rules link partners to stations by brand.
    """
    _check_default_radius(default_radius_m)
    fences: list[Geofence] = []
    first_seen: dict[str, int] = {}
    for index, place in enumerate(places):
        if index == MAX_PLACES:
            raise PlaceImportError(f"more than {MAX_PLACES} places", feature=index)
        try:
            fence = Geofence(
                id=place.id,
                kind=place.kind,
                name=place.name,
                geometry=Circle(place.lat, place.lon, default_radius_m),
                brand=place.brand,
            )
        except GeoError as exc:
            raise PlaceImportError(str(exc), value=exc.value, feature=index) from exc
        if fence.id in first_seen:
            raise PlaceImportError(
                f"duplicate id {fence.id!r} (first in feature {first_seen[fence.id]})",
                value=fence.id,
                feature=index,
            )
        first_seen[fence.id] = index
        fences.append(fence)
    return fences


def _check_default_radius(radius_m: float) -> None:
    if (
        isinstance(radius_m, bool)
        or not isinstance(radius_m, int | float)
        or not 0.0 < radius_m <= MAX_CIRCLE_RADIUS_M
    ):
        raise PlaceImportError(
            f"default_radius_m must be in (0, {MAX_CIRCLE_RADIUS_M:g}], got {radius_m!r}",
            value=radius_m,
        )


def _decode(data: str | bytes) -> str:
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8-sig")  # Excel writes a BOM in front of UTF-8 CSV
        except UnicodeDecodeError as exc:
            raise PlaceImportError(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    raise PlaceImportError(f"expected text or bytes, got {type(data).__name__}")


def _kind(value: object) -> PlaceKind:
    if value is None or value == "":
        raise GeoError("missing kind")
    if isinstance(value, str) and value in _KIND_VALUES:
        return PlaceKind(value)
    raise GeoError(f"unknown kind {value!r} (one of {_KINDS})", value=value)


def _required_text(what: str, value: object) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise GeoError(f"missing {what}")
    if not isinstance(value, str):
        raise GeoError(f"{what} must be a string, got {type(value).__name__}", value=value)
    return value.strip()


def _optional_text(what: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GeoError(f"{what} must be a string, got {type(value).__name__}", value=value)
    return value.strip()


# --- GeoJSON ---------------------------------------------------------------------------------


def _fence_from_feature(feature: object, default_radius_m: float) -> Geofence:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise GeoError("not a GeoJSON Feature", value=feature)
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        raise GeoError("missing properties", value=properties)
    fence_id = feature.get("id", properties.get("id"))
    if isinstance(fence_id, int) and not isinstance(fence_id, bool):
        fence_id = str(fence_id)  # RFC 7946 allows numeric ids
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict):
        raise GeoError("missing geometry", value=geometry)
    return Geofence(
        id=_required_text("id", fence_id),
        kind=_kind(properties.get("kind")),
        name=_required_text("name", properties.get("name")),
        geometry=_geometry(geometry, properties.get("radius_m"), default_radius_m),
        brand=_optional_text("brand", properties.get("brand")),
        partner_id=_optional_text("partner_id", properties.get("partner_id")) or None,
    )


def _geometry(geometry: dict[str, object], radius: object, default_radius_m: float) -> Geometry:
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Point":
        lat, lon = _position(coordinates, "Point coordinates")
        return Circle(lat, lon, default_radius_m if radius is None else _radius(radius))
    if kind == "Polygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise GeoError("Polygon coordinates must be a non-empty list of rings")
        rings = []
        for r, ring in enumerate(coordinates):
            if not isinstance(ring, list):
                raise GeoError(f"ring {r} is not a list of positions", value=ring)
            rings.append(
                tuple(_position(p, f"position {i} of ring {r}") for i, p in enumerate(ring))
            )
        return Polygon(rings[0], tuple(rings[1:]))
    raise GeoError(f"unsupported geometry type {kind!r} (Point or Polygon)", value=kind)


def _position(value: object, what: str) -> tuple[float, float]:
    """A GeoJSON position ``[lon, lat]`` or ``[lon, lat, alt]`` -> ``(lat, lon)``; the numbers
    themselves are checked by the geometry."""
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise GeoError(f"{what} must be [lon, lat]", value=value)
    return value[1], value[0]


def _radius(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GeoError(f"radius_m must be a number, got {value!r}", value=value)
    return float(value)  # the range is Circle's to check


# --- CSV -------------------------------------------------------------------------------------


def _csv_columns(header: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    columns: dict[str, int] = {}
    for i, name in enumerate(names):
        if name and name in columns:
            raise PlaceImportError(f"duplicate column {name!r}", value=name, line=1)
        columns[name] = i
    required = _CSV_REQUIRED if "wkt" in columns else (*_CSV_REQUIRED, "lat", "lon")
    missing = [name for name in required if name not in columns]
    if missing:
        raise PlaceImportError(
            f"missing column(s) {', '.join(missing)} in the header", value=header, line=1
        )
    return columns


def _fence_from_row(cells: dict[str, str], default_radius_m: float) -> Geofence:
    wkt = cells.get("wkt", "")
    lat_text, lon_text = cells.get("lat", ""), cells.get("lon", "")
    geometry: Geometry
    if wkt:
        if lat_text or lon_text:
            raise GeoError("give either lat/lon or wkt, not both")
        geometry = _polygon_from_wkt(wkt)
    else:
        radius_text = cells.get("radius_m", "")
        geometry = Circle(
            _csv_number("lat", lat_text),
            _csv_number("lon", lon_text),
            _csv_number("radius_m", radius_text) if radius_text else default_radius_m,
        )
    return Geofence(
        id=_required_text("id", cells["id"]),
        kind=_kind(cells["kind"]),
        name=_required_text("name", cells["name"]),
        geometry=geometry,
        brand=cells.get("brand", ""),
        partner_id=cells.get("partner_id") or None,
    )


def _csv_number(what: str, text: str) -> float:
    if not text:
        raise GeoError(f"missing {what}")
    try:
        return float(text)  # finiteness and range are the geometry's to check
    except ValueError:
        raise GeoError(f"{what} {text!r} is not a number", value=text) from None


def _polygon_from_wkt(text: str) -> Polygon:
    """``POLYGON((lon lat, ...), (lon lat, ...))`` -> :class:`Polygon` (first ring exterior)."""
    match = _WKT_POLYGON.fullmatch(text)
    if match is None or not _WKT_RINGS.fullmatch(match.group(1)):
        raise GeoError("wkt must be POLYGON((lon lat, lon lat, ...), ...)", value=text[:80])
    rings: list[tuple[tuple[float, float], ...]] = []
    for body in _WKT_RING.findall(match.group(1)):
        vertices = []
        for point in body.split(","):
            numbers = point.split()
            if len(numbers) != 2:
                raise GeoError(f"wkt position {point.strip()!r} is not 'lon lat'", value=point)
            lon, lat = (_csv_number("wkt coordinate", n) for n in numbers)
            vertices.append((lat, lon))
        rings.append(tuple(vertices))
    return Polygon(rings[0], tuple(rings[1:]))
