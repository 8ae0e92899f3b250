"""The hysteresis / hold state machine every threshold rule is built on."""

from __future__ import annotations

from diagnostics.rules.hysteresis import (
    Condition,
    Transition,
    Verdict,
    judge_above,
    judge_below,
)

B, G, M, U = Verdict.BAD, Verdict.GOOD, Verdict.BETWEEN, Verdict.UNKNOWN


def feed(
    cond: Condition, steps: list[tuple[int, Verdict]], *, hold: int = 30, clear: int = 60
) -> list[Transition]:
    return [
        cond.update(ts, verdict, raise_hold_ms=hold, clear_hold_ms=clear) for ts, verdict in steps
    ]


def test_raises_only_after_the_hold_and_remembers_the_onset() -> None:
    cond = Condition()
    transitions = feed(cond, [(100, B), (110, B), (129, B), (130, B), (140, B)])
    assert transitions == [Transition.NONE] * 3 + [Transition.RAISED, Transition.NONE]
    assert cond.raised and cond.onset_ms == 100


def test_a_spike_or_an_interrupted_run_does_not_raise() -> None:
    cond = Condition()
    # 100-120 bad, 125 fine, then bad again from 130: the hold restarts at 130.
    transitions = feed(cond, [(100, B), (120, B), (125, G), (130, B), (155, B), (159, B)])
    assert Transition.RAISED not in transitions
    assert feed(cond, [(160, B)]) == [Transition.RAISED]
    assert cond.onset_ms == 130


def test_the_dead_band_neither_raises_nor_clears() -> None:
    pending = Condition()
    assert feed(pending, [(0, B), (20, M), (40, B), (60, B)]) == [Transition.NONE] * 4
    raised = Condition(raised=True)
    # Between the levels a raised condition stays raised, and a pending clear is dropped.
    out = feed(raised, [(0, G), (50, M), (60, G), (100, G), (119, G), (120, G)])
    assert out == [Transition.NONE] * 5 + [Transition.CLEARED]
    assert not raised.raised and raised.onset_ms is None and raised.reported is None


def test_unknown_breaks_a_pending_run_but_keeps_a_raised_condition() -> None:
    pending = Condition()
    assert Transition.RAISED not in feed(pending, [(0, B), (20, U), (40, B), (60, B)])
    raised = Condition(raised=True)
    assert feed(raised, [(0, U), (1000, U)]) == [Transition.NONE] * 2
    assert raised.raised


def test_zero_holds_raise_and_clear_on_the_first_sample() -> None:
    cond = Condition()
    assert feed(cond, [(0, B), (1, G)], hold=0, clear=0) == [
        Transition.RAISED,
        Transition.CLEARED,
    ]


def test_worsened_compares_with_the_last_reported_value() -> None:
    rising = Condition(raised=True)
    assert rising.worsened(116.0, 5.0, falling=False)  # nothing reported yet
    rising.reported = 116.0
    assert not rising.worsened(120.9, 5.0, falling=False)
    assert rising.worsened(121.0, 5.0, falling=False)
    assert not rising.worsened(100.0, 5.0, falling=False)  # better is not worse
    falling = Condition(raised=True, reported=175.0)
    assert not falling.worsened(166.0, 10.0, falling=True)
    assert falling.worsened(165.0, 10.0, falling=True)


def test_judges_put_the_raise_level_on_the_failing_side() -> None:
    assert judge_above(115.0, 115.0, 105.0) is B
    assert judge_above(110.0, 115.0, 105.0) is M
    assert judge_above(104.9, 115.0, 105.0) is G
    assert judge_above(105.0, 115.0, 105.0) is M
    assert judge_below(180.0, 180.0, 185.0) is M
    assert judge_below(179.9, 180.0, 185.0) is B
    assert judge_below(185.0, 180.0, 185.0) is G
