"""Parsing of user-facing quantities: durations (``"45min"``) and sizes."""

from __future__ import annotations

import re

from roadnet.exceptions import RoadnetError

__all__ = ["DurationError", "parse_duration"]


class DurationError(RoadnetError, ValueError):
    """A duration string could not be parsed."""


_UNITS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)")


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration: ``90``, ``"90s"``, ``"45min"``, ``"1h30m"``, ``"1.5 h"``.

    A bare number is seconds. Raises :class:`DurationError` naming the text otherwise.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().lower()
        pos, value, parts = 0, 0.0, 0
        while pos < len(s):
            m = _PART.match(s, pos)
            if not m or m.group(2) not in _UNITS:
                raise DurationError(
                    f"cannot read duration {text!r}: use e.g. 90, 90s, 45min, 1h30m"
                )
            value += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
            parts += 1
            while pos < len(s) and s[pos] == " ":
                pos += 1
        if parts == 0:
            raise DurationError(f"cannot read duration {text!r}: use e.g. 90, 90s, 45min, 1h30m")
    if not value > 0 or value != value or value == float("inf"):
        raise DurationError(f"duration must be a positive finite time, got {text!r}")
    return value
