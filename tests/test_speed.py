"""Tests of :mod:`roadnet.speed`: maxspeed parsing, speed profiles and edge speeds."""

from __future__ import annotations

import doctest
import json
import logging
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import roadnet.speed
from roadnet.exceptions import RoadnetError, SpeedProfileError
from roadnet.speed import (
    DEFAULT_SPEEDS_KMH,
    FALLBACK_SPEED_KMH,
    IMPLICIT_MAXSPEEDS_KMH,
    MIN_TRAVEL_SECONDS,
    SpeedProfile,
    SpeedStats,
    parse_maxspeed,
)

MPH = 1.609344
KNOT = 1.852
OSM_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm"


# -- parse_maxspeed -----------------------------------------------------------------------

MAXSPEED_TABLE: list[tuple[Any, float | None]] = [
    # plain numbers, km/h
    ("50", 50.0),
    ("50.5", 50.5),
    (" 50 ", 50.0),
    ("120", 120.0),
    ("5", 5.0),
    ("300", 300.0),
    ("50,5", 50.5),  # decimal comma
    # units
    ("50 mph", 50 * MPH),
    ("50mph", 50 * MPH),
    ("50 MPH", 50 * MPH),
    ("20 mph", 20 * MPH),
    ("30 knots", 30 * KNOT),
    ("30 kn", 30 * KNOT),
    ("10 knots", 10 * KNOT),
    ("60 km/h", 60.0),
    ("60 kmh", 60.0),
    ("60 kph", 60.0),
    ("60km/h", 60.0),
    # a number followed by an annotation
    ("50 km/h (signed)", 50.0),
    ("50 (signed)", 50.0),
    ("30 @ (Mo-Fr 07:00-19:00)", 30.0),
    # several values: the lowest usable one
    ("50;40", 40.0),
    ("50|40", 40.0),
    ("50, 40", 40.0),
    ("50,40", 40.0),
    ("50; 40", 40.0),  # Porto
    ("80; 50", 50.0),  # Porto
    ("60|60|40", 40.0),
    ("30 mph;40 mph", 30 * MPH),
    ("none;120", 120.0),
    ("50;unknown", 50.0),
    ("50;", 50.0),
    (["50", "40"], 40.0),  # osmnx list after simplification
    (["50", None], 50.0),
    (["30 mph", "60"], 30 * MPH),
    (["none", "signals"], None),
    (("70", "DE:urban"), 50.0),
    # numbers that are not strings
    (50, 50.0),
    (50.0, 50.0),
    (np.float32(60.0), 60.0),
    (np.int64(70), 70.0),
    # implicit limits, https://wiki.openstreetmap.org/wiki/Key:maxspeed
    ("DE:urban", 50.0),
    ("DE:rural", 100.0),
    ("DE:living_street", 6.0),
    ("DE:bicycle_road", 30.0),
    ("AT:urban", 50.0),
    ("AT:rural", 100.0),
    ("AT:motorway", 130.0),
    ("CH:rural", 80.0),
    ("CH:motorway", 120.0),
    ("FR:urban", 50.0),
    ("FR:rural", 80.0),
    ("FR:motorway", 130.0),
    ("IT:urban", 50.0),
    ("IT:rural", 90.0),
    ("ES:rural", 90.0),
    ("ES:motorway", 120.0),
    ("PT:urban", 50.0),
    ("PT:rural", 90.0),
    ("PT:trunk", 100.0),
    ("PT:motorway", 120.0),
    ("GB:nsl_single", 96.56),
    ("GB:nsl_dual", 112.65),
    ("GB:motorway", 112.65),
    ("UK:nsl_single", 96.56),
    ("NL:rural", 80.0),
    ("BE-VLG:rural", 70.0),
    ("PL:rural", 90.0),
    ("PL:motorway", 140.0),
    ("CZ:rural", 90.0),
    ("RO:urban", 50.0),
    ("RO:rural", 90.0),
    ("RO:trunk", 100.0),
    ("RU:urban", 60.0),
    ("RU:living_street", 20.0),
    ("UA:rural", 90.0),
    ("DK:rural", 80.0),
    ("SE:rural", 70.0),
    ("NO:rural", 80.0),
    ("FI:trunk", 100.0),
    ("HU:motorway", 130.0),
    ("SK:rural", 90.0),
    ("SI:motorway", 130.0),
    ("HR:rural", 90.0),
    ("IE:national", 100.0),
    ("LU:rural", 90.0),
    ("MT:rural", 80.0),
    ("AD:urban", 50.0),
    ("AR:urban:primary", 60.0),
    ("de:urban", 50.0),  # lower-case country code
    ("DE:Urban", 50.0),
    # zones and walking pace
    ("zone:30", 30.0),
    ("zone30", 30.0),
    ("DE:zone30", 30.0),
    ("DE:zone:30", 30.0),
    ("DE:zone:20", 20.0),
    ("NL:zone60", 60.0),
    ("walk", 6.0),
    ("DE:walk", 6.0),
    # values that on purpose carry no number: the class speed applies
    ("none", None),
    ("None", None),
    ("signals", None),
    ("variable", None),
    ("implicit", None),
    ("unposted", None),
    ("DE:motorway", None),
    # absent
    (None, None),
    (float("nan"), None),
    (np.nan, None),
    ("", None),
    ("   ", None),
    ([], None),
    # garbage
    ("0", None),
    ("0.5", None),
    ("-50", None),
    ("350", None),
    ("200 mph", None),
    ("nan", None),
    ("NaN", None),
    ("unknown", None),
    ("?", None),
    ("50 foo", None),
    ("5O", None),
    ("1e3", None),
    ("inf", None),
    ("fast", None),
    ("DE:zone", None),
    ("XX:urban", None),
    ("BE:rural", None),  # regional, see the table comment
    ("urban", None),
    (float("inf"), None),
    (-30, None),
    (0, None),
    (True, None),
    (b"50", None),
    ({"maxspeed": "50"}, None),
]


