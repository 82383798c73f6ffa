"""Node coordinates of the streaming PBF reader: osmium's location index (one pass) or the
two-pass read (the road nodes' coordinates only) build the same graph; ``auto`` picks by the
memory available; bad settings are typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import roadnet
from roadnet import sources
from roadnet.exceptions import GraphSourceError, InvalidArgumentError
from roadnet.settings import SettingsError, _from_environment
from tests.support import shared_file
from tests.test_pbf_readers import EXTRACTS, _damaged, _footpaths_only, assert_same_graph


@pytest.mark.parametrize("name", EXTRACTS)
def test_two_pass_read_builds_the_same_graph_as_the_location_index(name: str) -> None:
    pbf = shared_file("osm", name)
    indexed = roadnet.graph_from_pbf(pbf, reader="osmium", node_index="sparse_mem_array")
    two_pass = roadnet.graph_from_pbf(pbf, reader="osmium", node_index="two-pass")
    assert two_pass.n_nodes > 1000
    assert_same_graph(indexed, two_pass)


def test_two_pass_read_clips_and_cuts_boxes_like_the_location_index() -> None:
    pbf = shared_file("osm", "malta-latest.osm.pbf")
    valletta = (14.49, 35.88, 14.53, 35.91)
    for kw in ({"clip": valletta, "clip_buffer_km": 2.0}, {"bbox": valletta}):
        indexed = roadnet.graph_from_pbf(pbf, reader="osmium", node_index="sparse_mem_array", **kw)
        two_pass = roadnet.graph_from_pbf(pbf, reader="osmium", node_index="two-pass", **kw)
        assert 100 < two_pass.n_nodes < 16_000, kw
        assert_same_graph(indexed, two_pass)


def test_two_pass_read_across_batch_and_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Node batches and clip chunks far smaller than the file: every boundary is crossed."""
    pbf = shared_file("osm", "malta-latest.osm.pbf")
    valletta = (14.49, 35.88, 14.53, 35.91)
    kws: list[dict[str, object]] = [{}, {"clip": valletta, "clip_buffer_km": 2.0}]
    want = [roadnet.graph_from_pbf(pbf, reader="osmium", node_index="sparse_mem_array", **kw)
            for kw in kws]  # fmt: skip
    monkeypatch.setattr(sources, "_NODE_BATCH", 997)
    monkeypatch.setattr(sources, "_STREAM_CHUNK_REFS", 1013)
    for kw, indexed in zip(kws, want, strict=True):
        assert_same_graph(indexed, roadnet.graph_from_pbf(pbf, node_index="two-pass", **kw))
        assert_same_graph(indexed, roadnet.graph_from_pbf(pbf, node_index="sparse_mem_array", **kw))


def _way_with_a_missing_node(path: Path) -> Path:
    """A residential road whose third node is not in the file (as in a cut extract)."""
    import osmium

    with osmium.SimpleWriter(str(path)) as writer:
        for i in (1, 2, 4, 5):
            writer.add_node(osmium.osm.mutable.Node(id=i, location=(7.0 + i * 1e-3, 46.0)))
        writer.add_way(
            osmium.osm.mutable.Way(id=10, nodes=[1, 2, 3, 4, 5], tags={"highway": "residential"})
        )
    return path


def test_a_node_missing_from_the_file_cuts_the_road_the_same_way(tmp_path: Path) -> None:
    pbf = _way_with_a_missing_node(tmp_path / "cut.osm.pbf")
    indexed = roadnet.graph_from_pbf(pbf, reader="osmium", node_index="sparse_mem_array")
    two_pass = roadnet.graph_from_pbf(pbf, reader="osmium", node_index="two-pass")
    assert_same_graph(indexed, two_pass)
    # segments 1-2 and 4-5 survive, 2-3 and 3-4 are cut: two roads, both ways
    assert two_pass.n_nodes == 4
    assert two_pass.meta["counts"]["arcs"] == 4


