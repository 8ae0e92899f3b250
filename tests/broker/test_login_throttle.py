"""LoginThrottle: pure, time passed in."""

from __future__ import annotations

from broker.throttle import LoginThrottle


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


def test_memory_stays_bounded_under_a_flood_of_fresh_usernames() -> None:
    throttle = LoginThrottle(failures=5, window_s=60.0, source_failures=10**9, max_keys=5_000)
    # A day of 200 distinct wrong usernames a minute from one address.
    for minute in range(24 * 60):
        for i in range(200):
            throttle.failed("198.51.100.7", f"U{minute}-{i}", minute * 60.0 + i * 0.1)
    assert throttle.tracked <= 2 * 5_000 + 2


def test_expired_keys_are_swept_once_the_window_has_passed() -> None:
    throttle = LoginThrottle(failures=5, window_s=10.0, source_failures=10**9)
    for i in range(3000):
        throttle.failed(f"10.0.{i // 250}.{i % 250}", "X", 0.0)
    for i in range(5000):  # much later: the first wave is stale and is swept as tables grow
        throttle.failed(f"172.16.{i // 250}.{i % 250}", "Z", 100.0)
    assert throttle.tracked == 2 * 5000  # per (address, user) and per address: none stale