@pytest.mark.parametrize(("value", "expected"), MAXSPEED_TABLE, ids=repr)
def test_parse_maxspeed_table(value: Any, expected: float | None) -> None:
    got = parse_maxspeed(value)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=0.01)


def test_parse_maxspeed_nested_too_deep_is_none() -> None:
    assert parse_maxspeed([[[["50"]]]]) is None


class _Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __float__(self) -> float:
        raise RuntimeError("no float")

    def __iter__(self) -> Any:
        raise RuntimeError("no iter")


_ANY_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.text(),
        st.text(alphabet="0123456789.,;| :kmphnotsKMPH/()@-DEurbalzwk"),
        st.floats(),
        st.integers(),
        st.booleans(),
        st.binary(),
        st.builds(object),
        st.builds(_Hostile),
        st.just(pd.NA),
    ),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children),
    max_leaves=10,
)


@given(_ANY_VALUE)
@settings(max_examples=400, deadline=None)
def test_parse_maxspeed_never_raises_and_is_plausible(value: Any) -> None:
    got = parse_maxspeed(value)
    assert got is None or (math.isfinite(got) and 1.0 <= got <= 300.0)


def test_implicit_table_is_well_formed() -> None:
    for key, kmh in IMPLICIT_MAXSPEEDS_KMH.items():
        country, _, zone = key.partition(":")
        assert country == country.upper()
        assert zone
        assert zone == zone.lower()
        assert kmh is None or 1.0 <= kmh <= 300.0
        assert parse_maxspeed(key) == kmh


# -- defaults -----------------------------------------------------------------------------


