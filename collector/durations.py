"""The one duration grammar of kubeinv: ``90s``, ``15m``, ``1h30m``, ``500ms``, ``2d``, ``2w``.

Used by the settings (``schedule.interval``) and by ``kubeinv report --since``. Pure: no I/O.
"""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | float | int, *, bare_seconds: bool = True) -> timedelta:
    """``15m``, ``1h30m``, ``90s``, ``500ms``, ``2d``, ``2w``, or (with ``bare_seconds``) a plain
    number of seconds. Raises ValueError saying what is expected."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not bare_seconds:
            raise ValueError(f"{text!r} is not a duration; use e.g. 90s, 15m, 1h30m or 7d")
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        if not raw:
            raise ValueError("empty duration")
        try:
            seconds = float(raw)
        except ValueError:
            seconds = _sum_of_parts(raw, text)
        else:
            if not bare_seconds:
                raise ValueError(f"{text!r} is not a duration; use e.g. 90s, 15m, 1h30m or 7d")
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be positive")
    return timedelta(seconds=seconds)


_ZERO = re.compile(r"0+(?:\.0*)?(?:ms|s|m|h|d|w)?")


def is_zero_duration(text: str | float | int) -> bool:
    """``0``, ``0s``, ``0.0d`` and the like: the value settings use for "none" or "at once"."""
    if isinstance(text, bool):
        return False
    if isinstance(text, int | float):
        return text == 0
    return _ZERO.fullmatch(str(text).strip().lower()) is not None


def _sum_of_parts(raw: str, text: object) -> float:
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(raw) or pos == 0:
        raise ValueError(
            f"{text!r} is not a duration; use e.g. 90s, 15m, 1h30m or a number of seconds"
        )
    return seconds
