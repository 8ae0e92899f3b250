"""LoginThrottle: pure, time passed in."""

from __future__ import annotations

from broker.amqtt_plugin import LoginThrottle


def test_repeated_failures_of_one_identity_are_throttled_for_the_window() -> None:
    throttle = LoginThrottle(failures=3, window_s=10.0, source_failures=100)
    for t in (0.0, 1.0, 2.0):
        assert not throttle.blocked("10.0.0.1", "CAR", t)
        throttle.failed("10.0.0.1", "CAR", t)
    assert throttle.blocked("10.0.0.1", "CAR", 2.5)
    assert throttle.blocked("10.0.0.1", "CAR", 9.9)
    assert not throttle.blocked("10.0.0.1", "CAR", 10.5)  # the first failure left the window


def test_a_broken_car_does_not_lock_out_its_nat_neighbours() -> None:
    throttle = LoginThrottle(failures=3, window_s=10.0, source_failures=100)
    for t in range(5):
        throttle.failed("100.64.0.1", "BROKEN", float(t))
    assert throttle.blocked("100.64.0.1", "BROKEN", 5.0)
    assert not throttle.blocked("100.64.0.1", "HEALTHY", 5.0)
    assert not throttle.blocked("100.64.0.2", "BROKEN", 5.0)


def test_a_flood_varying_the_username_is_throttled_per_address() -> None:
    throttle = LoginThrottle(failures=3, window_s=10.0, source_failures=20)
    for i in range(20):
        throttle.failed("203.0.113.9", f"GUESS{i}", 1.0)
    assert throttle.blocked("203.0.113.9", "ANYONE", 2.0)
    assert not throttle.blocked("203.0.113.10", "ANYONE", 2.0)