def test_default_table() -> None:
    assert MIN_TRAVEL_SECONDS == 0.001
    assert FALLBACK_SPEED_KMH == 30.0
    for name in ("motorway", "trunk", "primary", "secondary", "tertiary", "unclassified"):
        assert name in DEFAULT_SPEEDS_KMH
    for name in ("residential", "living_street", "service", "road", "track", "busway"):
        assert name in DEFAULT_SPEEDS_KMH
    for name, kmh in DEFAULT_SPEEDS_KMH.items():
        assert 0 < kmh <= 300
        if name.endswith("_link"):
            assert kmh < DEFAULT_SPEEDS_KMH[name.removesuffix("_link")]
    assert DEFAULT_SPEEDS_KMH["motorway"] > DEFAULT_SPEEDS_KMH["trunk"]
    assert DEFAULT_SPEEDS_KMH["trunk"] > DEFAULT_SPEEDS_KMH["primary"]
    assert DEFAULT_SPEEDS_KMH["primary"] > DEFAULT_SPEEDS_KMH["secondary"]
    assert DEFAULT_SPEEDS_KMH["secondary"] > DEFAULT_SPEEDS_KMH["tertiary"]
    assert DEFAULT_SPEEDS_KMH["residential"] > DEFAULT_SPEEDS_KMH["living_street"]
    with pytest.raises(TypeError):
        DEFAULT_SPEEDS_KMH["motorway"] = 200  # type: ignore[index]


def test_default_profile() -> None:
    p = SpeedProfile.default()
    assert dict(p.speeds_kmh) == dict(DEFAULT_SPEEDS_KMH)
    assert p.fallback_kmh == FALLBACK_SPEED_KMH
    assert p.use_maxspeed is True
    assert p.maxspeed_factor == 1.0


def test_module_docstring_examples() -> None:
    result = doctest.testmod(roadnet.speed)
    assert result.attempted > 0
    assert result.failed == 0


# -- class_speed --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("highway", "expected"),
    [
        ("motorway", 110.0),
        ("residential", 30.0),
        (" Primary ", 65.0),
        ("unclassified;tertiary", 45.0),  # pyrosm, Porto
        ("residential;primary", 65.0),
        ("bus_stop;residential", 30.0),
        (["residential", "unclassified"], 40.0),  # osmnx
        (["tertiary", "primary"], 65.0),
        (("service", "track"), 20.0),
        (["via_ferrata", "living_street"], 10.0),
        ("via_ferrata", FALLBACK_SPEED_KMH),  # unknown class (Andorra)
        ("bus_stop", FALLBACK_SPEED_KMH),  # unknown class (Porto)
        ("", FALLBACK_SPEED_KMH),
        ([], FALLBACK_SPEED_KMH),
        (["foo", "bar"], FALLBACK_SPEED_KMH),
        (None, FALLBACK_SPEED_KMH),
        (float("nan"), FALLBACK_SPEED_KMH),
    ],
    ids=repr,
)
def test_class_speed(highway: Any, expected: float) -> None:
    assert SpeedProfile.default().class_speed(highway) == expected


def test_class_speed_user_class_and_fallback() -> None:
    p = SpeedProfile.from_mapping({"via_ferrata": 1, "fallback": 12})
    assert p.class_speed("via_ferrata") == 1.0
    assert p.class_speed("nonsense") == 12.0


# -- from_mapping / with_overrides / to_dict ----------------------------------------------


def test_from_mapping_merges_over_defaults() -> None:
    p = SpeedProfile.from_mapping(
        {"residential": 25, "golf_cart": 12.5, "fallback": 20, "maxspeed_factor": 0.9}
    )
    assert p.speeds_kmh["residential"] == 25.0
    assert p.speeds_kmh["golf_cart"] == 12.5
    assert p.speeds_kmh["motorway"] == DEFAULT_SPEEDS_KMH["motorway"]
    assert p.fallback_kmh == 20.0
    assert p.maxspeed_factor == 0.9
    assert p.use_maxspeed is True
    assert SpeedProfile.from_mapping({"use_maxspeed": False}).use_maxspeed is False
    assert SpeedProfile.from_mapping({}) == SpeedProfile.default()


