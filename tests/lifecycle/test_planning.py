"""Renewal planning as pure functions: two thirds, half for short lives, jitter, ARI, backoff."""

from __future__ import annotations

import datetime as dt
import statistics

import pytest

from certfleet.errors import InvalidInput
from certfleet.lifecycle.planning import (
    JITTER_FRACTION,
    RenewalWindow,
    backoff,
    jitter_unit,
    parse_duration,
    renewal_time,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _fraction(lifetime: dt.timedelta, serial: str) -> float:
    return (renewal_time(T0, T0 + lifetime, serial) - T0) / lifetime


@pytest.mark.parametrize(
    ("lifetime", "centre"),
    [(90 * DAY, 2 / 3), (398 * DAY, 2 / 3), (10 * DAY, 2 / 3), (9 * DAY, 1 / 2), (DAY, 1 / 2)],
)
def test_renewal_falls_at_two_thirds_or_half_within_the_jitter(lifetime: dt.timedelta, centre: float) -> None:
    fractions = [_fraction(lifetime, format(serial, "x")) for serial in range(1, 2001)]
    assert all(centre - JITTER_FRACTION <= f <= centre + JITTER_FRACTION for f in fractions)
    # Spread over the whole band, centred: not a constant offset.
    assert max(fractions) - min(fractions) > 1.8 * JITTER_FRACTION
    assert abs(statistics.mean(fractions) - centre) < JITTER_FRACTION / 10


def test_jitter_is_a_fixed_function_of_the_serial() -> None:
    first = renewal_time(T0, T0 + 90 * DAY, "ab12")
    assert renewal_time(T0, T0 + 90 * DAY, "AB12") == first  # normalised case
    assert renewal_time(T0, T0 + 90 * DAY, "ab13") != first
    assert 0 <= jitter_unit("ab12") < 1


def test_a_batch_issued_together_spreads_over_days() -> None:
    times = sorted(renewal_time(T0, T0 + 90 * DAY, format(s, "x")) for s in range(500))
    busiest_hour = max(sum(1 for t in times if h <= t < h + dt.timedelta(hours=1)) for h in times)
    assert times[-1] - times[0] > 8 * DAY
    assert busiest_hour < 25  # 500 renewals never land in one burst


def test_an_ari_window_wins_and_is_sampled_inside() -> None:
    window = RenewalWindow(T0 + 5 * DAY, T0 + 6 * DAY)
    times = [renewal_time(T0, T0 + 90 * DAY, format(s, "x"), window) for s in range(300)]
    assert all(window.start <= t < window.end for t in times)
    assert max(times) - min(times) > dt.timedelta(hours=20)


def test_a_window_in_the_past_means_renew_now() -> None:
    past = RenewalWindow(T0 - 2 * DAY, T0 - DAY)
    assert renewal_time(T0, T0 + 90 * DAY, "1", past) < T0


@pytest.mark.parametrize(
    ("start", "end"),
    [(T0, T0), (T0 + DAY, T0), (T0.replace(tzinfo=None), T0 + DAY)],
)
def test_a_bad_window_is_refused(start: dt.datetime, end: dt.datetime) -> None:
    with pytest.raises(InvalidInput):
        RenewalWindow(start, end)


def test_backoff_is_one_ten_hundred_minutes_then_daily() -> None:
    assert [backoff(n) for n in range(1, 7)] == [
        dt.timedelta(minutes=1),
        dt.timedelta(minutes=10),
        dt.timedelta(minutes=100),
        DAY,
        DAY,
        DAY,
    ]
    with pytest.raises(ValueError, match="first failure"):
        backoff(0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        (" 3 d ", 259200),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "d", "-1d", "1y", "1.5h", "3650000d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)
