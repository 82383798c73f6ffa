"""Road names of a graph's ways: lookup arrays, one pass over the PBF, cached beside the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import osmium
import pytest

from cache import Store
from roadnet.exceptions import GraphSourceError
from roadnet.graph_cache import load_road_graph
from roadnet.names import RoadNames, road_names
from tests.support import shared_file


def test_lookup_by_way_id() -> None:
    names = {7: "Rua de Santa Catarina", 3: "", 11: "Avinguda Meritxell", 2**40: "Carrer ç"}
    rn = RoadNames.from_mapping(names)
    assert len(rn) == 4
    ids = [11, 3, 99, 7, 2**40, -1]
    assert rn.names(ids) == ["Avinguda Meritxell", "", "", "Rua de Santa Catarina", "Carrer ç", ""]
    assert rn.name(7) == "Rua de Santa Catarina"
    assert RoadNames.from_mapping({}).names([1, 2]) == ["", ""]


def test_names_of_a_pbf_graph_are_cached_and_match_the_file(tmp_path: Path) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    store = Store(tmp_path / "cache")
    g, _ = load_road_graph(pbf=pbf, store=store)
    rn = road_names(g, pbf, store=store)
    ways = np.unique(g.arc_osmid)
    assert len(rn) == ways.shape[0]  # every way of the graph has an entry
    want: dict[int, str] = {}
    wanted = set(ways.tolist())

    class Names(osmium.SimpleHandler):
        def way(self, w: osmium.osm.Way) -> None:
            if w.id in wanted:
                want[w.id] = w.tags.get("name", "")

    Names().apply_file(str(pbf))
    assert rn.names(ways) == [want[int(w)] for w in ways]
    assert sum(bool(v) for v in want.values()) > 100
    arcs = np.array([0, 5, -1, g.n_arcs - 1])
    assert rn.of_arcs(g, arcs)[2] == ""
    assert rn.of_arcs(g, arcs)[0] == want[int(g.arc_osmid[0])]
    kinds = [i.kind for i in store.ls()]
    assert kinds.count("names") == 1
    again = road_names(g, pbf, store=store)  # from the cache: same arrays, no second entry
    assert np.array_equal(again.blob, rn.blob) and np.array_equal(again.way_ids, rn.way_ids)
    assert [i.kind for i in store.ls()].count("names") == 1


def test_names_from_a_missing_or_broken_file(tmp_path: Path) -> None:
    g, _ = load_road_graph(pbf=shared_file("osm", "andorra-latest.osm.pbf"), store=None)
    with pytest.raises(GraphSourceError, match="not found"):
        road_names(g, tmp_path / "nope.osm.pbf")
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"\x00\x00\x00\x0dnot a pbf at all" * 10)
    with pytest.raises(GraphSourceError, match="cannot read road names"):
        road_names(g, bad, store=Store(tmp_path / "c"))
    assert not [i for i in Store(tmp_path / "c").ls() if i.kind == "names"]
