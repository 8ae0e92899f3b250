"""The car side of feature entitlements (issue 9): verify each signed document offline, keep the
newest, and enable exactly the features it grants at the car's own clock.

Trust: the car pins the entitlement public key(s) (:data:`protocol.entitlements.TrustedKeys`),
the way a telematics unit gets its trust anchors at end of line; a document signed by any other
key is refused. The simulated fleet gets them from the runtime (``OnboardOptions``).

A document is accepted when its signature verifies with a pinned key, it names this car's VIN,
it is valid at the car's clock (issued, not expired) and its version is strictly greater than the
one the car holds. The same document again (a re-push after a reconnect) is a no-op; anything
else is rejected and reported (``entitlement_rejected`` with a reason), and the car keeps what
it had, ready for the next valid document.

Expiry needs no connection: :meth:`CarEntitlements.features` evaluates each feature's window at
the time asked, so a trial ends on time in a car parked in a garage without coverage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.clock import Clock
from protocol.entitlements import (
    DEFAULT_MAX_CLOCK_SKEW_MS,
    EntitlementDocument,
    EntitlementRejectedError,
    MalformedEntitlementError,
    StaleEntitlementVersionError,
    TrustedKeys,
    verify_document,
)
from protocol.messages import CommandMessage
from simulator.commands import CommandRejectedError

ENTITLEMENT_REJECTED = "entitlement_rejected"


class CarEntitlements:
    """The document a car holds. No I/O: time comes in as ``now_ms``."""

    def __init__(
        self,
        vin: str,
        keys: TrustedKeys,
        *,
        max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
    ) -> None:
        self._vin = vin
        self._keys = dict(keys)
        self._skew_ms = max_clock_skew_ms
        self._current: EntitlementDocument | None = None

    @property
    def version(self) -> int:
        """The version held; 0 before the first document."""
        return self._current.version if self._current is not None else 0

    @property
    def document(self) -> EntitlementDocument | None:
        return self._current

    def apply(self, raw: Mapping[str, Any], now_ms: int) -> bool:
        """Verify ``raw`` (a DSSE envelope) and make it current. Returns False when it is the
        document already held; raises :class:`EntitlementRejectedError` otherwise."""
        document = verify_document(
            raw, self._keys, vin=self._vin, now_ms=now_ms, max_clock_skew_ms=self._skew_ms
        )
        current = self._current
        if current is not None and document.version <= current.version:
            if document == current:
                return False
            raise StaleEntitlementVersionError(
                f"version {document.version} is not newer than {current.version}",
                value=document.version,
            )
        self._current = document
        return True

    def features(self, now_ms: int) -> frozenset[str]:
        current = self._current
        return current.active_features(now_ms) if current is not None else frozenset()


class EntitlementsHandler:
    """The ``entitlements`` command: ``{"payload": {"document": <DSSE envelope>}}``."""

    def __init__(self, entitlements: CarEntitlements, clock: Clock) -> None:
        self._entitlements = entitlements
        self._clock = clock

    async def __call__(self, command: CommandMessage) -> None:
        raw = command.payload.get("document")
        try:
            if not isinstance(raw, dict):
                raise MalformedEntitlementError("payload.document is not an object")
            self._entitlements.apply(raw, self._clock.now_ms())
        except EntitlementRejectedError as exc:
            raise CommandRejectedError(
                exc.reason,
                str(exc),
                event_type=ENTITLEMENT_REJECTED,
                fields={"current_version": self._entitlements.version},
            ) from exc
