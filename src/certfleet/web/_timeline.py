"""The expiry timeline: active certificates expiring per week over the next 26 weeks, stacked
by team or issuer, drawn as server-side SVG whose bars link to the matching inventory filter.
No chart library and no build step: the geometry is a few lines of arithmetic here."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from certfleet.web._ports import DashboardQueries
from certfleet.web._render import url_with

__all__ = ["WEEKS", "Chart", "build_chart", "week_start"]

WEEKS = 26
MAX_GROUPS = 7  # the largest groups keep a colour; the rest are stacked as "other"
# Colour-blind safe (Okabe-Ito), each at least 3:1 against the white page (WCAG 1.4.11).
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#7a6a00", "#56b4e9", "#8c564b", "#666666")
BAR_WIDTH = 24
GAP = 8
HEIGHT = 200
LEFT = 40
TOP = 10
BOTTOM = 40


def week_start(now: dt.datetime) -> dt.datetime:
    """Monday 00:00 UTC of the week holding ``now`` (weeks are ISO 8601 weeks)."""
    day = now.astimezone(dt.UTC).date()
    monday = day - dt.timedelta(days=day.weekday())
    return dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Segment:
    group: str
    label: str
    count: int
    x: int
    y: float
    height: float
    colour: str
    href: str


@dataclass(frozen=True)
class Week:
    index: int
    start: dt.datetime
    total: int
    x: int
    href: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Chart:
    group_by: str
    weeks: tuple[Week, ...]
    legend: tuple[tuple[str, str], ...]  # (label, colour)
    maximum: int
    width: int
    height: int
    ticks: tuple[tuple[int, float], ...]  # (value, y)

    @property
    def total(self) -> int:
        return sum(w.total for w in self.weeks)


def _label(group: str, group_by: str) -> str:
    if not group:
        return "(no team)" if group_by == "team" else "(unknown issuer)"
    if group_by == "issuer" and "CN=" in group:  # show the CA's common name, not the whole DN
        return group.split("CN=", 1)[1].split(",", 1)[0]
    return group


def build_chart(queries: DashboardQueries, now: dt.datetime, team: str | None, group_by: str) -> Chart:
    start = week_start(now)
    rows = queries.timeline(start, WEEKS, now, team, group_by)
    totals: dict[str, int] = defaultdict(int)
    for _, group, count in rows:
        totals[group] += count
    top = [g for g, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_GROUPS]]
    colours = {g: PALETTE[i] for i, g in enumerate(top)}
    per_week: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for index, group, count in rows:
        per_week[index][group if group in colours else "\x00other"] += count
    maximum = max((sum(v.values()) for v in per_week.values()), default=0)
    scale = HEIGHT / maximum if maximum else 0.0
    weeks: list[Week] = []
    for index in range(WEEKS):
        begin = start + dt.timedelta(weeks=index)
        window = {
            "status": "active",
            "expires_after": begin.date().isoformat(),
            "expires_before": (begin + dt.timedelta(weeks=1)).date().isoformat(),
        }
        x = LEFT + index * (BAR_WIDTH + GAP)
        y = float(TOP + HEIGHT)
        segments: list[Segment] = []
        groups = per_week.get(index, {})
        for group in [*top, "\x00other"]:
            count = groups.get(group, 0)
            if not count:
                continue
            h = count * scale
            y -= h
            other = group == "\x00other"
            narrowed = dict(window)
            if not other and group:  # a filter cannot say "no team": those link to the whole week
                narrowed[group_by] = group
            segments.append(
                Segment(
                    group=group,
                    label="other" if other else _label(group, group_by),
                    count=count,
                    x=x,
                    y=y,
                    height=h,
                    colour=PALETTE[-1] if other else colours[group],
                    href=url_with("/certificates", narrowed),
                )
            )
        weeks.append(
            Week(index, begin, sum(groups.values()), x, url_with("/certificates", window), tuple(segments))
        )
    legend = tuple((_label(g, group_by), colours[g]) for g in top)
    if any("\x00other" in v for v in per_week.values()):
        legend += (("other", PALETTE[-1]),)
    ticks = tuple((v, TOP + HEIGHT - v * scale) for v in _ticks(maximum))
    return Chart(
        group_by,
        tuple(weeks),
        legend,
        maximum,
        LEFT + WEEKS * (BAR_WIDTH + GAP),
        TOP + HEIGHT + BOTTOM,
        ticks,
    )


def _ticks(maximum: int) -> list[int]:
    """Gridlines at 1, 2 or 5 times a power of ten, at most five above zero."""
    if maximum <= 0:
        return [0]
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power):
            if maximum / step <= 5:
                return list(range(0, maximum + 1, step))
        power *= 10
