"""Geofences of the offers engine: circles and polygons around places, and the geodesy they need.

Pure: no I/O, no clock. Distances and bearings are on a sphere with the IUGG mean Earth radius,
like :mod:`simulator.city`: over the size of a geofence (metres to tens of km) the error
against the WGS 84 ellipsoid is below 0.5 %, far below GNSS noise in a street canyon.

Coordinates are ``(lat, lon)`` in degrees everywhere in this package -- *not* GeoJSON's
``[lon, lat]``; :mod:`diagnostics.offers.place_import` converts at the border.

Two simplifications keep the geometry small and the spatial index a plain lat/lon grid:

- No antimeridian support: a circle whose box would cross +-180 deg of longitude, a circle
  that covers a pole, and a polygon ring spanning more than 180 deg of longitude are refused
  with :class:`GeoError` (the fleets we serve do not drive across the Pacific).
- Polygons are tested in the plane of degrees (lat/lon as if they were flat coordinates). For a
  fence of a few km the edges deviate from the great circles between the same vertices by
  centimetres; what matters is that the index, the tests and the importer all agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from protocol.places import PlaceKind

#: IUGG mean Earth radius R1 in metres (same sphere as :data:`simulator.city.EARTH_RADIUS_KM`).
EARTH_RADIUS_M: float = 6_371_008.8
#: The largest circle we accept: a geofence triggers an offer "here", not "in this region";
#: larger areas are polygons. It also bounds how many index cells one circle occupies.
MAX_CIRCLE_RADIUS_M: float = 50_000.0
#: Points this close to a polygon edge (perpendicular distance in degrees, ~0.1 mm) count as on
#: it: exact collinearity does not survive rounding for edges that are not axis-aligned.
EDGE_TOLERANCE_DEG: float = 1e-9

_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Padding of a circle's box, so that rounding in the box and in haversine can never put a point
# the circle contains outside its box (the index relies on the box being conservative).
_BOX_PAD_DEG = 1e-9
#: Longest place name (the ``offer_places`` column's limit).
MAX_NAME_CHARS = 200
_OUTSIDE, _INSIDE, _BOUNDARY = 0, 1, 2


class GeoError(ValueError):
    """A geometry, position or geofence that cannot be used; ``value`` is the offending input."""

    code: str = "invalid_geometry"

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.value = value


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points (spherical Earth).

    Not validated: this is the hot path of every lookup; callers check positions once.
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2.0) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2.0) ** 2
    )
    # min() guards asin against rounding pushing ``a`` a hair above 1 for antipodes.
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def initial_bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2: degrees in [0, 360), 0 = north,
    90 = east. Identical points give 0 (there is no direction; north is as good as any)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    y = math.sin(dlmb) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlmb)
    bearing = math.degrees(math.atan2(y, x)) % 360.0
    # A tiny negative angle modulo 360 rounds to exactly 360.0, outside the promised range.
    return 0.0 if bearing >= 360.0 else bearing


def bearing_difference_deg(a: float, b: float) -> float:
    """The smaller angle between two bearings, in [0, 180] (350 vs 10 -> 20)."""
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def circle_bbox(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """``(min_lat, min_lon, max_lat, max_lon)`` of the spherical cap of ``radius_m`` around a
    point, padded so it is never smaller than the cap.

    Longitudes are *not* wrapped: a cap crossing the antimeridian gives ``min_lon < -180`` or
    ``max_lon > 180`` (the index splits such ranges; :class:`Circle` refuses them). A cap that
    covers a pole gets the full longitude range ``(-180, 180)`` and reaches that pole.
    """
    delta = radius_m / EARTH_RADIUS_M  # angular radius
    dlat = math.degrees(delta) * (1.0 + 1e-9) + _BOX_PAD_DEG
    min_lat, max_lat = lat - dlat, lat + dlat
    if min_lat <= -90.0 or max_lat >= 90.0 or delta >= math.pi / 2.0:
        return max(min_lat, -90.0), -180.0, min(max_lat, 90.0), 180.0
    # Widest longitude extent of a cap centred at latitude phi (reached north of the centre's
    # parallel, not on it): asin(sin(delta) / cos(phi)). Using dlat there would be too narrow.
    ratio = math.sin(delta) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return min_lat, -180.0, max_lat, 180.0
    dlon = math.degrees(math.asin(ratio)) * (1.0 + 1e-9) + _BOX_PAD_DEG
    return min_lat, lon - dlon, max_lat, lon + dlon


def _number(what: str, value: object) -> float:
    # bool is an int to Python but never a coordinate; strings and None are mistakes upstream.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GeoError(f"{what} must be a number, got {type(value).__name__}", value=value)
    number = float(value)
    if not math.isfinite(number):
        raise GeoError(f"{what} must be finite, got {value!r}", value=value)
    return number


def _latitude(value: object) -> float:
    lat = _number("latitude", value)
    if not -90.0 <= lat <= 90.0:
        raise GeoError(f"latitude {lat} out of range [-90, 90]", value=value)
    return lat


def _longitude(value: object) -> float:
    lon = _number("longitude", value)
    if not -180.0 <= lon <= 180.0:
        raise GeoError(f"longitude {lon} out of range [-180, 180]", value=value)
    return lon


@dataclass(frozen=True, slots=True)
class Circle:
    """A disc of ``radius_m`` around ``(lat, lon)``; the boundary belongs to it."""

    lat: float
    lon: float
    radius_m: float
    # Derived once: the index asks for it per fence and the check above needs it anyway.
    _bbox: tuple[float, float, float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lat, lon = _latitude(self.lat), _longitude(self.lon)
        radius = _number("radius_m", self.radius_m)
        if not 0.0 < radius <= MAX_CIRCLE_RADIUS_M:
            raise GeoError(
                f"radius_m {radius} out of range (0, {MAX_CIRCLE_RADIUS_M:g}]", value=self.radius_m
            )
        box = circle_bbox(lat, lon, radius)
        if box[0] <= -90.0 or box[2] >= 90.0:
            raise GeoError(f"circle around ({lat}, {lon}) covers a pole", value=(lat, lon))
        if box[1] < -180.0 or box[3] > 180.0:
            raise GeoError(
                f"circle around ({lat}, {lon}) crosses the antimeridian (not supported)",
                value=(lat, lon),
            )
        # Store plain floats so equality and hashing do not depend on int vs float input.
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "radius_m", radius)
        object.__setattr__(self, "_bbox", box)

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the haversine distance from the centre is at most the radius."""
        # The (conservative) box first: a few comparisons settle most misses, which is most
        # of what an index cell's candidates are.
        min_lat, min_lon, max_lat, max_lon = self._bbox
        if not (min_lat <= lat <= max_lat and min_lon <= lon <= max_lon):
            return False
        return haversine_m(self.lat, self.lon, lat, lon) <= self.radius_m

    def bbox(self) -> tuple[float, float, float, float]:
        """``(min_lat, min_lon, max_lat, max_lon)``, never smaller than the circle."""
        return self._bbox

    @property
    def anchor(self) -> tuple[float, float]:
        """The centre: where "distance to this fence" is measured from."""
        return self.lat, self.lon


