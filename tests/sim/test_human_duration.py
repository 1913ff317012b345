"""The simulator's AGE column: apimachinery's duration.HumanDuration, as kubectl prints it."""

from __future__ import annotations

import pytest

from collector.sim.nodes import human_duration

DAY = 86400


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-2.0, "<invalid>"),  # two seconds in the future: a wrong clock
        (-1.9, "0s"),  # less than two seconds ahead: clock skew, shown as now
        (-0.5, "0s"),
        (0, "0s"),
        (119.9, "119s"),
        (120, "2m"),
        (9 * 60 + 59, "9m59s"),
        (10 * 60, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (8 * 3600, "8h"),
        (2 * DAY, "2d"),
        (2 * DAY + 3 * 3600, "2d3h"),
        (8 * DAY, "8d"),
        (2 * 365 * DAY + 4 * DAY, "2y4d"),
        (8 * 365 * DAY + 40 * DAY, "8y"),
    ],
)
def test_ages_read_as_kubectl_prints_them(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown
