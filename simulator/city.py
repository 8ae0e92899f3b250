"""The area a simulated fleet drives in, and the small amount of geodesy the simulator needs.

Distances use the haversine formula on a sphere with the IUGG mean Earth radius: over a city
(tens of km) the error against the WGS 84 ellipsoid is below 0.5 %, far below GNSS noise in a
street canyon. For speed, the vehicle model moves in a local east/north plane (kilometres around
the city centre, equirectangular projection) and converts to latitude/longitude only when a
signal is read; :meth:`City.to_local` and :meth:`City.to_geo` are that projection.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

#: IUGG mean Earth radius R1 in km.
EARTH_RADIUS_KM = 6371.0088
#: Length of one degree of latitude (and of longitude at the equator) on that sphere.
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180.0

_MS_PER_DAY = 86_400_000
_DAYS_PER_YEAR = 365.2422
_WARMEST_DAY = 205.0  # ~24 July
_WARMEST_HOUR = 15.0


@dataclass(frozen=True, slots=True)
class City:
    """A circular operating area: vehicles get homes and destinations inside ``radius_km``."""

    name: str
    center_lat: float
    center_lon: float
    radius_km: float
    #: Mean altitude above the WGS 84 ellipsoid in metres (GNSS altitude, not above sea level).
    altitude_m: float = 0.0
    # Climate (degrees C): a yearly cosine peaking in late July plus a daily cosine peaking at
    # 15:00 local solar time. Enough for plausible temperature-dependent signals; not weather.
    annual_mean_c: float = 9.5
    seasonal_amplitude_c: float = 9.5
    daily_amplitude_c: float = 4.0
    # Scale of the local plane in longitude direction; derived, not part of equality.
    _km_per_degree_lon: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not -90.0 < self.center_lat < 90.0 or not -180.0 <= self.center_lon <= 180.0:
            raise ValueError(f"{self.name}: centre ({self.center_lat}, {self.center_lon}) invalid")
        if not 0.0 < self.radius_km < 200.0:
            # Beyond a few hundred km the flat local plane would distort distances noticeably.
            raise ValueError(f"{self.name}: radius {self.radius_km} km must be in (0, 200)")
        scale = KM_PER_DEGREE * math.cos(math.radians(self.center_lat))
        object.__setattr__(self, "_km_per_degree_lon", scale)

    def to_local(self, lat: float, lon: float) -> tuple[float, float]:
        """(east, north) in km from the centre, equirectangular around the centre."""
        return (
            (lon - self.center_lon) * self._km_per_degree_lon,
            (lat - self.center_lat) * KM_PER_DEGREE,
        )

    def to_geo(self, east_km: float, north_km: float) -> tuple[float, float]:
        """(lat, lon) of a point given in local km; inverse of :meth:`to_local`."""
        return (
            self.center_lat + north_km / KM_PER_DEGREE,
            self.center_lon + east_km / self._km_per_degree_lon,
        )

    def distance_from_center_km(self, lat: float, lon: float) -> float:
        return haversine_km(self.center_lat, self.center_lon, lat, lon)

    def contains(self, lat: float, lon: float, margin_km: float = 0.0) -> bool:
        return self.distance_from_center_km(lat, lon) <= self.radius_km + margin_km

    def air_temperature_c(self, now_ms: int) -> float:
        """Typical outside air temperature at UTC epoch milliseconds ``now_ms``."""
        days = now_ms / _MS_PER_DAY
        # Days since 1970-01-01 modulo the tropical year is the day of the year to within a day.
        season = math.cos(math.tau * ((days % _DAYS_PER_YEAR) - _WARMEST_DAY) / _DAYS_PER_YEAR)
        solar_hour = (days % 1.0) * 24.0 + self.center_lon / 15.0
        daily = math.cos(math.tau * (solar_hour - _WARMEST_HOUR) / 24.0)
        return (
            self.annual_mean_c + self.seasonal_amplitude_c * season + self.daily_amplitude_c * daily
        )

    def random_local_point(self, rng: random.Random) -> tuple[float, float]:
        """A point (east, north) in km, uniformly distributed over the disc."""
        # sqrt makes the density uniform in area; without it points crowd the centre.
        r = self.radius_km * math.sqrt(rng.random())
        theta = rng.random() * math.tau
        return r * math.cos(theta), r * math.sin(theta)

    def random_point(self, rng: random.Random) -> tuple[float, float]:
        """A (lat, lon) uniformly distributed over the city disc."""
        return self.to_geo(*self.random_local_point(rng))


# Centre coordinates are the usual city-centre reference points (Marienplatz, Brandenburger Tor,
# ...); altitudes are ellipsoidal heights (orthometric height + ~47-48 m geoid undulation).
MUNICH = City("Munich", 48.137154, 11.576124, 12.0, altitude_m=567.0)
BERLIN = City("Berlin", 52.516275, 13.377704, 15.0, altitude_m=74.0)
STUTTGART = City("Stuttgart", 48.775846, 9.182932, 9.0, altitude_m=295.0)
WOLFSBURG = City("Wolfsburg", 52.422650, 10.786546, 8.0, altitude_m=105.0)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two WGS 84 points (spherical Earth)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    # min() guards asin against a rounding error pushing ``a`` a hair above 1 for antipodes.
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees in [0, 360), 0 = north."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    y = math.sin(dlmb) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlmb)
    return math.degrees(math.atan2(y, x)) % 360.0


def destination_point(
    lat: float, lon: float, bearing: float, distance_km: float
) -> tuple[float, float]:
    """The point ``distance_km`` from (lat, lon) along initial ``bearing`` degrees (great circle).

    Longitude is normalised to [-180, 180).
    """
    delta = distance_km / EARTH_RADIUS_KM
    theta = math.radians(bearing)
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lmb2 = lmb1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * sin_phi2,
    )
    lon2 = (math.degrees(lmb2) + 540.0) % 360.0 - 180.0
    return math.degrees(phi2), lon2


def random_point(city: City, rng: random.Random) -> tuple[float, float]:
    """A (lat, lon) uniformly distributed over ``city``; see :meth:`City.random_point`."""
    return city.random_point(rng)