@pytest.mark.parametrize("how", ["truncated", "corrupt", "garbage"])
def test_two_pass_read_of_a_damaged_pbf_is_a_graph_source_error(tmp_path: Path, how: str) -> None:
    with pytest.raises(GraphSourceError, match=r"cannot read .* as an OSM PBF file"):
        roadnet.graph_from_pbf(_damaged(tmp_path, how), reader="osmium", node_index="two-pass")


def test_two_pass_read_without_drivable_road_is_a_graph_source_error(tmp_path: Path) -> None:
    pbf = _footpaths_only(tmp_path / "paths.osm.pbf")
    with pytest.raises(GraphSourceError, match="holds no drivable road"):
        roadnet.graph_from_pbf(pbf, reader="osmium", node_index="two-pass")
    sea = (-30.0, 30.0, -29.0, 31.0)
    with pytest.raises(GraphSourceError, match="no drivable road inside the clip region"):
        roadnet.graph_from_pbf(
            shared_file("osm", "andorra-latest.osm.pbf"),
            reader="osmium",
            node_index="two-pass",
            clip=sea,
            clip_buffer_km=1,
        )


def test_auto_reads_in_two_passes_only_when_the_index_would_not_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pbf = shared_file("osm", "malta-latest.osm.pbf")
    index_bytes = sources.INDEX_BYTES_PER_PBF_BYTE * pbf.stat().st_size
    default = sources.resolve_node_index("sparse_mem_array", pbf)
    assert default == "sparse_mem_array"
    with roadnet.settings.override(pbf_node_locations="auto"):
        monkeypatch.setattr(sources, "available_memory", lambda: int(index_bytes))
        assert sources.resolve_node_index(None, pbf) == sources.TWO_PASS
        monkeypatch.setattr(sources, "available_memory", lambda: int(4 * index_bytes))
        assert sources.resolve_node_index(None, pbf) in sources._DEFAULT_NODE_INDEXES
        monkeypatch.setattr(sources, "available_memory", lambda: None)
        assert sources.resolve_node_index(None, pbf) in sources._DEFAULT_NODE_INDEXES
    monkeypatch.setattr(sources, "available_memory", lambda: 1)  # settings win over memory
    with roadnet.settings.override(pbf_node_locations="index"):
        assert sources.resolve_node_index(None, pbf) in sources._DEFAULT_NODE_INDEXES
    with roadnet.settings.override(pbf_node_locations="two-pass"):
        assert sources.resolve_node_index(None, pbf) == sources.TWO_PASS
        assert sources.resolve_node_index("sparse_mem_array", pbf) == "sparse_mem_array"


