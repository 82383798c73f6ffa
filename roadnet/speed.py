"""Speed profiles and OSM ``maxspeed`` parsing: how road segments become travel times.

A :class:`SpeedProfile` gives every road segment a car speed in km/h. The speed of a segment is
its signed limit (its ``maxspeed`` tag, parsed by :func:`parse_maxspeed`, times
:attr:`SpeedProfile.maxspeed_factor`) when the tag holds a usable value, otherwise the speed of
its OSM ``highway`` class. Travel time is ``length / speed``, never less than
:data:`MIN_TRAVEL_SECONDS`.

Default class speeds
--------------------
Free-flow car speeds in km/h, below the usual legal limits because a segment's average speed
includes curves, junctions and merging (compare OSRM's car profile and the implicit limits of
the OSM wiki). Links (ramps, slip roads) are slower than their class: they are short, curved and
end at a junction.

==================  =====  ==================================================================
highway             km/h   why
==================  =====  ==================================================================
``motorway``        110    limits are 100-130 in Europe; traffic and merging lower the mean
``motorway_link``    70    ramps: signed 60-80, tight curves at both ends
``trunk``            90    expressways and main national roads, 90-110 limits
``trunk_link``       60
``primary``          65    main roads through towns (50) and between them (80-100)
``primary_link``     50
``secondary``        55    as primary, with more junctions and built-up stretches
``secondary_link``   45
``tertiary``         45    local connectors, mostly inside or near built-up areas
``tertiary_link``    40
``unclassified``     40    minor rural roads: narrow, often unmarked
``road``             40    class not yet known to mappers; treated like ``unclassified``
``residential``      30    30 km/h zones are common; parked cars, crossings
``busway``           30    drivable only by buses; urban
``service``          20    access roads, car parks, alleys
``track``            15    agricultural and forest tracks, often unpaved
``living_street``    10    legal walking pace to 20 km/h depending on the country
==================  =====  ==================================================================

A class absent from the table gets :data:`FALLBACK_SPEED_KMH` (30 km/h, a residential street).
A segment tagged with several classes (``"unclassified;tertiary"`` from pyrosm, a list from
osmnx after simplification) takes the fastest class it lists.

Parsing ``maxspeed``
--------------------
:func:`parse_maxspeed` understands what OpenStreetMap holds
(https://wiki.openstreetmap.org/wiki/Key:maxspeed):

- numbers in km/h (``"50"``, ``"50.5"``), with a unit (``"50 mph"``, ``"30 knots"``,
  ``"60 km/h"``), possibly followed by an annotation (``"50 (signed)"``, ``"50 @ (22:00-06:00)"``);
- implicit limits ``"CC:zone"`` (``"DE:urban"``, ``"GB:nsl_single"``), read from
  :data:`IMPLICIT_MAXSPEEDS_KMH`; zones ``"zone30"``, ``"DE:zone:30"``; ``"walk"`` (6 km/h);
- several values in one tag (``"50;40"``, ``"50|40"``, ``"50, 40"``, a Python list from
  osmnx): per-lane, per-direction or time-conditional limits. The **lowest** usable value is
  taken, a conservative estimate: the segment is never assumed faster than its slowest signed
  lane or period. (osmnx averages them instead.)

Values that state on purpose that no number applies (``"none"``, ``"signals"``, ``"variable"``,
``"implicit"``, ``"unposted"``, ``"DE:motorway"``) give ``None``, so the class speed applies.
Unusable values (``"0"``, negative, above 300 km/h, ``"unknown"``, ``"?"``, unknown codes)
also give ``None``; :meth:`SpeedProfile.edge_speeds` counts them apart, as garbage.

Example
-------
>>> profile = SpeedProfile.default()
>>> speeds, stats = profile.edge_speeds(["residential", "primary"], [None, "50 mph"])
>>> speeds.round(2).tolist(), stats.n_maxspeed_used
([30.0, 80.47], 1)
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from roadnet.exceptions import SpeedProfileError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_SPEEDS_KMH",
    "FALLBACK_SPEED_KMH",
    "IMPLICIT_MAXSPEEDS_KMH",
    "MAX_SPEED_KMH",
    "MIN_TRAVEL_SECONDS",
    "SpeedProfile",
    "SpeedStats",
    "parse_maxspeed",
]

logger = logging.getLogger(__name__)

#: Free-flow car speed (km/h) per OSM ``highway`` class; see the module docstring.
DEFAULT_SPEEDS_KMH: Mapping[str, float] = MappingProxyType(
    {
        "motorway": 110.0,
        "motorway_link": 70.0,
        "trunk": 90.0,
        "trunk_link": 60.0,
        "primary": 65.0,
        "primary_link": 50.0,
        "secondary": 55.0,
        "secondary_link": 45.0,
        "tertiary": 45.0,
        "tertiary_link": 40.0,
        "unclassified": 40.0,
        "road": 40.0,
        "residential": 30.0,
        "busway": 30.0,
        "service": 20.0,
        "track": 15.0,
        "living_street": 10.0,
    }
)

#: Speed (km/h) of a segment whose ``highway`` class is missing or not in the profile.
FALLBACK_SPEED_KMH: float = 30.0

#: Lower bound of a segment's travel time: a zero-length segment still costs this much.
MIN_TRAVEL_SECONDS: float = 0.001

#: Upper bound (km/h) of a profile speed and of a parsed ``maxspeed``; above it is a data error.
MAX_SPEED_KMH: float = 300.0

# A parsed maxspeed below this (km/h) is a data error, not a limit ("0", "0.1").
_MIN_MAXSPEED_KMH = 1.0
_MAX_FACTOR = 2.0
_WALK_KMH = 6.0
_MPH = 1.609344
_KNOT = 1.852

#: Implicit speed limits (km/h) for ``maxspeed="CC:zone"`` values, after the table
#: "Implicit max speed values" of https://wiki.openstreetmap.org/wiki/Key:maxspeed (and its
#: companion page https://wiki.openstreetmap.org/wiki/Default_speed_limits), limits for cars.
#: ``None`` means the code is valid and states that no general limit applies (German
#: motorways): the class speed is used. Zones such as ``"DE:zone30"`` and ``"walk"`` are
#: parsed by rule, not listed here. Where the national rule changed, the current one is used
#: (FR:rural 80 since 2018, NL:motorway 100 by day since 2020, ES:trunk 90 since 2019).
IMPLICIT_MAXSPEEDS_KMH: Mapping[str, float | None] = MappingProxyType(
    {
        # Andorra: Codi de circulació (not in the wiki table).
        "AD:urban": 50.0,
        "AD:rural": 90.0,
        "AR:urban": 40.0,
        "AR:urban:primary": 60.0,
        "AR:urban:secondary": 60.0,
        "AR:rural": 110.0,
        "AT:urban": 50.0,
        "AT:rural": 100.0,
        "AT:trunk": 100.0,
        "AT:motorway": 130.0,
        "AT:bicycle_road": 30.0,
        "AT:living_street": _WALK_KMH,
        # Belgium: the rural limit is regional (Flanders and Brussels 70, Wallonia 90), so a
        # bare "BE:rural" is left out and counted as unusable.
        "BE:urban": 50.0,
        "BE:trunk": 120.0,
        "BE:motorway": 120.0,
        "BE:living_street": 20.0,
        "BE:cyclestreet": 30.0,
        "BE-BRU:urban": 30.0,
        "BE-BRU:rural": 70.0,
        "BE-VLG:urban": 50.0,
        "BE-VLG:rural": 70.0,
        "BE-WAL:urban": 50.0,
        "BE-WAL:rural": 90.0,
        "BG:urban": 50.0,
        "BG:rural": 90.0,
        "BG:trunk": 120.0,
        "BG:motorway": 140.0,
        "BG:living_street": 20.0,
        "BY:urban": 60.0,
        "BY:rural": 90.0,
        "BY:motorway": 110.0,
        "BY:living_street": 20.0,
        "CH:urban": 50.0,
        "CH:rural": 80.0,
        "CH:trunk": 100.0,
        "CH:motorway": 120.0,
        "CY:urban": 50.0,
        "CY:rural": 80.0,
        "CY:motorway": 100.0,
        "CZ:urban": 50.0,
        "CZ:rural": 90.0,
        "CZ:trunk": 110.0,
        "CZ:motorway": 130.0,
        "CZ:urban_trunk": 80.0,
        "CZ:urban_motorway": 80.0,
        "CZ:living_street": 20.0,
        "CZ:pedestrian_zone": 20.0,
        "DE:urban": 50.0,
        "DE:rural": 100.0,
        "DE:motorway": None,  # no general limit (130 is only advisory)
        "DE:living_street": _WALK_KMH,  # Schrittgeschwindigkeit
        "DE:bicycle_road": 30.0,
        "DK:urban": 50.0,
        "DK:rural": 80.0,
        "DK:motorway": 130.0,
        "EE:urban": 50.0,
        "EE:rural": 90.0,
        "ES:urban": 50.0,
        "ES:rural": 90.0,
        "ES:trunk": 90.0,
        "ES:motorway": 120.0,
        "ES:living_street": 20.0,
        "FI:urban": 50.0,
        "FI:rural": 80.0,
        "FI:trunk": 100.0,
        "FI:motorway": 120.0,
        "FR:urban": 50.0,
        "FR:rural": 80.0,
        "FR:trunk": 110.0,
        "FR:motorway": 130.0,
        "FR:living_street": 20.0,
        "GB:nsl_restricted": 30 * _MPH,
        "GB:nsl_single": 60 * _MPH,
        "GB:nsl_dual": 70 * _MPH,
        "GB:motorway": 70 * _MPH,
        "GR:urban": 50.0,
        "GR:rural": 90.0,
        "GR:trunk": 110.0,
        "GR:motorway": 130.0,
        "HR:urban": 50.0,
        "HR:rural": 90.0,
        "HR:trunk": 110.0,
        "HR:motorway": 130.0,
        "HR:living_street": 10.0,
        "HU:urban": 50.0,
        "HU:rural": 90.0,
        "HU:trunk": 110.0,
        "HU:motorway": 130.0,
        "HU:living_street": 20.0,
        "IE:urban": 50.0,
        "IE:rural": 80.0,
        "IE:national": 100.0,
        "IE:motorway": 120.0,
        "IT:urban": 50.0,
        "IT:rural": 90.0,
        "IT:trunk": 110.0,
        "IT:motorway": 130.0,
        "JP:nsl": 60.0,
        "JP:express": 100.0,
        "LT:urban": 50.0,
        "LT:rural": 90.0,
        "LT:motorway": 130.0,
        "LU:urban": 50.0,
        "LU:rural": 90.0,
        "LU:motorway": 130.0,
        "LV:urban": 50.0,
        "LV:rural": 90.0,
        "LV:living_street": 20.0,
        "MT:urban": 50.0,
        "MT:rural": 80.0,
        "NL:urban": 50.0,
        "NL:rural": 80.0,
        "NL:trunk": 100.0,
        "NL:motorway": 100.0,  # 06:00-19:00 since 2020; 130 at night where signed
        "NL:living_street": 15.0,
        "NO:urban": 50.0,
        "NO:rural": 80.0,
        "PL:urban": 50.0,
        "PL:rural": 90.0,
        "PL:expressway": 120.0,
        "PL:motorway": 140.0,
        "PL:living_street": 20.0,
        "PT:urban": 50.0,
        "PT:rural": 90.0,
        "PT:trunk": 100.0,
        "PT:motorway": 120.0,
        "RO:urban": 50.0,
        "RO:rural": 90.0,
        "RO:trunk": 100.0,
        "RO:motorway": 130.0,
        "RS:urban": 50.0,
        "RS:rural": 80.0,
        "RS:trunk": 100.0,
        "RS:motorway": 130.0,
        "RS:living_street": 10.0,
        "RU:urban": 60.0,
        "RU:rural": 90.0,
        "RU:motorway": 110.0,
        "RU:living_street": 20.0,
        "SE:urban": 50.0,
        "SE:rural": 70.0,
        "SI:urban": 50.0,
        "SI:rural": 90.0,
        "SI:trunk": 110.0,
        "SI:motorway": 130.0,
        "SK:urban": 50.0,
        "SK:rural": 90.0,
        "SK:trunk": 90.0,
        "SK:motorway": 130.0,
        "SK:motorway_urban": 90.0,
        "SK:living_street": 20.0,
        "TR:urban": 50.0,
        "TR:rural": 90.0,
        "TR:trunk": 110.0,
        "TR:motorway": 130.0,
        "TR:living_street": 20.0,
        "UA:urban": 50.0,
        "UA:rural": 90.0,
        "UA:trunk": 110.0,
        "UA:motorway": 130.0,
        "UA:living_street": 20.0,
        # "UK:" is the common misspelling of the ISO code GB.
        "UK:nsl_restricted": 30 * _MPH,
        "UK:nsl_single": 60 * _MPH,
        "UK:nsl_dual": 70 * _MPH,
        "UK:motorway": 70 * _MPH,
        "UZ:urban": 70.0,
        "UZ:rural": 100.0,
        "UZ:motorway": 110.0,
        "UZ:living_street": 30.0,
    }
)

# Values that say on purpose that no numeric limit applies: the class speed is used and the
# value is not counted as garbage.
_NO_NUMBER = frozenset({"none", "signals", "variable", "implicit", "unposted"})

_UNITS: Mapping[str, float] = {
    "km/h": 1.0,
    "kmh": 1.0,
    "kph": 1.0,
    "kmph": 1.0,
    "km": 1.0,
    "mph": _MPH,
    "mi/h": _MPH,
    "knots": _KNOT,
    "knot": _KNOT,
    "kts": _KNOT,
    "kt": _KNOT,
    "kn": _KNOT,
}
_UNIT_PATTERN = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
# A number, an optional unit, then nothing or an annotation that starts with punctuation
# ("50 km/h (signed)", "50 @ (Mo-Fr 07:00-19:00)"); "5O" or "50 foo" do not match.
_NUMBER_RE = re.compile(
    rf"(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>{_UNIT_PATTERN})?(?:\s*[(@\[#].*)?",
    re.IGNORECASE | re.ASCII | re.DOTALL,
)
# "50,5": a decimal comma (one decimal digit); "50,40" is a list of two values.
_DECIMAL_COMMA_RE = re.compile(rf"\d+,\d\s*(?:{_UNIT_PATTERN})?", re.IGNORECASE | re.ASCII)
_ZONE_RE = re.compile(
    r"(?:[a-z]{2}(?:-[a-z0-9]{1,3})?:)?zone:?\s*(?P<num>\d{1,3})", re.IGNORECASE | re.ASCII
)
_CODE_RE = re.compile(
    r"(?P<cc>[a-z]{2}(?:-[a-z0-9]{1,3})?):(?P<zone>\S+)", re.IGNORECASE | re.ASCII
)
_LIST_SPLIT_RE = re.compile(r"[;|]")
_MAX_LIST_DEPTH = 3

# Outcome of parsing one maxspeed value.
_USED, _MISSING, _GARBAGE = 0, 1, 2


def parse_maxspeed(value: Any) -> float | None:
    """Parse an OSM ``maxspeed`` value to km/h.

    Parameters
    ----------
    value
        A tag value as pyrosm or osmnx give it: a string, a number, a list of those (osmnx after
        simplification), ``None`` or NaN.

    Returns
    -------
    float or None
        The limit in km/h (before :attr:`SpeedProfile.maxspeed_factor`), or ``None`` when the
        value is absent, states that no numeric limit applies (``"none"``, ``"signals"``) or
        cannot be used (``"unknown"``, ``"0"``, above 300 km/h). Never raises. See the module
        docstring for the accepted forms; several values give the lowest usable one.

    Examples
    --------
    >>> parse_maxspeed("50"), parse_maxspeed("DE:rural"), parse_maxspeed("50;30")
    (50.0, 100.0, 30.0)
    >>> round(parse_maxspeed("30 mph"), 2), parse_maxspeed("none")
    (48.28, None)
    """
    return _classify_maxspeed(value)[0]


def _classify_maxspeed(value: Any, depth: int = 0) -> tuple[float | None, int]:
    """Parse ``value`` and say whether it was used, missing (or no number) or garbage."""
    try:
        if value is None:
            return None, _MISSING
        if isinstance(value, str):
            return _classify_text(value)
        if isinstance(value, bool | np.bool_):
            return None, _GARBAGE
        if isinstance(value, numbers.Real):
            number = float(value)
            if math.isnan(number):
                return None, _MISSING
            return _checked(number)
        if isinstance(value, list | tuple | np.ndarray):
            if depth >= _MAX_LIST_DEPTH:
                return None, _GARBAGE
            return _combine(_classify_maxspeed(v, depth + 1) for v in value)
        pd_ = sys.modules.get("pandas")  # pandas' missing values exist only once it is loaded
        if pd_ is not None and (value is pd_.NA or value is pd_.NaT):
            return None, _MISSING
    except Exception:  # a promise of the public API: never raise on odd input
        logger.debug("maxspeed value could not be inspected", exc_info=True)
    return None, _GARBAGE


def _checked(kmh: float) -> tuple[float | None, int]:
    if math.isfinite(kmh) and _MIN_MAXSPEED_KMH <= kmh <= MAX_SPEED_KMH:
        return kmh, _USED
    return None, _GARBAGE


def _combine(parts: Iterable[tuple[float | None, int]]) -> tuple[float | None, int]:
    """Several values: the lowest usable one; else garbage if any was garbage; else missing."""
    usable: list[float] = []
    garbage = False
    for kmh, kind in parts:
        if kmh is not None:
            usable.append(kmh)
        garbage = garbage or kind == _GARBAGE
    if usable:
        return min(usable), _USED
    return None, _GARBAGE if garbage else _MISSING


def _classify_text(text: str) -> tuple[float | None, int]:
    if _LIST_SPLIT_RE.search(text):
        return _combine(_classify_text(part) for part in _LIST_SPLIT_RE.split(text))
    text = text.strip()
    if not text:
        return None, _MISSING
    if "," in text:
        if _DECIMAL_COMMA_RE.fullmatch(text):
            text = text.replace(",", ".", 1)
        else:
            return _combine(_classify_text(part) for part in text.split(","))
    return _classify_single(text)


def _classify_single(text: str) -> tuple[float | None, int]:
    match = _NUMBER_RE.fullmatch(text)
    if match:
        unit = match["unit"]
        return _checked(float(match["num"]) * (_UNITS[unit.lower()] if unit else 1.0))
    lowered = text.lower()
    if lowered in _NO_NUMBER:
        return None, _MISSING
    if lowered == "walk":
        return _WALK_KMH, _USED
    match = _ZONE_RE.fullmatch(text)
    if match:
        return _checked(float(match["num"]))
    match = _CODE_RE.fullmatch(text)
    if match:
        zone = match["zone"].lower()
        if zone == "walk":
            return _WALK_KMH, _USED
        key = f"{match['cc'].upper()}:{zone}"
        if key in IMPLICIT_MAXSPEEDS_KMH:
            kmh = IMPLICIT_MAXSPEEDS_KMH[key]
            return (None, _MISSING) if kmh is None else (kmh, _USED)
    return None, _GARBAGE


@dataclass
class SpeedStats:
    """What :meth:`SpeedProfile.edge_speeds` made of the ``maxspeed`` values it read.

    ``n_maxspeed_used + n_maxspeed_missing + n_maxspeed_garbage == n_edges``, except that all
    three are 0 when the profile has ``use_maxspeed=False`` (the values are then not read).

    Attributes
    ----------
    n_edges
        Segments processed.
    n_maxspeed_used
        Segments whose speed comes from their parsed ``maxspeed``.
    n_maxspeed_missing
        Segments without a usable limit and nothing wrong with that: tag absent, empty, or a
        value that on purpose carries no number (``"none"``, ``"signals"``, ``"DE:motorway"``).
    n_maxspeed_garbage
        Segments whose ``maxspeed`` is present but unusable (``"unknown"``, ``"0"``, ``"999"``,
        an unknown implicit code); they get their class speed.
    garbage_examples
        Up to 10 distinct unusable values, in order of first appearance.
    n_highway_unknown
        Segments whose ``highway`` class is missing or absent from the profile, so that the
        fallback speed is their class speed (whether or not a maxspeed overrides it).
    """

    n_edges: int
    n_maxspeed_used: int
    n_maxspeed_missing: int
    n_maxspeed_garbage: int
    garbage_examples: list[str] = field(default_factory=list)
    n_highway_unknown: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The statistics as a JSON-serialisable dict (for logs and metadata)."""
        return asdict(self)


