"""Waves of a campaign and the decision after each status change, as pure functions.

Like hawkBit's rollout groups: a campaign reaches its vehicles in waves of growing cumulative
share (e.g. 1 % -> 10 % -> 50 % -> 100 %). The next wave opens when the current one's success
rate reaches its threshold; the campaign halts itself when any open wave's failure rate passes
its threshold (failed and rolled back both count). Nothing here reads a clock or a database.

Which vehicle lands in which wave is a pure function of the campaign id and the VIN (a hash
rank), so the canary wave is a fair sample of the fleet rather than, say, the oldest cars, and
the same campaign places the same cars again after a restart.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ota.campaigns.errors import CampaignInvalidError

MAX_WAVES = 20


@dataclass(frozen=True, slots=True)
class Wave:
    #: Cumulative share of the targeted vehicles reached once this wave is open (0 < s <= 1).
    share: float
    #: Share of this wave's vehicles that must have installed before the next wave opens.
    success_threshold: float = 0.9
    #: The campaign halts when more than this share of the wave's vehicles failed.
    failure_threshold: float = 0.1


def check_waves(waves: Sequence[Wave]) -> None:
    if not 1 <= len(waves) <= MAX_WAVES:
        raise CampaignInvalidError(
            f"a campaign has 1..{MAX_WAVES} waves", field="waves", value=len(waves)
        )
    previous = 0.0
    for index, wave in enumerate(waves):
        if not previous < wave.share <= 1.0:
            raise CampaignInvalidError(
                f"wave {index}: shares must grow strictly up to 1.0, got {wave.share}",
                field="waves",
                value=wave.share,
            )
        for name in ("success_threshold", "failure_threshold"):
            value = getattr(wave, name)
            if not 0.0 <= value <= 1.0:
                raise CampaignInvalidError(
                    f"wave {index}: {name} must be in 0..1", field="waves", value=value
                )
        previous = wave.share
    if waves[-1].share != 1.0:
        raise CampaignInvalidError(
            "the last wave must reach every targeted vehicle (share 1.0)",
            field="waves",
            value=waves[-1].share,
        )


def cumulative_sizes(total: int, waves: Sequence[Wave]) -> list[int]:
    """How many vehicles waves 0..k hold together, for each k. Rounded up, so a canary wave
    of a small campaign still holds one vehicle."""
    return [min(total, math.ceil(wave.share * total - 1e-9)) for wave in waves]


def rank_key(campaign_id: str, vin: str) -> bytes:
    return hashlib.sha256(f"{campaign_id}:{vin}".encode()).digest()


def place(campaign_id: str, vins: Iterable[str], waves: Sequence[Wave]) -> dict[str, int]:
    """The wave of each vehicle targeted when the campaign is created."""
    ordered = sorted(set(vins), key=lambda vin: rank_key(campaign_id, vin))
    sizes = cumulative_sizes(len(ordered), waves)
    placed: dict[str, int] = {}
    wave = 0
    for index, vin in enumerate(ordered):
        while index >= sizes[wave]:
            wave += 1
        placed[vin] = wave
    return placed


@dataclass(frozen=True, slots=True)
class WaveCounts:
    size: int
    installed: int = 0
    failed: int = 0  # failed and rolled back

    @property
    def success_rate(self) -> float:
        return self.installed / self.size if self.size else 1.0

    @property
    def failure_rate(self) -> float:
        return self.failed / self.size if self.size else 0.0


class Decision(StrEnum):
    HOLD = "hold"  # the current wave is still going
    ADVANCE = "advance"  # open the next wave
    COMPLETE = "complete"  # the last wave passed its success threshold
    HALT = "halt"  # failures passed a threshold: no more offers until an operator acts


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    wave: int  # the wave the decision is about
    reason: str = ""


def decide(waves: Sequence[Wave], current: int, counts: Sequence[WaveCounts]) -> Verdict:
    """What the campaign does next, given each open wave's counts (``counts[k]`` for wave
    ``k`` <= ``current``). Failures are checked first and in every open wave: a late failure
    in an earlier wave still halts the rollout."""
    for index in range(current + 1):
        wave, wave_counts = waves[index], counts[index]
        if wave_counts.size and wave_counts.failure_rate > wave.failure_threshold:
            return Verdict(
                Decision.HALT,
                index,
                f"wave {index}: {wave_counts.failed} of {wave_counts.size} failed "
                f"({wave_counts.failure_rate:.0%} > {wave.failure_threshold:.0%})",
            )
    current_counts = counts[current]
    if current_counts.success_rate >= waves[current].success_threshold:
        if current + 1 < len(waves):
            return Verdict(Decision.ADVANCE, current)
        return Verdict(Decision.COMPLETE, current)
    return Verdict(Decision.HOLD, current)