def test_auto_two_pass_build_is_recorded_nowhere_in_the_graph(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The way the coordinates were read changes nothing in the graph, its metadata or its
    cache identity."""
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    monkeypatch.setattr(sources, "available_memory", lambda: 1)
    ran: list[int] = []
    real = sources._stream_two_pass

    def spy(*args: object, **kwargs: object) -> object:
        ran.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sources, "_stream_two_pass", spy)
    with roadnet.settings.override(pbf_node_locations="auto"):
        two_pass = roadnet.graph_from_pbf(pbf, reader="osmium")
    assert ran == [1]
    indexed = roadnet.graph_from_pbf(pbf, reader="osmium", node_index="sparse_mem_array")
    assert_same_graph(indexed, two_pass)
    assert two_pass.meta["source"] == indexed.meta["source"]


def test_available_memory_is_a_positive_byte_count_on_linux() -> None:
    if not Path("/proc/meminfo").exists():
        pytest.skip("no /proc/meminfo on this platform")
    avail = sources.available_memory()
    assert avail is not None
    assert 0 < avail < 1 << 50


def _cgroup_tree(tmp_path: Path, version: int, limit: str, usage: int, inactive: int) -> Path:
    root = tmp_path / "cgroup"
    if version == 2:
        group = root / "job"
        names = ("memory.max", "memory.current", "inactive_file")
        line = "0::/job"
    else:
        group = root / "memory" / "job"
        names = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
        line = "9:name=systemd:/\n4:memory:/job\n1:cpu:/"
    group.mkdir(parents=True)
    (group / names[0]).write_text(limit + "\n")
    (group / names[1]).write_text(f"{usage}\n")
    (group / "memory.stat").write_text(f"anon 5\n{names[2]} {inactive}\nactive_file 7\n")
    (tmp_path / "self_cgroup").write_text(line + "\n")
    return root


@pytest.mark.parametrize("version", [1, 2])
def test_cgroup_limit_lowers_the_available_memory(tmp_path: Path, version: int) -> None:
    gib = 1 << 30
    root = _cgroup_tree(tmp_path, version, str(4 * gib), 3 * gib, gib)
    member = tmp_path / "self_cgroup"
    # the inactive page cache is reclaimable: 4 GiB - (3 GiB - 1 GiB) are left
    assert sources._cgroup_memory_left(root, member) == 2 * gib
    over = _cgroup_tree(tmp_path / "full", version, str(gib), 3 * gib, 0)
    assert sources._cgroup_memory_left(over, tmp_path / "full" / "self_cgroup") == 0
    unlimited = "max" if version == 2 else "9223372036854771712"
    free = _cgroup_tree(tmp_path / "free", version, unlimited, 3 * gib, 0)
    assert sources._cgroup_memory_left(free, tmp_path / "free" / "self_cgroup") is None
    assert sources._cgroup_memory_left(root, tmp_path / "no_such_file") is None


@pytest.mark.parametrize("value", ["fast", "", "Two-Pass", None, 2])
def test_bad_node_locations_setting_is_a_settings_error(value: object) -> None:
    with pytest.raises(SettingsError, match=r"pbf_node_locations' must be one of auto, index"):
        roadnet.settings.pbf_node_locations = value  # type: ignore[assignment]
    assert issubclass(SettingsError, ValueError)


def test_node_locations_setting_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROADNET_PBF_NODE_LOCS", "two-pass")
    assert _from_environment().pbf_node_locations == "two-pass"
    monkeypatch.setenv("ROADNET_PBF_NODE_LOCS", "never")
    with pytest.raises(SettingsError, match="ROADNET_PBF_NODE_LOCS='never' is invalid"):
        _from_environment()


@pytest.mark.parametrize("node_index", ["bogus", "", "two_pass", 3])
def test_unknown_node_index_names_the_choices(node_index: object) -> None:
    pbf = shared_file("osm", "andorra-latest.osm.pbf")
    with pytest.raises(InvalidArgumentError, match=r"node_index must be 'two-pass' or one of "):
        roadnet.graph_from_pbf(pbf, reader="osmium", node_index=node_index)  # type: ignore[arg-type]


def test_read_position_follows_the_descriptor_open_on_the_file(tmp_path: Path) -> None:
    if not Path("/proc/self/fdinfo").is_dir():
        pytest.skip("no /proc/self/fdinfo on this platform")
    f = tmp_path / "data.bin"
    f.write_bytes(bytes(1000))
    position = sources._ReadPosition(f)
    assert position.share() is None  # not open: nothing to tell
    with open(f, "rb") as fh:
        fh.seek(250)
        assert position.share() == pytest.approx(0.25)
        fh.seek(1000)
        assert position.share() == pytest.approx(1.0)
    assert position.share() == 1.0  # closed after it was read: the reader is through


@pytest.mark.parametrize("node_index", ["sparse_mem_array", "two-pass"])
def test_pbf_build_progress_goes_forward_from_reading_to_done(
    monkeypatch: pytest.MonkeyPatch, node_index: str
) -> None:
    monkeypatch.setattr(sources, "_TICK_WAYS", 500)
    monkeypatch.setattr(sources, "_NODE_BATCH", 20_000)
    seen: list[tuple[str, float]] = []
    pbf = shared_file("osm", "porto_portugal.osm.pbf")
    roadnet.graph_from_pbf(pbf, node_index=node_index, progress=lambda s, f: seen.append((s, f)))
    assert seen[0] == ("reading PBF", 0.0)
    assert seen[-2:] == [("compiling graph", 0.5), ("done", 1.0)]
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions)
    assert all(0.0 <= f <= 0.5 for s, f in seen if s == "reading PBF")