_RESERVED_KEYS = ("fallback", "use_maxspeed", "maxspeed_factor")


@dataclass(frozen=True)
class SpeedProfile:
    """Car speeds per OSM ``highway`` class and how to use the ``maxspeed`` tag.

    Build one with :meth:`default`, :meth:`from_mapping`, :meth:`from_file` or
    :meth:`with_overrides`. Every speed is validated: a finite number of km/h in (0, 300],
    otherwise :class:`~roadnet.exceptions.SpeedProfileError`. Class names are free-form
    (users may add classes); they are stored stripped and lower-cased, sorted.

    Attributes
    ----------
    speeds_kmh
        Speed (km/h) per ``highway`` class (read-only).
    fallback_kmh
        Speed (km/h) of a class absent from ``speeds_kmh``, or of a segment without class.
    use_maxspeed
        Use a segment's parsed ``maxspeed`` where usable; when False, class speeds only.
    maxspeed_factor
        Multiplies every parsed limit, in (0, 2]. A signed limit is a ceiling, not the speed
        driven: 0.9 gives realistic urban driving, 1.0 (default) takes limits at face value.
        Class speeds are not multiplied: they are already free-flow speeds.

    Examples
    --------
    >>> p = SpeedProfile.default().with_overrides(residential=25, maxspeed_factor=0.9)
    >>> p.class_speed("residential"), p.class_speed(["tertiary", "primary"])
    (25.0, 65.0)
    """

    speeds_kmh: Mapping[str, float]
    fallback_kmh: float
    use_maxspeed: bool = True
    maxspeed_factor: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.speeds_kmh, Mapping):
            raise SpeedProfileError(
                f"speeds_kmh must be a mapping of highway class -> km/h, "
                f"got {type(self.speeds_kmh).__name__}"
            )
        speeds: dict[str, float] = {}
        for key, value in self.speeds_kmh.items():
            name = _class_name(key)
            if name in speeds:
                raise SpeedProfileError(
                    f"speed profile names highway class {name!r} twice (keys differ only in "
                    f"case or spaces); give each class once"
                )
            speeds[name] = _check_speed(key, value)
        object.__setattr__(self, "speeds_kmh", MappingProxyType(dict(sorted(speeds.items()))))
        object.__setattr__(self, "fallback_kmh", _check_speed("fallback", self.fallback_kmh))
        object.__setattr__(self, "use_maxspeed", _check_bool("use_maxspeed", self.use_maxspeed))
        object.__setattr__(self, "maxspeed_factor", _check_factor(self.maxspeed_factor))

    def __hash__(self) -> int:
        return hash(
            (
                tuple(self.speeds_kmh.items()),
                self.fallback_kmh,
                self.use_maxspeed,
                self.maxspeed_factor,
            )
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # A mappingproxy cannot be pickled; rebuild from a plain dict (worker processes).
        return (
            type(self),
            (dict(self.speeds_kmh), self.fallback_kmh, self.use_maxspeed, self.maxspeed_factor),
        )

    # -- constructors ---------------------------------------------------------------------

    @classmethod
    def default(cls) -> SpeedProfile:
        """The documented profile: :data:`DEFAULT_SPEEDS_KMH`, :data:`FALLBACK_SPEED_KMH`."""
        return cls(DEFAULT_SPEEDS_KMH, FALLBACK_SPEED_KMH)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> SpeedProfile:
        """Build a profile from a flat mapping, merged over the defaults.

        Parameters
        ----------
        m
            Highway class -> km/h (classes absent from the defaults are added), plus the
            optional keys ``"fallback"`` (km/h), ``"use_maxspeed"`` (bool) and
            ``"maxspeed_factor"`` (number in (0, 2]). :meth:`to_dict` gives this form.

        Returns
        -------
        SpeedProfile

        Raises
        ------
        SpeedProfileError
            If ``m`` is not a mapping, a key is not a non-empty string, or a value is invalid;
            the message names the key and the value.

        Examples
        --------
        >>> SpeedProfile.from_mapping({"residential": 25, "fallback": 20}).fallback_kmh
        20.0
        """
        return cls.default().with_overrides(m)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SpeedProfile:
        """Read a profile from a ``.json`` or ``.toml`` file of the :meth:`from_mapping` form.

        A TOML profile reads like::

            fallback = 25
            maxspeed_factor = 0.9
            residential = 25
            track = 10

        Parameters
        ----------
        path
            The file; its suffix (``.json`` or ``.toml``) selects the format.

        Returns
        -------
        SpeedProfile

        Raises
        ------
        SpeedProfileError
            If the file is missing or unreadable, is not valid JSON/TOML, does not hold a
            mapping at its top level, or holds an invalid value; the message names the file.
        """
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in {".json", ".toml"}:
            raise SpeedProfileError(
                f"speed profile file {str(p)!r} must end in .json or .toml, got {p.suffix!r}"
            )
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise SpeedProfileError(
                f"cannot read speed profile file {str(p)!r}: {exc.strerror or exc}"
            ) from exc
        try:
            data = json.loads(raw) if suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # JSON, TOML and Unicode decode errors
            raise SpeedProfileError(
                f"speed profile file {str(p)!r} is not valid {suffix[1:].upper()}: {exc}"
            ) from exc
        if not isinstance(data, Mapping):
            raise SpeedProfileError(
                f"speed profile file {str(p)!r} must hold a mapping of highway class -> km/h "
                f"at its top level, got {type(data).__name__}"
            )
        try:
            return cls.from_mapping(data)
        except SpeedProfileError as exc:
            raise SpeedProfileError(f"speed profile file {str(p)!r}: {exc}") from exc

    def with_overrides(
        self, mapping: Mapping[str, Any] | None = None, /, **kmh: Any
    ) -> SpeedProfile:
        """A copy of this profile with some values replaced or added.

        Parameters
        ----------
        mapping
            Keys as in :meth:`from_mapping` (classes, ``"fallback"``, ``"use_maxspeed"``,
            ``"maxspeed_factor"``).
        **kmh
            The same, as keywords; they win over ``mapping``.

        Returns
        -------
        SpeedProfile

        Raises
        ------
        SpeedProfileError
            If a key or value is invalid.
        """
        if mapping is not None and not isinstance(mapping, Mapping):
            raise SpeedProfileError(
                f"a speed profile must be given as a mapping of highway class -> km/h, "
                f"got {type(mapping).__name__}"
            )
        changes = {**(mapping or {}), **kmh}
        speeds = dict(self.speeds_kmh)
        fallback: Any = self.fallback_kmh
        use_maxspeed: Any = self.use_maxspeed
        factor: Any = self.maxspeed_factor
        seen: dict[str, str] = {}
        for key, value in changes.items():
            name = _class_name(key)
            if name in seen:
                raise SpeedProfileError(
                    f"speed profile keys {seen[name]!r} and {key!r} name the same entry; "
                    f"give it once"
                )
            seen[name] = key
            if name == "fallback":
                fallback = value
            elif name == "use_maxspeed":
                use_maxspeed = value
            elif name == "maxspeed_factor":
                factor = value
            else:
                speeds[name] = _check_speed(key, value)
        return type(self)(speeds, fallback, use_maxspeed, factor)

    # -- queries --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The profile as a flat, sorted, JSON-serialisable dict.

        Canonical (equal profiles give equal dicts), so fit for metadata and cache keys;
        :meth:`from_mapping` reads it back to an equal profile whenever the profile holds
        every default class (true of all profiles built by this class's constructors).
        """
        out: dict[str, Any] = dict(self.speeds_kmh)
        out["fallback"] = self.fallback_kmh
        out["use_maxspeed"] = self.use_maxspeed
        out["maxspeed_factor"] = self.maxspeed_factor
        return dict(sorted(out.items()))

    def class_speed(self, highway: str | Sequence[str] | None) -> float:
        """Speed (km/h) of a ``highway`` class.

        Parameters
        ----------
        highway
            A class (``"primary"``), several (``"unclassified;tertiary"`` or a list), or
            ``None``.

        Returns
        -------
        float
            The fastest listed class known to the profile, else :attr:`fallback_kmh`.
        """
        kmh = self._known_class_speed(highway)
        return self.fallback_kmh if kmh is None else kmh

    def _known_class_speed(self, highway: Any, depth: int = 0) -> float | None:
        if isinstance(highway, str):
            names: Iterable[Any] = highway.split(";") if ";" in highway else (highway,)
            speeds = [self.speeds_kmh.get(n.strip().lower()) for n in names]
        elif isinstance(highway, list | tuple | np.ndarray) and depth < _MAX_LIST_DEPTH:
            speeds = [self._known_class_speed(h, depth + 1) for h in highway]
        else:
            return None
        known = [s for s in speeds if s is not None]
        return max(known) if known else None

    def edge_speeds(
        self,
        highway: Sequence[Any] | np.ndarray | pd.Series,
        maxspeed: Any = None,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, SpeedStats]:
        """Speed (km/h) of every segment from its ``highway`` and ``maxspeed`` tags.

        Each distinct value is parsed once, so ~300k segments take well under a second.

        Parameters
        ----------
        highway
            One ``highway`` value per segment: a string, a list of strings, ``None``/NaN.
        maxspeed
            One ``maxspeed`` value per segment (string, number, list, ``None``/NaN), same
            length as ``highway``; ``None`` means no segment has one.
        weights
            Optional number of segments each value stands for (a reader that stores each
            distinct tag combination once passes how many segments carry it). The speeds stay
            one per value; the counts in ``stats`` are weighted, and a value of weight 0 gives
            no garbage example. ``None`` means 1 each.

        Returns
        -------
        speeds : numpy.ndarray
            float64 km/h per segment, finite and > 0: the parsed ``maxspeed`` times
            :attr:`maxspeed_factor` where usable (and :attr:`use_maxspeed`), else the class
            speed (:meth:`class_speed`).
        stats : SpeedStats
            Counts of used, missing and unusable ``maxspeed`` values.

        Raises
        ------
        ValueError
            If ``highway`` and ``maxspeed`` differ in length or are not one-dimensional.
        """
        hw = _object_array(highway, "highway")
        if weights is None:
            w = np.ones(len(hw), dtype=np.int64)
        else:
            w = np.asarray(weights, dtype=np.int64)
            if w.shape != (len(hw),) or (w < 0).any():
                raise ValueError(
                    f"weights must hold one count >= 0 per value ({len(hw)}), got shape {w.shape}"
                )
        n = int(w.sum())
        codes, uniques = _factorize(hw)
        class_kmh = np.empty(len(uniques) + 1)  # the last slot serves code -1 (missing)
        class_known = np.zeros(len(uniques) + 1, dtype=bool)
        for j, value in enumerate(uniques):
            kmh = self._known_class_speed(value)
            class_known[j] = kmh is not None
            class_kmh[j] = self.fallback_kmh if kmh is None else kmh
        class_kmh[-1] = self.fallback_kmh
        speeds = class_kmh[codes]
        n_unknown = int(n - w[class_known[codes]].sum())

        counts = np.zeros(3, dtype=np.int64)
        examples: list[str] = []
        if self.use_maxspeed and maxspeed is not None:
            ms = _object_array(maxspeed, "maxspeed")
            if len(ms) != len(hw):
                raise ValueError(
                    f"highway and maxspeed must have one value per segment, got {len(hw)} highway "
                    f"and {len(ms)} maxspeed values"
                )
            ms_codes, ms_uniques = _factorize(ms)
            limit_kmh = np.full(len(ms_uniques) + 1, np.nan)
            kinds = np.full(len(ms_uniques) + 1, _MISSING, dtype=np.int8)
            weighed = np.zeros(len(ms_uniques) + 1, dtype=np.int64)
            np.add.at(weighed, ms_codes, w)
            for j, value in enumerate(ms_uniques):
                kmh, kind = _classify_maxspeed(value)
                kinds[j] = kind
                if kmh is not None:
                    limit_kmh[j] = kmh
                elif kind == _GARBAGE and len(examples) < 10 and weighed[j] > 0:
                    examples.append(_example_text(value))
            edge_kinds = kinds[ms_codes]
            used = edge_kinds == _USED
            speeds = np.where(used, limit_kmh[ms_codes] * self.maxspeed_factor, speeds)
            counts = np.bincount(edge_kinds, weights=w, minlength=3).astype(np.int64)
        elif self.use_maxspeed:
            counts[_MISSING] = n

        stats = SpeedStats(
            n_edges=n,
            n_maxspeed_used=int(counts[_USED]),
            n_maxspeed_missing=int(counts[_MISSING]),
            n_maxspeed_garbage=int(counts[_GARBAGE]),
            garbage_examples=examples,
            n_highway_unknown=n_unknown,
        )
        logger.debug("edge speeds: %s", stats)
        if stats.n_maxspeed_garbage:
            logger.info(
                "%d of %d segments have an unusable maxspeed (class speed used), e.g. %s",
                stats.n_maxspeed_garbage,
                n,
                ", ".join(examples[:5]),
            )
        return speeds.astype(np.float64, copy=False), stats


# -- helpers ------------------------------------------------------------------------------


def _class_name(key: Any) -> str:
    if not isinstance(key, str) or not key.strip():
        raise SpeedProfileError(
            f"speed profile keys must be non-empty highway class names or one of "
            f"{', '.join(_RESERVED_KEYS)}; got {key!r}"
        )
    return key.strip().lower()


def _check_speed(key: str, value: Any) -> float:
    kmh: float | None = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        try:
            kmh = float(value)
        except (OverflowError, ValueError, TypeError):
            kmh = None
    if kmh is None or not (math.isfinite(kmh) and 0 < kmh <= MAX_SPEED_KMH):
        raise SpeedProfileError(
            f"speed for {key!r} must be a finite number of km/h in (0, {MAX_SPEED_KMH:g}], "
            f"got {value!r}"
        )
    return kmh


def _check_factor(value: Any) -> float:
    factor: float | None = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        try:
            factor = float(value)
        except (OverflowError, ValueError, TypeError):
            factor = None
    if factor is None or not (math.isfinite(factor) and 0 < factor <= _MAX_FACTOR):
        raise SpeedProfileError(
            f"'maxspeed_factor' must be a finite number in (0, {_MAX_FACTOR:g}], got {value!r}"
        )
    return factor


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise SpeedProfileError(f"{key!r} must be true or false, got {value!r}")
    return bool(value)


def _object_array(values: Any, name: str) -> np.ndarray:
    """One-dimensional object array of ``values``, keeping lists as elements."""
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must hold one value per segment, not be a single string")
    pd_ = sys.modules.get("pandas")  # a Series or Index exists only once pandas is loaded
    if pd_ is not None and isinstance(values, pd_.Series | pd_.Index):
        return values.to_numpy(dtype=object)
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
        return values.astype(object, copy=False)
    items = list(values)
    return np.fromiter(items, dtype=object, count=len(items))


#: Up to this many values, :func:`_factorize` codes strings and ``None`` in Python (as
#: ``pandas.factorize`` does: codes by first appearance, -1 for ``None``) instead of importing
#: pandas, which the streaming PBF build does not otherwise need (~75 MB).
_SMALL_FACTORIZE = 100_000


def _factorize_strings(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``pandas.factorize`` of ``values`` when every value is a ``str`` or ``None``, else
    ``None``: codes in order of first appearance, -1 for ``None``."""
    index: dict[str, int] = {}
    codes = np.empty(values.shape[0], dtype=np.intp)
    for i, value in enumerate(values.tolist()):
        if value is None:
            codes[i] = -1
        elif type(value) is str:
            codes[i] = index.setdefault(value, len(index))
        else:
            return None
    uniques = np.empty(len(index), dtype=object)
    uniques[:] = list(index)
    return codes, uniques


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (-1 for None/NaN) and distinct values; unhashable values become tuples."""
    if values.shape[0] <= _SMALL_FACTORIZE:
        small = _factorize_strings(values)
        if small is not None:
            return small
    import pandas as pd

    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except (TypeError, ValueError):  # lists (osmnx) are unhashable
        hashable = np.fromiter((_hashable(v) for v in values), dtype=object, count=len(values))
        codes, uniques = pd.factorize(hashable, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.intp), np.asarray(uniques, dtype=object)


@dataclass(frozen=True)
class _Opaque:
    """Stands for a value that cannot be hashed nor parsed (it counts as garbage)."""

    text: str


def _hashable(value: Any, depth: int = 0) -> Any:
    try:
        hash(value)
    except Exception:
        if isinstance(value, list | tuple | np.ndarray) and depth < _MAX_LIST_DEPTH:
            return tuple(_hashable(v, depth + 1) for v in value)
        return _Opaque(_example_text(value))
    return value


def _example_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, _Opaque):
        return value.text
    try:
        return repr(list(value) if isinstance(value, tuple) else value)
    except Exception:
        return f"<{type(value).__name__}>"