def test_class_names_are_normalised() -> None:
    p = SpeedProfile.from_mapping({" Residential ": 25})
    assert p.speeds_kmh["residential"] == 25.0
    assert " Residential " not in p.speeds_kmh


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("residential", -10),
        ("residential", 0),
        ("residential", float("nan")),
        ("residential", float("inf")),
        ("residential", "50"),
        ("residential", 301),
        ("residential", 10**400),
        ("residential", True),
        ("residential", None),
        ("residential", [50]),
        ("my_class", -1),
        ("fallback", 0),
        ("fallback", "fast"),
        ("fallback", 1000),
    ],
    ids=repr,
)
def test_from_mapping_rejects_bad_speeds(key: str, value: Any) -> None:
    with pytest.raises(SpeedProfileError, match=key) as info:
        SpeedProfile.from_mapping({key: value})
    assert repr(value)[:20] in str(info.value)
    assert "(0, 300]" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, RoadnetError)


@pytest.mark.parametrize("value", [0, -1, 2.5, float("nan"), "0.9", None, True])
def test_from_mapping_rejects_bad_factor(value: Any) -> None:
    with pytest.raises(SpeedProfileError, match="maxspeed_factor"):
        SpeedProfile.from_mapping({"maxspeed_factor": value})


@pytest.mark.parametrize("value", [1, "yes", "false", None])
def test_from_mapping_rejects_non_bool_use_maxspeed(value: Any) -> None:
    with pytest.raises(SpeedProfileError, match="use_maxspeed"):
        SpeedProfile.from_mapping({"use_maxspeed": value})


@pytest.mark.parametrize(
    "mapping",
    [
        {1: 50},
        {"": 50},
        {"   ": 50},
        {"residential": 20, "Residential": 25},
    ],
    ids=repr,
)
def test_from_mapping_rejects_bad_keys(mapping: dict[Any, Any]) -> None:
    with pytest.raises(SpeedProfileError):
        SpeedProfile.from_mapping(mapping)


def test_from_mapping_rejects_non_mapping() -> None:
    with pytest.raises(SpeedProfileError, match="mapping"):
        SpeedProfile.from_mapping([("residential", 30)])  # type: ignore[arg-type]


def test_constructor_validates() -> None:
    with pytest.raises(SpeedProfileError, match="residential"):
        SpeedProfile({"residential": -1}, 30)
    with pytest.raises(SpeedProfileError, match="fallback"):
        SpeedProfile({"residential": 30}, float("nan"))
    with pytest.raises(SpeedProfileError, match="mapping"):
        SpeedProfile([30], 30)  # type: ignore[arg-type]


def test_with_overrides() -> None:
    base = SpeedProfile.default()
    p = base.with_overrides({"residential": 25, "track": 10}, track=8, use_maxspeed=False)
    assert p.speeds_kmh["residential"] == 25.0
    assert p.speeds_kmh["track"] == 8.0  # keywords win over the mapping
    assert p.use_maxspeed is False
    assert base.speeds_kmh["residential"] == DEFAULT_SPEEDS_KMH["residential"]  # unchanged
    assert base.with_overrides() == base
    with pytest.raises(SpeedProfileError, match="service"):
        base.with_overrides(service=0)


