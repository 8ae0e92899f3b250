"""The update status of one vehicle in one campaign, as a pure state machine. No I/O: the
caller passes ``now`` and stores the result.

    assigned -> offered -> accepted -> downloading -> downloaded -> installing
             -> installed | failed | rolled_back          (and cancelled, before any download)

Reports from a car travel over MQTT QoS 1 and may be lost with a connection or arrive twice,
so progress may skip steps forward (a car that reports ``installed`` straight after
``accepted`` has installed) and a repeated status is a no-op; it never goes backwards.
``failed`` and ``rolled_back`` may go back to ``assigned`` (a new attempt, offered again under
the same window, preconditions and consent rules): a car that refused an attack must be able
to take the next valid update (issue 9). ``rolled_back`` is an install
that failed and fell back to the previous version (A/B banks); ``failed`` is everything else
that ended without the new version running (verification refused, download failed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from ota.campaigns.errors import StatusTransitionError


class UpdateStatus(StrEnum):
    ASSIGNED = "assigned"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    INSTALLING = "installing"
    INSTALLED = "installed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


S = UpdateStatus
TERMINAL: Final = frozenset({S.INSTALLED, S.FAILED, S.ROLLED_BACK, S.CANCELLED})
FAILURES: Final = frozenset({S.FAILED, S.ROLLED_BACK})
#: Statuses in which the car works on the update: the director lists the image for it.
IN_FLIGHT: Final = frozenset({S.ACCEPTED, S.DOWNLOADING, S.DOWNLOADED, S.INSTALLING})
#: What a car may report over ``ota/status`` (the rest are the backend's decisions).
CAR_REPORTED: Final = frozenset(
    {S.DOWNLOADING, S.DOWNLOADED, S.INSTALLING, S.INSTALLED, S.FAILED, S.ROLLED_BACK}
)

_AFTER_ACCEPT = frozenset({S.ACCEPTED, S.DOWNLOADING, S.DOWNLOADED, S.INSTALLING})
# Target status -> the statuses it may be reached from.
_FROM: Final[Mapping[UpdateStatus, frozenset[UpdateStatus]]] = MappingProxyType(
    {
        S.ASSIGNED: frozenset({S.FAILED, S.ROLLED_BACK}),  # a retry: a new attempt
        S.OFFERED: frozenset({S.ASSIGNED}),
        S.ACCEPTED: frozenset({S.OFFERED}),
        S.DOWNLOADING: frozenset({S.ACCEPTED}),
        S.DOWNLOADED: frozenset({S.ACCEPTED, S.DOWNLOADING}),
        S.INSTALLING: frozenset({S.ACCEPTED, S.DOWNLOADING, S.DOWNLOADED}),
        S.INSTALLED: _AFTER_ACCEPT,
        # A car may refuse what it was offered before anyone accepted (verification fails).
        S.FAILED: _AFTER_ACCEPT | {S.OFFERED},
        S.ROLLED_BACK: frozenset({S.DOWNLOADED, S.INSTALLING}),
        S.CANCELLED: frozenset({S.ASSIGNED, S.OFFERED, S.ACCEPTED}),
    }
)


@dataclass(frozen=True, slots=True)
class UpdateRecord:
    status: UpdateStatus
    attempt: int = 1
    # When each status was (last) reached; an earlier attempt's times are overwritten.
    reached: Mapping[UpdateStatus, datetime] = field(default_factory=dict)
    code: str | None = None  # why it failed, rolled back or was cancelled
    detail: str | None = None

    @classmethod
    def assigned(cls, now: datetime) -> UpdateRecord:
        return cls(S.ASSIGNED, reached={S.ASSIGNED: now})

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class Transition:
    record: UpdateRecord
    changed: bool


def may_transition(current: UpdateStatus, target: UpdateStatus) -> bool:
    return current is target or current in _FROM.get(target, frozenset())


def transition(
    record: UpdateRecord,
    target: UpdateStatus,
    now: datetime,
    *,
    code: str | None = None,
    detail: str | None = None,
) -> Transition:
    """``record`` moved to ``target`` at ``now``; raises :class:`StatusTransitionError` when
    the machine does not allow it. The same status again changes nothing (a duplicate)."""
    if target is record.status:
        return Transition(record, changed=False)
    allowed = _FROM.get(target, frozenset())
    if record.status not in allowed:
        raise StatusTransitionError(
            f"an update cannot go from {record.status} to {target}",
            current=record.status.value,
            target=target.value,
        )
    retry = target is S.ASSIGNED
    reached = dict(record.reached)
    if retry:
        # A new attempt: the failed attempt's times no longer describe this one.
        reached = {}
    reached[target] = now
    failing = target in FAILURES or target is S.CANCELLED
    return Transition(
        replace(
            record,
            status=target,
            attempt=record.attempt + 1 if retry else record.attempt,
            reached=MappingProxyType(reached),
            code=code if failing else None,
            detail=detail if failing else None,
        ),
        changed=True,
    )
