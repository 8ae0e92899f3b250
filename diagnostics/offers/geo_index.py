"""A spatial index over geofences, fast enough to look up every position of a large fleet.

A uniform grid over latitude/longitude with cells of ``c`` degrees (default 0.01: ~1.1 km
north-south, ~0.75 km east-west in Munich); row ``floor(lat / c)``, column ``floor(lon / c)``.
The two questions need different things, so there are two structures:

- :meth:`GeofenceIndex.containing` ("which fences is this car in?") needs every fence that
  *could* contain the point, so each fence is registered in every cell its box overlaps; a
  lookup reads one cell and tests its few fences exactly.
- :meth:`GeofenceIndex.near` ("which stations are within 5 km?") is about distances to a
  fence's *anchor* (centre or centroid), so anchors are indexed on their own, by row: each
  row (a strip of the grid) keeps its anchors sorted by longitude. A query reads only the rows
  the query circle's box overlaps and, in each, only the anchors inside the box's longitude
  range (two bisections) -- the cells that can hold such anchors, without probing the empty
  ones one by one. Each kind has its own strips, so "fuel stations within 5 km" never
  measures the distance to a dealer.

Why a grid and not an R-tree: fences are small and evenly spread over a city, positions arrive
one at a time, and a grid lookup is a dict access in pure Python. Correctness does not depend
on rounding: ``floor(x / c)`` is monotonic, so a point inside a fence's box always maps to a
cell between the box corners' cells, which is where the fence was registered.

A fence whose box spans more than :data:`MAX_CELLS_PER_FENCE` cells (a country-sized polygon)
is not spread over the grid -- that would cost memory in proportion to its area -- but kept in
a short list tested on every lookup. The results are the same; only the cost moves.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator

from diagnostics.offers.geo import EARTH_RADIUS_M, GeoError, Geofence, circle_bbox
from protocol.places import PlaceKind

#: Fences spanning more cells than this are tested on every lookup instead of being registered
#: cell by cell (65,536 cells of 0.01 deg: about 280 x 190 km in Munich).
MAX_CELLS_PER_FENCE = 65_536

_Cell = tuple[int, int]
_Test = Callable[[float, float], bool]
# fence, anchor lat, anchor lon, radians(anchor lat), cos(radians(anchor lat)): the last two
# are the per-anchor half of haversine, computed once instead of on every query.
_Anchor = tuple[Geofence, float, float, float, float]
# One row of the grid: anchor longitudes sorted, and the anchors in the same order.
_Strip = tuple[list[float], list[_Anchor]]


def _check_position(lat: float, lon: float) -> None:
    # Also refuses NaN (every comparison with it is false): floor(NaN) would raise a bare
    # ValueError deep inside, and a NaN position must never silently match nothing.
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise GeoError(f"position ({lat}, {lon}) out of range", value=(lat, lon))


class GeofenceIndex:
    """Immutable index over a set of geofences (build a new one when the places change)."""

    __slots__ = (
        "_cell_deg",
        "_cells",
        "_fences",
        "_inverse",
        "_strips",
        "_strips_by_kind",
        "_wide",
    )

    def __init__(self, fences: Iterable[Geofence], *, cell_deg: float = 0.01) -> None:
        """Index ``fences``; :class:`GeoError` for a duplicate id or a bad ``cell_deg``."""
        if (
            isinstance(cell_deg, bool)
            or not isinstance(cell_deg, int | float)
            or not 0.0 < cell_deg <= 180.0
        ):
            raise GeoError(f"cell_deg must be in (0, 180], got {cell_deg!r}", value=cell_deg)
        self._cell_deg = float(cell_deg)
        self._inverse = 1.0 / self._cell_deg
        by_id: dict[str, Geofence] = {}
        for fence in fences:
            if not isinstance(fence, Geofence):
                raise GeoError(f"not a Geofence: {fence!r}", value=fence)
            if fence.id in by_id:
                raise GeoError(f"duplicate geofence id {fence.id!r}", value=fence.id)
            by_id[fence.id] = fence
        # Registering in id order keeps every cell's list sorted by id, so lookups need no sort.
        self._fences = {fence_id: by_id[fence_id] for fence_id in sorted(by_id)}

        cells: dict[_Cell, list[tuple[_Test, Geofence]]] = {}
        wide: list[tuple[_Test, Geofence]] = []
        anchors: list[_Anchor] = []
        for fence in self._fences.values():
            # The geometry's own bound method: one call less per test on the hot path.
            entry = (fence.geometry.contains, fence)
            min_lat, min_lon, max_lat, max_lon = fence.geometry.bbox()
            rows = range(self._cell(min_lat), self._cell(max_lat) + 1)
            cols = range(self._cell(min_lon), self._cell(max_lon) + 1)
            if len(rows) * len(cols) > MAX_CELLS_PER_FENCE:
                wide.append(entry)
            else:
                for i in rows:
                    for j in cols:
                        cells.setdefault((i, j), []).append(entry)
            anchor_lat, anchor_lon = fence.geometry.anchor
            phi = math.radians(anchor_lat)
            anchors.append((fence, anchor_lat, anchor_lon, phi, math.cos(phi)))
        self._cells = {key: tuple(entries) for key, entries in cells.items()}
        self._wide = tuple(wide)
        self._strips = self._build_strips(anchors)
        self._strips_by_kind = {
            kind: self._build_strips([a for a in anchors if a[0].kind is kind])
            for kind in {a[0].kind for a in anchors}
        }

    def _build_strips(self, anchors: list[_Anchor]) -> dict[int, _Strip]:
        rows: dict[int, list[_Anchor]] = {}
        for anchor in anchors:
            rows.setdefault(self._cell(anchor[1]), []).append(anchor)
        strips: dict[int, _Strip] = {}
        for row, entries in rows.items():
            entries.sort(key=lambda a: (a[2], a[0].id))
            strips[row] = ([a[2] for a in entries], entries)
        return strips

    def _cell(self, degrees: float) -> int:
        return math.floor(degrees * self._inverse)

    @property
    def cell_deg(self) -> float:
        return self._cell_deg

    def __len__(self) -> int:
        return len(self._fences)

    def __iter__(self) -> Iterator[Geofence]:
        """The fences in id order."""
        return iter(self._fences.values())

    def get(self, fence_id: str) -> Geofence | None:
        return self._fences.get(fence_id)

    def containing(self, lat: float, lon: float) -> list[Geofence]:
        """Every fence containing (lat, lon), sorted by id; :class:`GeoError` if out of range."""
        _check_position(lat, lon)
        inverse = self._inverse
        bucket = self._cells.get((math.floor(lat * inverse), math.floor(lon * inverse)))
        found = [fence for test, fence in bucket if test(lat, lon)] if bucket else []
        if self._wide:
            extra = [fence for test, fence in self._wide if test(lat, lon)]
            if extra:
                found.extend(extra)
                found.sort(key=lambda fence: fence.id)
        return found

    def near(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        kinds: Collection[PlaceKind] | None = None,
    ) -> list[tuple[Geofence, float]]:
        """Fences whose anchor is within ``radius_m`` (haversine) of (lat, lon), with that
        distance in metres, nearest first (ties by id); only ``kinds`` if given.

        The distance is exactly :meth:`Geofence.distance_m` (same floating-point result).
        """
        _check_position(lat, lon)
        if not 0.0 <= radius_m < math.inf:  # also refuses NaN
            raise GeoError(f"radius_m must be finite and >= 0, got {radius_m!r}", value=radius_m)
        wanted: frozenset[PlaceKind] | None = None
        strips = self._strips
        if kinds is not None:
            wanted = frozenset(kinds)
            if wanted >= self._strips_by_kind.keys():
                wanted = None  # every kind we hold: no filter needed
            elif len(wanted) == 1:
                (kind,) = wanted
                strips = self._strips_by_kind.get(kind, {})
                wanted = None
        if not strips:
            return []

        # Inline haversine (see geo.haversine_m): the same operations in the same order, so
        # the distances are bit-identical, with the anchor's half precomputed and a cheap
        # rejection on the haversine term before the square root and arcsine.
        phi1 = math.radians(lat)
        cos1 = math.cos(phi1)
        half_angle = radius_m / EARTH_RADIUS_M / 2.0
        # A hair above the exact limit: the exact test on the distance decides at the edge.
        limit = math.sin(half_angle) ** 2 * (1.0 + 1e-9) + 1e-18 if half_angle < 1.5 else 2.0
        diameter = 2.0 * EARTH_RADIUS_M
        sin, radians = math.sin, math.radians
        found: list[tuple[Geofence, float]] = []
        for fence, _, anchor_lon, phi2, cos2 in self._candidates(strips, lat, lon, radius_m):
            if wanted is not None and fence.kind not in wanted:
                continue
            a = (
                sin((phi2 - phi1) / 2.0) ** 2
                + cos1 * cos2 * sin(radians(anchor_lon - lon) / 2.0) ** 2
            )
            if a > limit:
                continue
            distance = diameter * math.asin(min(1.0, math.sqrt(a)))
            if distance <= radius_m:
                found.append((fence, distance))
        found.sort(key=lambda pair: (pair[1], pair[0].id))
        return found

    def _candidates(
        self, strips: dict[int, _Strip], lat: float, lon: float, radius_m: float
    ) -> list[_Anchor]:
        """The anchors inside the query circle's box."""
        min_lat, min_lon, max_lat, max_lon = circle_bbox(lat, lon, radius_m)
        rows = range(self._cell(min_lat), self._cell(max_lat) + 1)
        # The box is not wrapped at the antimeridian: split it into the parts on either side.
        if min_lon < -180.0:
            spans = [(-180.0, max_lon), (min_lon + 360.0, 180.0)]
        elif max_lon > 180.0:
            spans = [(min_lon, 180.0), (-180.0, max_lon - 360.0)]
        else:
            spans = [(min_lon, max_lon)]
        if len(rows) <= len(strips):
            selected = [strips.get(i) for i in rows]
        else:  # a huge radius: walk the occupied rows rather than probe every empty one
            selected = [strip for i, strip in strips.items() if i in rows]
        candidates: list[_Anchor] = []
        for strip in selected:
            if strip is None:
                continue
            lons, entries = strip
            for west, east in spans:
                first = bisect_left(lons, west)
                candidates.extend(entries[first : bisect_right(lons, east, first)])
        return candidates
