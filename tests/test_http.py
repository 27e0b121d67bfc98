"""``RateLimiter`` of ``contentstack_personalize._http`` at fractional rates (the rest of the HTTP
core is tested in test_http_core.py)."""

from __future__ import annotations

import pytest

from contentstack_personalize._http import RateLimiter


@pytest.mark.parametrize(
    ("rate", "n", "seconds"), [(0.5, 3, 4.0), (1.5, 4, 2.0), (2.5, 6, 1.6), (10, 25, 2.0)]
)
def test_fractional_rate_limits(rate: float, n: int, seconds: float) -> None:
    now = [0.0]
    limiter = RateLimiter(rate, 1.0, margin=0.0, clock=lambda: now[0])
    starts = [limiter.reserve() for _ in range(n)]
    # the long-run rate is exactly `rate`: the n-th start is no earlier than (n - burst) / rate
    assert starts[-1] == pytest.approx(seconds)
    assert starts == sorted(starts)
    burst = max(1, int(rate))
    assert starts[:burst] == [0.0] * burst