Ring = tuple[tuple[float, float], ...]


def _ring(what: str, raw: object) -> Ring:
    """Validated, normalised ring: tuples of floats, the repeated closing vertex dropped."""
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise GeoError(f"{what} must be a sequence of (lat, lon) pairs", value=raw)
    vertices: list[tuple[float, float]] = []
    for i, vertex in enumerate(raw):
        if isinstance(vertex, str | bytes) or not isinstance(vertex, Sequence) or len(vertex) != 2:
            raise GeoError(f"{what} vertex {i} is not a (lat, lon) pair", value=vertex)
        vertices.append((_latitude(vertex[0]), _longitude(vertex[1])))
    # GeoJSON and WKT close rings by repeating the first vertex; plain lists usually do not.
    if len(vertices) > 1 and vertices[0] == vertices[-1]:
        vertices.pop()
    if len(set(vertices)) < 3:
        raise GeoError(f"{what} needs at least 3 distinct vertices", value=raw)
    lons = [v[1] for v in vertices]
    if max(lons) - min(lons) > 180.0:
        # Such a ring is ambiguous (the short way round would cross the antimeridian).
        raise GeoError(f"{what} spans more than 180 degrees of longitude", value=raw)
    if _collinear(vertices):
        raise GeoError(f"{what} is degenerate: all vertices lie on one line", value=raw)
    return tuple(vertices)