def test_profile_is_immutable_hashable_picklable() -> None:
    p = SpeedProfile.default().with_overrides(golf_cart=12)
    with pytest.raises(TypeError):
        p.speeds_kmh["residential"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        p.fallback_kmh = 1  # type: ignore[misc]
    assert hash(p) == hash(SpeedProfile.from_mapping({"golf_cart": 12.0}))
    assert len({p, SpeedProfile.from_mapping({"golf_cart": 12})}) == 1
    assert pickle.loads(pickle.dumps(p)) == p
    assert p != SpeedProfile.default()


def test_to_dict_is_canonical_and_round_trips() -> None:
    p = SpeedProfile.from_mapping(
        {"track": 12, "zzz": 5, "fallback": 25, "use_maxspeed": False, "maxspeed_factor": 0.8}
    )
    d = p.to_dict()
    assert list(d) == sorted(d)
    assert json.loads(json.dumps(d)) == d
    assert d["fallback"] == 25.0
    assert d["use_maxspeed"] is False
    assert d["maxspeed_factor"] == 0.8
    assert d["zzz"] == 5.0
    assert SpeedProfile.from_mapping(d) == p
    assert SpeedProfile.from_mapping(d).to_dict() == d
    # insertion order does not matter
    q = SpeedProfile.from_mapping(dict(reversed(list(d.items()))))
    assert json.dumps(q.to_dict()) == json.dumps(d)


# -- from_file ----------------------------------------------------------------------------


def test_from_file_json_round_trip(tmp_path: Path) -> None:
    p = SpeedProfile.default().with_overrides(residential=25, maxspeed_factor=0.9)
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(p.to_dict()), encoding="utf-8")
    assert SpeedProfile.from_file(path) == p
    assert SpeedProfile.from_file(str(path)) == p


def test_from_file_toml(tmp_path: Path) -> None:
    path = tmp_path / "profile.TOML"
    path.write_text(
        "fallback = 25\n"
        "use_maxspeed = false\n"
        "maxspeed_factor = 0.9\n"
        "residential = 25\n"
        '"golf_cart" = 12.5\n',
        encoding="utf-8",
    )
    p = SpeedProfile.from_file(path)
    assert p == SpeedProfile.from_mapping(
        {
            "fallback": 25,
            "use_maxspeed": False,
            "maxspeed_factor": 0.9,
            "residential": 25,
            "golf_cart": 12.5,
        }
    )


def test_from_file_toml_round_trip(tmp_path: Path) -> None:
    p = SpeedProfile.default().with_overrides(track=11.5, use_maxspeed=False)
    lines = [f"{k} = {json.dumps(v)}" for k, v in p.to_dict().items()]
    path = tmp_path / "profile.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert SpeedProfile.from_file(path) == p


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.json", "[1, 2]", "mapping"),
        ("bad.json", '"residential"', "mapping"),
        ("bad.json", '{"residential": -5}', "residential"),
        ("bad.json", '{"residential": NaN}', "residential"),
        ("bad.json", '{"residential": "fast"}', "residential"),
        ("bad.toml", "residential = [", "not valid TOML"),
        ("bad.toml", "residential = 0", "residential"),
        ("bad.toml", "[speeds]\nresidential = 30\n", "speeds"),
        ("bad.yaml", "residential: 30", r"\.json or \.toml"),
        ("bad.json", b"\xff\xfe\x00garbage", "not valid JSON"),
        ("bad.toml", b"\xff\xfe\x00garbage", "not valid TOML"),
    ],
)
def test_from_file_bad_content(tmp_path: Path, name: str, content: str | bytes, match: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SpeedProfileError, match=match) as info:
        SpeedProfile.from_file(path)
    assert name in str(info.value)


def test_from_file_missing_or_unreadable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(SpeedProfileError, match=r"nope\.json"):
        SpeedProfile.from_file(missing)
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(SpeedProfileError, match=r"folder\.toml"):
        SpeedProfile.from_file(folder)


# -- edge_speeds --------------------------------------------------------------------------


def test_edge_speeds_small_array_counts() -> None:
    p = SpeedProfile.default()
    highway = ["residential", "primary", "motorway", "tertiary", None, "via_ferrata", "service"]
    maxspeed = [None, "50 mph", "none", "unknown", float("nan"), "0", ["40", "30"]]
    speeds, stats = p.edge_speeds(highway, maxspeed)
    np.testing.assert_allclose(speeds, [30.0, 50 * MPH, 110.0, 45.0, 30.0, 30.0, 30.0])
    assert speeds.dtype == np.float64
    assert stats == SpeedStats(
        n_edges=7,
        n_maxspeed_used=2,
        n_maxspeed_missing=3,
        n_maxspeed_garbage=2,
        garbage_examples=["unknown", "0"],
        n_highway_unknown=2,
    )
    assert stats.to_dict()["n_maxspeed_garbage"] == 2
    assert json.loads(json.dumps(stats.to_dict())) == stats.to_dict()


