"""A condition with hysteresis and hold times: the state machine behind every threshold rule.

A condition raises only after it has held for ``raise_hold_ms`` (a single spike raises
nothing) and clears only after the value has been past a separate clear level for
``clear_hold_ms`` (a value hovering at the threshold does not flap). Between the two levels
(the dead band) a raised condition stays raised and a pending one is dropped.

Holds are measured between sample times: a condition seen at t and again at t + hold is taken to
have held in between, because nothing was seen that says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """What one sample says about a condition."""

    BAD = "bad"  # past the raise level
    GOOD = "good"  # past the clear level
    BETWEEN = "between"  # in the dead band between the two levels
    UNKNOWN = "unknown"  # nothing to judge by (e.g. a 12 V reading while driving)


class Transition(Enum):
    NONE = "none"
    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(slots=True)
class Condition:
    """Per-vehicle, per-key state: four small fields, whatever the sample rate."""

    raised: bool = False
    #: Start of the current run of BAD samples (pending raise) or, once raised, of GOOD samples
    #: (pending clear); None when no run is in progress.
    run_since_ms: int | None = None
    #: When the condition began (first BAD sample of the run that raised it).
    onset_ms: int | None = None
    #: The value carried by the last finding emitted, to tell a material change.
    reported: float | None = None

    def update(
        self, ts_ms: int, verdict: Verdict, *, raise_hold_ms: int, clear_hold_ms: int
    ) -> Transition:
        if verdict is Verdict.UNKNOWN:
            # No evidence either way: a run that needs to be continuous is broken, the raised
            # state is kept.
            self.run_since_ms = None
            return Transition.NONE
        if not self.raised:
            if verdict is not Verdict.BAD:
                self.run_since_ms = None
                return Transition.NONE
            if self.run_since_ms is None:
                self.run_since_ms = ts_ms
            if ts_ms - self.run_since_ms < raise_hold_ms:
                return Transition.NONE
            self.raised, self.onset_ms = True, self.run_since_ms
            self.run_since_ms = None
            return Transition.RAISED
        if verdict is not Verdict.GOOD:
            self.run_since_ms = None
            return Transition.NONE
        if self.run_since_ms is None:
            self.run_since_ms = ts_ms
        if ts_ms - self.run_since_ms < clear_hold_ms:
            return Transition.NONE
        self.raised = False
        self.run_since_ms = self.onset_ms = self.reported = None
        return Transition.CLEARED

    def worsened(self, value: float, step: float, *, falling: bool) -> bool:
        """Whether ``value`` is at least ``step`` worse than the last reported one (lower for a
        falling condition such as tyre pressure, higher for a rising one such as coolant)."""
        if self.reported is None:
            return True
        change = self.reported - value if falling else value - self.reported
        return change >= step


def judge_above(value: float, raise_at: float, clear_below: float) -> Verdict:
    """Verdict for a condition "value at or above ``raise_at``", cleared below ``clear_below``."""
    if value >= raise_at:
        return Verdict.BAD
    return Verdict.GOOD if value < clear_below else Verdict.BETWEEN


def judge_below(value: float, raise_below: float, clear_at: float) -> Verdict:
    """Verdict for a condition "value below ``raise_below``", cleared at or above ``clear_at``."""
    if value < raise_below:
        return Verdict.BAD
    return Verdict.GOOD if value >= clear_at else Verdict.BETWEEN
