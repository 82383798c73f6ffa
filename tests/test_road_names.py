"""Road names of a graph's arcs: read from the OSM file once, then served from the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import roadnet
from roadnet.graph_cache import load_road_graph
from roadnet.names import WayNames, cached_way_names, read_way_names
from tests.conftest import shared_file


def test_names_by_way_id_with_missing_ids_and_unicode() -> None:
    names = WayNames.from_pairs([30, 10, 20], ["Carrer de la Unió", "Avinguda Meritxell", ""])
    assert names.names(np.array([10, 20, 30, 40, 5])) == [
        "Avinguda Meritxell", "", "Carrer de la Unió", "", "",
    ]  # fmt: skip
    again = WayNames.from_arrays(names.arrays())
    assert again.names(np.array([30])) == ["Carrer de la Unió"]
    assert WayNames.from_pairs([], []).names(np.array([1, 2])) == ["", ""]


def test_cached_names_equal_the_file_and_come_from_the_cache_the_second_time(
    tmp_path: Path,
) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    with roadnet.settings.override(cache_dir=tmp_path):
        g, _ = load_road_graph(pbf=pbf)
        first, hit1 = cached_way_names(g, pbf)
        second, hit2 = cached_way_names(g, pbf)
    assert (hit1, hit2) == (False, True)
    everything = read_way_names(pbf)
    arcs = np.arange(g.n_arcs)
    want = everything.names(g.arc_osmid[arcs])
    assert first.of_arcs(g, arcs) == want == second.of_arcs(g, arcs)
    assert sum(w != "" for w in want) > g.n_arcs // 4  # Andorra's roads mostly have names
    assert set(first.way_ids.tolist()) <= set(np.unique(g.arc_osmid).tolist())