def test_edge_speeds_garbage_examples_distinct_and_capped() -> None:
    values = [f"junk{i}" for i in range(25)] * 2 + [[1, "x"], [None, "y"]]
    _, stats = SpeedProfile.default().edge_speeds(["residential"] * len(values), values)
    assert stats.n_maxspeed_garbage == 51
    assert stats.garbage_examples == [f"junk{i}" for i in range(10)]


def test_edge_speeds_unhashable_values() -> None:
    highway = [["residential", "primary"], ["residential", "primary"], "track"]
    maxspeed = [["50", "40"], ["50", "40"], np.array(["20", "30"])]
    speeds, stats = SpeedProfile.default().edge_speeds(highway, maxspeed)
    np.testing.assert_allclose(speeds, [40.0, 40.0, 20.0])
    assert stats.n_maxspeed_used == 3


def test_edge_speeds_accepts_series_and_arrays() -> None:
    highway = pd.Series(["primary", None, "residential"], dtype="str")
    maxspeed = pd.Series(["DE:urban", None, "walk"])
    speeds, stats = SpeedProfile.default().edge_speeds(highway, maxspeed)
    np.testing.assert_allclose(speeds, [50.0, 30.0, 6.0])
    speeds2, stats2 = SpeedProfile.default().edge_speeds(
        highway.to_numpy(dtype=object), maxspeed.to_numpy(dtype=object)
    )
    np.testing.assert_array_equal(speeds, speeds2)
    assert stats == stats2


def test_edge_speeds_factor_applies_to_limits_only() -> None:
    p = SpeedProfile.default().with_overrides(maxspeed_factor=0.9)
    speeds, _ = p.edge_speeds(["primary", "primary", "motorway"], ["50", None, "GB:motorway"])
    np.testing.assert_allclose(speeds, [45.0, 65.0, 70 * MPH * 0.9])


def test_edge_speeds_without_maxspeed() -> None:
    p = SpeedProfile.default().with_overrides(use_maxspeed=False)
    speeds, stats = p.edge_speeds(["primary", "track"], ["120", "unknown"])
    np.testing.assert_allclose(speeds, [65.0, 15.0])
    assert (stats.n_maxspeed_used, stats.n_maxspeed_missing, stats.n_maxspeed_garbage) == (0, 0, 0)
    speeds, stats = SpeedProfile.default().edge_speeds(["primary", "track"])
    np.testing.assert_allclose(speeds, [65.0, 15.0])
    assert stats.n_maxspeed_missing == 2


def test_edge_speeds_empty() -> None:
    speeds, stats = SpeedProfile.default().edge_speeds([], [])
    assert speeds.shape == (0,)
    assert stats.n_edges == 0


def test_edge_speeds_bad_shapes() -> None:
    p = SpeedProfile.default()
    with pytest.raises(ValueError, match="one value per segment"):
        p.edge_speeds(["primary", "track"], ["50"])
    with pytest.raises(ValueError, match="one-dimensional"):
        p.edge_speeds(np.array([["primary"]]), np.array([["50"]]))
    with pytest.raises(TypeError, match="single string"):
        p.edge_speeds("primary", "50")


def test_edge_speeds_logs_garbage(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="roadnet.speed"):
        SpeedProfile.default().edge_speeds(["primary"], ["fast"])
    assert "fast" in caplog.text


