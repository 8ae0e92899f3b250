"""Waves and the rollout decision (ota/rollout.py): placement is a fair, stable function of the
campaign id, waves open on success and the campaign halts on failures, in any open wave."""

from __future__ import annotations

from collections import Counter

import pytest

from ota.campaigns.errors import CampaignInvalidError
from ota.rollout import Decision, Wave, WaveCounts, check_waves, cumulative_sizes, decide, place

WAVES = (Wave(0.01, 0.9, 0.1), Wave(0.1, 0.9, 0.1), Wave(0.5, 0.9, 0.1), Wave(1.0, 0.9, 0.1))
VINS = [f"WVWZZZ1JZXW{n:06d}" for n in range(1000)]


def test_cumulative_sizes_round_up_so_a_small_campaign_has_a_canary() -> None:
    assert cumulative_sizes(500, WAVES) == [5, 50, 250, 500]
    assert cumulative_sizes(30, WAVES) == [1, 3, 15, 30]
    assert cumulative_sizes(0, WAVES) == [0, 0, 0, 0]


def test_placement_fills_each_wave_to_its_share() -> None:
    placed = place("campaign-1", VINS, WAVES)
    assert Counter(placed.values()) == {0: 10, 1: 90, 2: 400, 3: 500}
    assert set(placed) == set(VINS)


def test_placement_is_stable_per_campaign_and_differs_between_campaigns() -> None:
    assert place("campaign-1", VINS, WAVES) == place("campaign-1", list(reversed(VINS)), WAVES)
    canary_1 = {v for v, w in place("campaign-1", VINS, WAVES).items() if w == 0}
    canary_2 = {v for v, w in place("campaign-2", VINS, WAVES).items() if w == 0}
    assert canary_1 != canary_2
    # Not the lowest VINs: the canary is spread over the fleet.
    assert canary_1 != set(VINS[:10])


@pytest.mark.parametrize(
    "waves",
    [
        (),
        (Wave(0.5),),  # does not reach everyone
        (Wave(0.5), Wave(0.4), Wave(1.0)),  # shrinks
        (Wave(0.5), Wave(0.5), Wave(1.0)),  # does not grow
        (Wave(0.0), Wave(1.0)),
        (Wave(1.0, success_threshold=1.5),),
        (Wave(1.0, failure_threshold=-0.1),),
        tuple(Wave((n + 1) / 21) for n in range(21)),  # too many
    ],
)
def test_bad_waves_are_refused(waves: tuple[Wave, ...]) -> None:
    with pytest.raises(CampaignInvalidError) as caught:
        check_waves(waves)
    assert caught.value.code == "campaign_invalid"


def counts(*per_wave: tuple[int, int, int]) -> list[WaveCounts]:
    return [WaveCounts(*c) for c in per_wave] + [WaveCounts(0)] * (4 - len(per_wave))


def test_a_wave_holds_until_its_success_threshold() -> None:
    verdict = decide(WAVES, 0, counts((10, 8, 0)))
    assert verdict.decision is Decision.HOLD
    verdict = decide(WAVES, 0, counts((10, 9, 1)))
    assert (verdict.decision, verdict.wave) == (Decision.ADVANCE, 0)


def test_failures_above_the_threshold_halt_even_if_the_wave_would_pass() -> None:
    verdict = decide(WAVES, 0, counts((10, 9, 1)))
    assert verdict.decision is Decision.ADVANCE  # 10 % is not above 10 %
    verdict = decide(WAVES, 0, counts((10, 8, 2)))
    assert verdict.decision is Decision.HALT
    assert "2 of 10 failed" in verdict.reason


def test_a_late_failure_in_an_earlier_wave_halts_the_campaign() -> None:
    verdict = decide(WAVES, 2, counts((10, 7, 3), (90, 88, 0), (400, 10, 0)))
    assert (verdict.decision, verdict.wave) == (Decision.HALT, 0)


def test_the_last_wave_passing_completes_the_campaign() -> None:
    verdict = decide(WAVES, 3, counts((10, 10, 0), (90, 90, 0), (400, 400, 0), (500, 450, 0)))
    assert verdict.decision is Decision.COMPLETE


def test_an_empty_wave_passes_at_once() -> None:
    assert decide(WAVES, 1, counts((1, 1, 0), (0, 0, 0))).decision is Decision.ADVANCE