def _collinear(vertices: list[tuple[float, float]]) -> bool:
    """Whether every vertex lies within the edge tolerance of one line (zero-area ring: it
    would contain nothing but its own edges)."""
    y0, x0 = vertices[0]
    far_y, far_x = max(vertices, key=lambda v: (v[0] - y0) ** 2 + (v[1] - x0) ** 2)
    dy, dx = far_y - y0, far_x - x0
    length = math.hypot(dx, dy)
    return all(
        abs(dx * (y - y0) - dy * (x - x0)) <= EDGE_TOLERANCE_DEG * length for y, x in vertices
    )


def _locate(ring: Ring, y: float, x: float) -> int:
    """Where (lat=y, lon=x) lies relative to ``ring``: outside, inside or on its boundary.

    One pass does both tests: the on-edge test (inside the edge's box, and within the edge
    tolerance of its line) and the even-odd ray cast towards +lon (half-open in latitude, so a
    ray through a vertex counts it once).
    """
    inside = False
    y1, x1 = ring[-1]
    for y2, x2 in ring:
        if (y1 <= y <= y2 or y2 <= y <= y1) and (x1 <= x <= x2 or x2 <= x <= x1):
            dy, dx = y2 - y1, x2 - x1
            if abs(dx * (y - y1) - dy * (x - x1)) <= EDGE_TOLERANCE_DEG * math.hypot(dx, dy):
                return _BOUNDARY
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
        y1, x1 = y2, x2
    return _INSIDE if inside else _OUTSIDE