def test_edge_speeds_realistic_sample() -> None:
    # Distinct values as pyrosm gives them for Porto, Andorra and Malta, plus common OSM forms.
    rng = np.random.default_rng(42)
    highway_values = np.array(
        [
            "residential",
            "unclassified",
            "primary",
            "secondary",
            "tertiary",
            "motorway_link",
            "motorway",
            "road",
            "unclassified;tertiary",
            "bus_stop",
        ],
        dtype=object,
    )
    maxspeed_values = np.array(
        [np.nan, "50", "120", "40", "50; 40", "80; 50", "PT:urban", "none", "unknown", "?"],
        dtype=object,
    )
    idx_h = rng.integers(0, len(highway_values), 10_000)
    idx_m = rng.integers(0, len(maxspeed_values), 10_000)
    speeds, stats = SpeedProfile.default().edge_speeds(
        highway_values[idx_h], maxspeed_values[idx_m]
    )
    count = np.bincount(idx_m, minlength=len(maxspeed_values))
    assert stats.n_edges == 10_000
    assert stats.n_maxspeed_used == count[1:7].sum()
    assert stats.n_maxspeed_missing == count[0] + count[7]
    assert stats.n_maxspeed_garbage == count[8] + count[9]
    first_seen = sorted([8, 9], key=lambda code: int(np.argmax(idx_m == code)))
    assert stats.garbage_examples == [maxspeed_values[code] for code in first_seen]
    assert stats.n_highway_unknown == np.count_nonzero(idx_h == 9)
    expected_limit = np.array([np.nan, 50, 120, 40, 40, 50, 50, np.nan, np.nan, np.nan])
    limit = expected_limit[idx_m]
    class_kmh = np.array([30, 40, 65, 55, 45, 70, 110, 40, 45, 30], dtype=float)[idx_h]
    np.testing.assert_allclose(speeds, np.where(np.isnan(limit), class_kmh, limit))


@pytest.mark.parametrize("name", ["andorra-latest", "porto_portugal"])
def test_edge_speeds_real_networks(name: str) -> None:
    path = OSM_DIR / f"{name}.osm.pbf"
    if not path.exists():
        pytest.skip(f"{path} not available")
    pyrosm = pytest.importorskip("pyrosm")
    net = pyrosm.OSM(str(path)).get_network(network_type="driving")
    speeds, stats = SpeedProfile.default().edge_speeds(net["highway"], net["maxspeed"])
    assert stats.n_edges == len(net)
    assert stats.n_maxspeed_garbage == 0, stats.garbage_examples
    assert stats.n_maxspeed_used == net["maxspeed"].notna().sum()
    assert np.all(np.isfinite(speeds))
    assert speeds.min() >= 5.0
    assert speeds.max() <= 130.0
    # every distinct real value parses
    for value in net["maxspeed"].dropna().unique():
        assert parse_maxspeed(value) is not None, value


_HIGHWAY_VALUE = st.one_of(
    st.none(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(sorted(DEFAULT_SPEEDS_KMH)),
    st.lists(st.sampled_from([*DEFAULT_SPEEDS_KMH, "foo", ""]), max_size=3),
)
_MAXSPEED_VALUE = st.one_of(
    _ANY_VALUE,
    st.sampled_from(["50", "30 mph", "DE:urban", "none", "50;40", "0", "999"]),
)


@given(
    st.lists(st.tuples(_HIGHWAY_VALUE, _MAXSPEED_VALUE), max_size=30),
    st.floats(min_value=0.01, max_value=2.0),
)
@settings(max_examples=200, deadline=None)
def test_edge_speeds_always_positive_finite(rows: list[tuple[Any, Any]], factor: float) -> None:
    p = SpeedProfile.default().with_overrides(maxspeed_factor=factor)
    highway = [h for h, _ in rows]
    maxspeed = [m for _, m in rows]
    speeds, stats = p.edge_speeds(highway, maxspeed)
    assert speeds.shape == (len(rows),)
    assert np.all(np.isfinite(speeds))
    assert np.all(speeds > 0)
    assert stats.n_maxspeed_used + stats.n_maxspeed_missing + stats.n_maxspeed_garbage == len(rows)
    assert len(stats.garbage_examples) <= min(10, stats.n_maxspeed_garbage)