@dataclass(frozen=True, slots=True)
class Polygon:
    """A polygon with optional holes; vertices are ``(lat, lon)`` pairs.

    Rings may be given closed (first vertex repeated) or open; they are stored open. Each ring
    needs 3 distinct vertices, not all on one line, and may span at most 180 deg of longitude.
    Orientation does not matter (even-odd rule). Self-intersection is not checked: the even-odd
    rule gives such a ring a well-defined inside. Holes are assumed to lie inside the exterior
    (not checked; a hole outside it changes nothing).

    Containment, in the plane of degrees: a point on the exterior's edge or vertex (within
    :data:`EDGE_TOLERANCE_DEG`) is inside -- a car parked exactly on the line of a station's
    forecourt is at the station. A point strictly inside a hole is outside, but a point on a
    hole's edge is inside (the hole's boundary is the polygon's boundary too).
    """

    exterior: tuple[tuple[float, float], ...]
    holes: tuple[tuple[tuple[float, float], ...], ...] = ()
    _bbox: tuple[float, float, float, float] = field(init=False, repr=False, compare=False)
    _anchor: tuple[float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exterior = _ring("exterior ring", self.exterior)
        raw_holes: object = self.holes  # the annotation is a promise to callers, not a check
        if isinstance(raw_holes, str | bytes) or not isinstance(raw_holes, Sequence):
            raise GeoError("holes must be a sequence of rings", value=raw_holes)
        holes = tuple(_ring(f"hole {i}", hole) for i, hole in enumerate(raw_holes))
        lats = [v[0] for v in exterior]
        lons = [v[1] for v in exterior]
        # The vertices' box is exact: contains() refuses everything outside it first, so the
        # index can rely on it without padding.
        box = (min(lats), min(lons), max(lats), max(lons))
        object.__setattr__(self, "exterior", exterior)
        object.__setattr__(self, "holes", holes)
        object.__setattr__(self, "_bbox", box)
        object.__setattr__(self, "_anchor", _area_centroid(exterior, box))

    def contains(self, lat: float, lon: float) -> bool:
        """Even-odd containment; edges and vertices count as inside (see the class docstring)."""
        min_lat, min_lon, max_lat, max_lon = self._bbox
        if not (min_lat <= lat <= max_lat and min_lon <= lon <= max_lon):
            return False
        where = _locate(self.exterior, lat, lon)
        if where != _INSIDE:
            return where == _BOUNDARY
        in_hole = False
        for hole in self.holes:
            where = _locate(hole, lat, lon)
            if where == _BOUNDARY:
                return True
            in_hole = in_hole or where == _INSIDE
        return not in_hole

    def bbox(self) -> tuple[float, float, float, float]:
        """``(min_lat, min_lon, max_lat, max_lon)`` of the exterior's vertices."""
        return self._bbox

    @property
    def anchor(self) -> tuple[float, float]:
        """Area centroid of the exterior (holes ignored: it names where the place is, not its
        centre of mass); the vertex mean when the area is degenerate."""
        return self._anchor


def _area_centroid(ring: Ring, box: tuple[float, float, float, float]) -> tuple[float, float]:
    y0, x0 = ring[0]  # relative coordinates: less cancellation for small fences far from 0/0
    area2 = cx = cy = 0.0
    y1, x1 = 0.0, 0.0  # ring[0] relative to itself
    for y, x in ring[1:] + ring[:1]:
        y2, x2 = y - y0, x - x0
        cross = x1 * y2 - x2 * y1
        area2 += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
        y1, x1 = y2, x2
    span = max(box[2] - box[0], box[3] - box[1])
    if abs(area2) > 1e-12 * span * span:
        lat, lon = y0 + cy / (3.0 * area2), x0 + cx / (3.0 * area2)
        # A self-intersecting ring whose lobes nearly cancel has a signed-area centroid far
        # outside itself; an anchor must at least lie in the fence's box.
        if box[0] <= lat <= box[2] and box[1] <= lon <= box[3]:
            return lat, lon
    return sum(v[0] for v in ring) / len(ring), sum(v[1] for v in ring) / len(ring)


Geometry = Circle | Polygon


@dataclass(frozen=True, slots=True)
class Geofence:
    """A place's area: entering it can trigger an offer (``kind`` says what the place is)."""

    id: str  # 1-64 of [A-Za-z0-9._:-]: safe in URLs, log lines and event keys
    kind: PlaceKind
    name: str
    geometry: Geometry
    brand: str = ""  # operator or brand; rules pick partner stations by it
    partner_id: str | None = None  # the offers partner whose place this is, if any

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID_PATTERN.fullmatch(self.id):
            raise GeoError(
                f"geofence id {self.id!r} must be 1-64 characters of [A-Za-z0-9._:-]",
                value=self.id,
            )
        if not isinstance(self.kind, PlaceKind):
            raise GeoError(f"{self.id}: kind must be a PlaceKind", value=self.kind)
        if not isinstance(self.name, str):
            raise GeoError(f"{self.id}: name must be a string", value=self.name)
        if not isinstance(self.geometry, Circle | Polygon):
            raise GeoError(f"{self.id}: geometry must be a Circle or Polygon", value=self.geometry)
        if not isinstance(self.brand, str):
            raise GeoError(f"{self.id}: brand must be a string", value=self.brand)
        if self.partner_id is not None and (
            not isinstance(self.partner_id, str) or not self.partner_id
        ):
            raise GeoError(
                f"{self.id}: partner_id must be a non-empty string or None", value=self.partner_id
            )
        # What the place table holds: a name of at most 200 characters, no NUL (PostgreSQL
        # text). Importers also require a name; fences built in code may go without.
        if len(self.name) > MAX_NAME_CHARS:
            raise GeoError(f"{self.id}: name longer than {MAX_NAME_CHARS} characters", value=None)
        for what, text in (
            ("name", self.name),
            ("brand", self.brand),
            ("partner_id", self.partner_id),
        ):
            if text is not None and "\x00" in text:
                raise GeoError(f"{self.id}: {what} contains a NUL character", value=None)

    def contains(self, lat: float, lon: float) -> bool:
        return self.geometry.contains(lat, lon)

    def distance_m(self, lat: float, lon: float) -> float:
        """Haversine distance from (lat, lon) to the fence's anchor (centre or centroid):
        "how far is the station", not the distance to its edge."""
        anchor_lat, anchor_lon = self.geometry.anchor
        return haversine_m(lat, lon, anchor_lat, anchor_lon)
