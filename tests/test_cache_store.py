"""Tests of the cache store: keys, round trips, corruption, LRU, write failures, matrices."""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cache._fsio
from cache import (
    CacheCorruptError,
    CacheCorruptWarning,
    CacheError,
    CacheLockTimeout,
    CacheWriteError,
    IncompleteMatrixError,
    InvalidKeyError,
    InvalidSizeError,
    MatrixError,
    PartialMismatchError,
    Store,
    UnsupportedInputError,
    _arrays,
    make_key,
    open_matrix,
    parse_size,
    partial_matrix,
    put_matrix,
)

# ---------------------------------------------------------------------------- fixtures, helpers


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "cache")
    yield s
    s.close()


def _arrays_of(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "f32": rng.random((50, 7), dtype=np.float32),
        "i64": rng.integers(-(2**40), 2**40, size=33, dtype=np.int64),
        "flags": rng.random(20) > 0.5,
    }


def _array_file(store: Store, key: str, name: str) -> Path:
    info = store.info(key)
    assert info is not None
    assert info[0].path is not None
    return info[0].path / f"{name}.npy"


def _flip_byte(path: Path, offset_from_end: int = 1) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))


def _assert_same(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(actual) == set(expected)
    for name, array in expected.items():
        assert actual[name].dtype == array.dtype, name
        assert actual[name].shape == array.shape, name
        np.testing.assert_array_equal(actual[name], array)


# ---------------------------------------------------------------------------- keys


def test_key_ignores_dict_order_at_every_level() -> None:
    a = {"region": "X", "profile": {"motorway": 110.0, "residential": 30.0}, "ids": [3, 1, 2]}
    b = {"profile": {"residential": 30.0, "motorway": 110.0}, "ids": [3, 1, 2], "region": "X"}
    assert make_key("drive", a) == make_key("drive", b)
    key = make_key("drive", a)
    assert len(key) == 32
    assert int(key, 16) >= 0


def test_key_distinguishes_values_types_and_kind() -> None:
    base = make_key("k", {"x": 1})
    assert make_key("k", {"x": 1.0}) != base  # floats via repr: 1 and 1.0 differ
    assert make_key("other", {"x": 1}) != base
    assert make_key("k", {"x": 2}) != base
    assert make_key("k", {"x": [1, 2]}) != make_key("k", {"x": [2, 1]})  # list order matters
    assert make_key("k", {"x": (1, 2)}) == make_key("k", {"x": [1, 2]})  # tuples == lists
    assert make_key("k", {"p": Path("/a/b")}) == make_key("k", {"p": "/a/b"})
    assert make_key("k", {"x": np.float64(0.5)}) == make_key("k", {"x": 0.5})
    assert make_key("k", {"x": np.int32(3)}) == make_key("k", {"x": 3})
    assert make_key("k", {"x": True}) != make_key("k", {"x": 1})
    assert make_key("k", {"x": float("nan")}) != make_key("k", {"x": "NaN"})


def test_key_of_numpy_arrays_uses_dtype_shape_and_bytes() -> None:
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert make_key("k", {"a": a}) == make_key("k", {"a": a.copy()})
    assert make_key("k", {"a": np.asfortranarray(a)}) == make_key("k", {"a": a})  # layout-free
    assert make_key("k", {"a": a.astype(np.int32)}) != make_key("k", {"a": a})
    assert make_key("k", {"a": a.reshape(4, 3)}) != make_key("k", {"a": a})
    b = a.copy()
    b[2, 3] += 1
    assert make_key("k", {"a": b}) != make_key("k", {"a": a})


def test_key_unsupported_type_names_the_path() -> None:
    with pytest.raises(TypeError, match=r"inputs\['outer'\]\['inner'\]\[1\].*object"):
        make_key("k", {"outer": {"inner": [1, object()]}})
    with pytest.raises(UnsupportedInputError, match="mapping keys must be str"):
        make_key("k", {"outer": {1: "x"}})
    with pytest.raises(TypeError, match="dtype object"):
        make_key("k", {"a": np.array([object()])})


_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
_json_like = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(inputs=st.dictionaries(st.text(max_size=6), _json_like, max_size=6), seed=st.integers(0, 99))
def test_key_is_canonical_under_reordering_and_json_round_trip(
    inputs: dict[str, Any], seed: int
) -> None:
    key = make_key("prop", inputs)
    assert make_key("prop", _shuffled(inputs, random.Random(seed))) == key
    assert make_key("prop", json.loads(json.dumps(inputs))) == key


@settings(max_examples=60, deadline=None)
@given(
    inputs=st.dictionaries(st.text(max_size=4), _json_like, min_size=1, max_size=4),
    extra=st.text(min_size=1, max_size=4),
)
def test_key_changes_when_an_input_is_added(inputs: dict[str, Any], extra: str) -> None:
    if extra in inputs:
        return
    assert make_key("prop", {**inputs, extra: 0}) != make_key("prop", inputs)


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("mmap", [False, True])
def test_put_get_round_trip(store: Store, mmap: bool) -> None:
    arrays = {
        **_arrays_of(1),
        "empty_f32": np.zeros((0, 3), dtype=np.float32),
        "empty_bool": np.zeros(0, dtype=bool),
        "scalar": np.array(2.5),
        "strings": np.array(["a", "bc", "def"]),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
        "cube": np.arange(60, dtype=np.uint8).reshape(3, 4, 5),
    }
    key = make_key("rt", {"seed": 1})
    info = store.put(key, "rt", {"seed": 1}, arrays, {"note": "hello", "n": np.int64(3)})
    assert info.stored
    assert info.key == key
    assert info.kind == "rt"
    assert info.size_bytes > 0
    entry = store.get(key, mmap=mmap)
    assert entry is not None
    _assert_same(entry.arrays, arrays)
    assert entry.meta == {"note": "hello", "n": 3}
    if mmap:
        assert isinstance(entry.arrays["f32"], np.memmap)
        assert not entry.arrays["f32"].flags.writeable
    assert store.contains(key)
    assert store.get("0" * 32) is None
    assert not store.contains("0" * 32)


def test_overwrite_replaces_value_and_keeps_one_version(store: Store) -> None:
    key = make_key("ow", {})
    store.put(key, "ow", {}, _arrays_of(1), {"gen": 1})
    info = store.put(key, "ow", {}, _arrays_of(2), {"gen": 2})
    entry = store.get(key)
    assert entry is not None
    assert entry.meta["gen"] == 2
    _assert_same(entry.arrays, _arrays_of(2))
    assert info.path is not None
    assert sorted(os.listdir(info.path.parent)) == ["current", info.path.name]
    assert len(store.ls()) == 1


def test_get_or_compute_computes_once(store: Store) -> None:
    calls = []

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        calls.append(1)
        return _arrays_of(3), {"source": "compute", "shape": (50, 7)}

    key = make_key("goc", {"n": 3})
    first, cached1 = store.get_or_compute(key, "goc", {"n": 3}, compute)
    second, cached2 = store.get_or_compute(key, "goc", {"n": 3}, compute)
    assert (cached1, cached2) == (False, True)
    assert len(calls) == 1
    _assert_same(second.arrays, first.arrays)
    assert first.meta == second.meta == {"source": "compute", "shape": [50, 7]}
    _third, cached3 = store.get_or_compute(key, "goc", {"n": 3}, compute, refresh=True)
    assert not cached3
    assert len(calls) == 2


def test_get_or_compute_in_threads_computes_once(store: Store) -> None:
    calls: list[int] = []
    results: list[tuple[bool, bytes]] = []

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        calls.append(1)
        time.sleep(0.2)
        return {"x": np.arange(10.0)}, {}

    def worker() -> None:
        entry, cached = store.get_or_compute("threaded-key", "t", {}, compute)
        results.append((cached, entry.arrays["x"].tobytes()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(c for c, _ in results) == [False, True, True, True]
    assert len({b for _, b in results}) == 1


def test_meta_json_is_readable_and_records_inputs(store: Store) -> None:
    inputs = {"region": "north", "speeds": (30.0, 50.0), "ids": np.arange(4), "p": Path("x/y")}
    key = make_key("meta", inputs)
    info = store.put(key, "meta", inputs, _arrays_of(), {"nan": float("nan"), "list": [1, 2]})
    assert info.path is not None
    record = json.loads((info.path / "meta.json").read_text())  # strict JSON, no pickle
    assert record["key"] == key
    assert record["kind"] == "meta"
    assert record["inputs"]["region"] == "north"
    assert record["inputs"]["speeds"] == [30.0, 50.0]
    assert record["inputs"]["p"] == os.fspath(Path("x/y"))
    assert record["inputs"]["ids"]["__ndarray__"]["shape"] == [4]
    assert record["meta"] == {"nan": "nan", "list": [1, 2]}
    assert record["created"].endswith("+00:00")
    assert record["size_bytes"] == info.size_bytes
    assert {"format", "format_version", "library_version"} <= set(record)
    f32 = record["arrays"]["f32"]
    assert f32["dtype"] == "<f4"
    assert f32["shape"] == [50, 7]
    assert len(f32["chunk_sha256"]) == 1
    # the array files are plain .npy files that numpy memory-maps without help
    loaded = np.load(info.path / "f32.npy", mmap_mode="r", allow_pickle=False)
    np.testing.assert_array_equal(loaded, _arrays_of()["f32"])
    full = store.info(key)
    assert full is not None
    assert full[1]["inputs"] == record["inputs"]


def test_invalid_keys_and_names_are_rejected(store: Store) -> None:
    for bad in ["", "A" * 3, "../etc", "a/b", "x"]:
        with pytest.raises(InvalidKeyError):
            store.put(bad, "k", {}, {"x": np.zeros(1)})
    with pytest.raises(InvalidKeyError):
        store.put("good-key", "k", {}, {"../x": np.zeros(1)})
    with pytest.raises(UnsupportedInputError, match="pickle"):
        store.put("good-key", "k", {}, {"x": np.array([{}, []], dtype=object)})
    assert store.ls() == []


# ---------------------------------------------------------------------------- corruption


def test_flipped_byte_is_detected_quarantined_and_recomputed(store: Store) -> None:
    key = make_key("flip", {})
    store.put(key, "flip", {}, _arrays_of(5))
    _flip_byte(_array_file(store, key, "f32"))
    with pytest.warns(
        CacheCorruptWarning, match=rf"cache entry {key} \(flip\) is corrupt.*quarantined at"
    ):
        assert store.get(key) is None
    assert not store.contains(key)
    assert store.ls() == []
    quarantined = list(store.quarantine_dir.iterdir())
    assert len(quarantined) == 1
    assert (quarantined[0] / "f32.npy").exists()
    _entry, cached = store.get_or_compute(key, "flip", {}, lambda: (_arrays_of(5), {}))
    assert not cached
    _assert_same(store.get(key).arrays, _arrays_of(5))  # type: ignore[union-attr]


def test_corruption_is_logged_at_warning_level(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.put("logged-key", "k", {}, _arrays_of())
    _flip_byte(_array_file(store, "logged-key", "i64"))
    with caplog.at_level(logging.WARNING, logger="cache"), pytest.warns(CacheCorruptWarning):
        assert store.get("logged-key", mmap=True) is None
    assert any(
        "is corrupt" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


def test_truncated_file_detected_even_without_verify(store: Store) -> None:
    store.put("trunc-key", "k", {}, _arrays_of())
    path = _array_file(store, "trunc-key", "f32")
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 10)
    with pytest.warns(CacheCorruptWarning, match="truncated"):
        assert store.get("trunc-key", verify=False) is None


@pytest.mark.parametrize("damage", ["meta_garbage", "meta_edit", "missing_array", "pointer"])
def test_damaged_entry_files_are_detected(store: Store, damage: str) -> None:
    info = store.put("dmg-key", "k", {}, _arrays_of())
    assert info.path is not None
    if damage == "meta_garbage":
        (info.path / "meta.json").write_text("{not json")
    elif damage == "meta_edit":
        record = json.loads((info.path / "meta.json").read_text())
        record["arrays"]["f32"]["shape"] = [7, 50]
        (info.path / "meta.json").write_text(json.dumps(record))
    elif damage == "missing_array":
        (info.path / "flags.npy").unlink()
    else:
        (info.path.parent / "current").write_text("garbage/../../x")
    with pytest.warns(CacheCorruptWarning):
        assert store.get("dmg-key") is None
    assert not store.contains("dmg-key")
    store.put("dmg-key", "k", {}, _arrays_of(9))  # the key is usable again
    _assert_same(store.get("dmg-key").arrays, _arrays_of(9))  # type: ignore[union-attr]


def test_partial_verify_of_mmapped_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_arrays, "CHUNK_BYTES", 1000)  # 250 float32 values per chunk
    matrix = np.arange(100 * 50, dtype=np.float32).reshape(100, 50)  # 200 B rows, 5 rows/chunk
    info = store.put("pv-key", "k", {}, {"m": matrix})
    assert info.path is not None
    record = json.loads((info.path / "meta.json").read_text())
    assert record["arrays"]["m"]["chunk_rows"] == 5
    assert len(record["arrays"]["m"]["chunk_sha256"]) == 20
    # damage row 47 (chunk 9) in place
    path = info.path / "m.npy"
    data = bytearray(path.read_bytes())
    data[record["arrays"]["m"]["data_offset"] + 47 * 200 + 3] ^= 0x01
    path.write_bytes(bytes(data))
    entry = store.get("pv-key", mmap=True, verify=False)
    assert entry is not None
    entry.verify_rows("m", 0, 45)
    entry.verify_rows("m", 50, 100)
    with pytest.warns(CacheCorruptWarning), pytest.raises(CacheCorruptError, match="rows 45:50"):
        entry.verify_rows("m", 40, 48)
    assert not store.contains("pv-key")


def test_verify_reports_and_quarantines(store: Store) -> None:
    for i in range(3):
        store.put(f"ver-{i}", "k", {}, _arrays_of(i))
    _flip_byte(_array_file(store, "ver-1", "flags"))
    report = store.verify()
    assert report.ok == ["ver-0", "ver-2"]
    assert report.corrupt == ["ver-1"]
    assert not report.all_ok
    assert store.verify(["ver-1"]).missing == ["ver-1"]
    assert [i.key for i in store.ls()] == ["ver-0", "ver-2"]


# ---------------------------------------------------------------------------- listing, pruning


def test_ls_info_total_size(store: Store) -> None:
    store.put("aa-1", "graph", {"r": 1}, {"x": np.zeros(1000)})
    store.put("bb-2", "matrix", {"r": 2}, {"x": np.zeros(10)})
    store.put("cc-3", "graph", {"r": 3}, {"x": np.zeros(10)})
    assert [i.key for i in store.ls()] == ["aa-1", "bb-2", "cc-3"]
    assert [i.key for i in store.ls(kind="graph")] == ["aa-1", "cc-3"]
    info, record = store.info("aa-1")  # type: ignore[misc]
    assert info.kind == "graph"
    assert info.size_bytes > 8000
    assert info.last_access is not None
    assert record["inputs"] == {"r": 1}
    assert store.info("zz-9") is None
    sizes = sum(i.size_bytes for i in store.ls())
    assert store.total_size() == sizes
    on_disk = sum(
        f.stat().st_size for f in store.entries_dir.rglob("*") if f.is_file() and "v-" in str(f)
    )
    assert sizes == on_disk


def test_prune_removes_least_recently_used_first(store: Store) -> None:
    for key in ["lru-a", "lru-b", "lru-c", "lru-d"]:
        store.put(key, "k", {}, {"x": np.zeros(25_000)})  # ~200 kB each
    size = store.info("lru-a")[0].size_bytes  # type: ignore[index]
    for key in ["lru-c", "lru-a", "lru-d", "lru-b"]:  # touch order: c is now the oldest
        assert store.get(key) is not None
    removed = store.prune(2 * size + 10)
    assert removed == ["lru-c", "lru-a"]
    assert store.total_size() <= 2 * size + 10
    assert [i.key for i in store.ls()] == ["lru-b", "lru-d"]
    assert store.prune(10 * size) == []
    assert store.prune("0") == ["lru-d", "lru-b"]
    assert store.total_size() == 0


def test_prune_never_removes_a_locked_entry(store: Store) -> None:
    store.put("lock-a", "k", {}, {"x": np.zeros(1000)})
    store.put("lock-b", "k", {}, {"x": np.zeros(1000)})
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.lock("lock-a"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        assert store.prune(0) == ["lock-b"]
        assert store.contains("lock-a")
        with pytest.raises(CacheLockTimeout, match="lock-a"), store.lock("lock-a", timeout=0.05):
            pass
    finally:
        release.set()
        t.join()
    assert store.prune(0) == ["lock-a"]


def test_clear_and_delete(store: Store) -> None:
    for i in range(3):
        store.put(f"clr-{i}", "k", {}, {"x": np.zeros(3)})
    assert store.delete("clr-0") is True
    assert store.delete("clr-0") is False
    assert sorted(store.clear()) == ["clr-1", "clr-2"]
    assert store.ls() == []
    assert store.total_size() == 0
    assert list(store.entries_dir.rglob("*.npy")) == []


def test_parse_size() -> None:
    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("500 MB") == 500 * 10**6
    assert parse_size("1.5GiB") == 3 * 2**29
    assert parse_size("10k") == 10_000
    assert parse_size("2 kib") == 2048
    assert parse_size(1000) == 1000
    assert parse_size(" 7 ") == 7
    for bad in ["", "GB", "5 XB", "-1", "1e3", "five", "1.2.3MB"]:
        with pytest.raises(InvalidSizeError):
            parse_size(bad)
    with pytest.raises(ValueError, match="must be >= 0"):
        parse_size(-5)
    with pytest.raises(ValueError, match="must be an int or a str"):
        parse_size(True)


def test_store_takes_its_folder_from_the_caller(tmp_path: Path) -> None:
    # the generic store knows no application: no default folder, no environment variable
    with pytest.raises(TypeError):
        Store()  # type: ignore[call-arg]
    assert Store(tmp_path / "here").root == (tmp_path / "here").resolve()


# ---------------------------------------------------------------------------- write failures


def test_put_raises_cache_write_error_when_rename_is_denied(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store.put("ro-key", "k", {}, {"x": np.arange(3)}, {"gen": 1})

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(args[0]))

    with monkeypatch.context() as m:
        m.setattr(os, "rename", denied)
        m.setattr(os, "replace", denied)
        with pytest.raises(CacheWriteError, match=str(store.root)) as exc_info:
            store.put("ro-key", "k", {}, {"x": np.arange(5)}, {"gen": 2})
        assert isinstance(exc_info.value, OSError)
        assert isinstance(exc_info.value, CacheError)
        assert exc_info.value.folder == store.root
        assert exc_info.value.errno == errno.EACCES
        with caplog.at_level(logging.WARNING, logger="cache"):
            entry, cached = store.get_or_compute(
                "new-key", "k", {}, lambda: ({"y": np.ones(4)}, {"m": 1})
            )
    assert not cached
    assert not entry.info.stored
    assert entry.info.path is None
    np.testing.assert_array_equal(entry.arrays["y"], np.ones(4))
    assert entry.meta == {"m": 1}
    assert any("without caching" in r.getMessage() for r in caplog.records)
    old = store.get("ro-key")  # the previous value is untouched
    assert old is not None
    assert old.meta == {"gen": 1}
    assert not store.contains("new-key")
    store.cleanup()
    assert os.listdir(store.tmp_dir) == []


def test_disk_full_while_writing_arrays(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = open

    def full_disk(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "x" in mode or "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(_arrays, "open", full_disk, raising=False)
    with pytest.raises(CacheWriteError, match=r"No space left.*") as exc_info:
        store.put("full-key", "k", {}, {"x": np.arange(3)})
    assert exc_info.value.errno == errno.ENOSPC
    assert str(store.root) in str(exc_info.value)
    entry, cached = store.get_or_compute("full-key", "k", {}, lambda: ({"x": np.arange(3)}, {}))
    assert not cached
    assert not entry.info.stored
    monkeypatch.undo()
    assert not store.contains("full-key")
    assert list(store.tmp_dir.iterdir()) == []


def test_readonly_store_reads_but_never_writes(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    Store(root).put("rdo-key", "k", {}, {"x": np.arange(3)})
    ro = Store(root, readonly=True)
    entry = ro.get("rdo-key")
    assert entry is not None
    np.testing.assert_array_equal(entry.arrays["x"], np.arange(3))
    assert [i.key for i in ro.ls()] == ["rdo-key"]
    with pytest.raises(CacheWriteError, match="read-only"):
        ro.put("rdo-key2", "k", {}, {"x": np.arange(3)})
    entry2, cached = ro.get_or_compute("rdo-key2", "k", {}, lambda: ({"x": np.zeros(2)}, {}))
    assert not cached
    assert not entry2.info.stored


# ---------------------------------------------------------------------------- cleanup


def test_cleanup_removes_leftovers_and_rebuilds_the_index(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    store = Store(root)
    for i in range(3):
        store.put(f"cln-{i}", "k", {"i": i}, {"x": np.full(4, i)})
    store.close()
    # a dead writer's temp folder (its lock file is free), an orphan version, a lost index
    (root / "tmp" / "put-dead-1").mkdir()
    (root / "tmp" / "put-dead-1" / "x.npy").write_bytes(b"partial")
    (root / "tmp" / "put-dead-1.lock").touch()
    edir = root / "entries" / "cl" / "cln-0"
    (edir / "v-20000101T000000Z-1-deadbeef").mkdir()
    # an entry folder whose first put died before its pointer was written
    (root / "entries" / "cl" / "cln-9" / "v-20000101T000000Z-1-cafecafe").mkdir(parents=True)
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    store = Store(root)  # cheap cleanup on open: temp swept, entries adopted
    assert os.listdir(root / "tmp") == []
    assert [i.key for i in store.ls()] == ["cln-0", "cln-1", "cln-2"]
    report = store.cleanup()
    assert report.orphans_removed == 2
    assert sorted(os.listdir(edir))[0] == "current"
    assert len(os.listdir(edir)) == 2
    assert not (root / "entries" / "cl" / "cln-9").exists()
    # a folder deleted behind the store's back drops out of the index
    import shutil

    shutil.rmtree(root / "entries" / "cl" / "cln-1")
    assert store.cleanup().index_dropped == 1
    assert [i.key for i in store.ls()] == ["cln-0", "cln-2"]
    for i in (0, 2):
        np.testing.assert_array_equal(store.get(f"cln-{i}").arrays["x"], np.full(4, i))  # type: ignore[union-attr]


def test_live_writer_temp_folder_is_not_swept(store: Store) -> None:
    with cache._fsio.TempDir(store.tmp_dir, "live") as tmp:
        (tmp.path / "a.npy").write_bytes(b"x")
        assert cache._fsio.sweep_temp(store.tmp_dir) == 0
        assert tmp.path.exists()
    assert os.listdir(store.tmp_dir) == []


def test_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    Store(root).put("idx-key", "k", {}, {"x": np.arange(2)})
    for name in ("index.sqlite-wal", "index.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    (root / "index.sqlite").write_bytes(b"this is not a database" * 100)
    store = Store(root)
    assert [i.key for i in store.ls()] == ["idx-key"]
    assert any(p.name.startswith("index-") for p in store.quarantine_dir.iterdir())


# ---------------------------------------------------------------------------- matrices

LABELS_R = np.array([f"z{i:05d}" for i in range(103)])
LABELS_C = np.arange(61) * 10


def _matrix(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((103, 61), dtype=np.float32)


def test_put_matrix_open_rows_take(store: Store) -> None:
    m = _matrix()
    info = put_matrix(
        store,
        "mat-key",
        "dtm",
        {"r": 1},
        m,
        row_labels=LABELS_R,
        col_labels=LABELS_C,
        block_rows=10,
        meta={"unit": "s"},
    )
    assert info.stored
    mat = open_matrix(store, "mat-key")
    assert mat is not None
    assert mat.shape == (103, 61)
    assert mat.dtype == np.float32
    assert mat.n_blocks == 11
    assert mat.meta == {"unit": "s"}
    np.testing.assert_array_equal(mat.row_labels, LABELS_R)
    np.testing.assert_array_equal(mat.col_labels, LABELS_C)
    for start, stop in [(0, 103), (5, 27), (100, 103), (30, 30), (-3, 103)]:
        np.testing.assert_array_equal(mat.rows(start, stop), m[start:stop])
    rows, cols = np.array([102, 0, 55, 55]), np.array([60, 3, 0])
    np.testing.assert_array_equal(mat.take(rows, cols), m[np.ix_(rows, cols)])
    np.testing.assert_array_equal(mat.take(None, cols), m[:, cols])
    np.testing.assert_array_equal(mat.take([-1]), m[[-1]])
    with pytest.raises(IndexError):
        mat.take([103])
    entry = store.get("mat-key")  # an ordinary entry too, fully verified
    assert entry is not None
    np.testing.assert_array_equal(entry.arrays["matrix"], m)
    store.put("plain-key", "k", {}, {"x": np.zeros(2)})
    with pytest.raises(MatrixError, match="not a matrix"):
        open_matrix(store, "plain-key")


def test_put_matrix_from_streamed_blocks(store: Store) -> None:
    m = _matrix(3).astype(np.float64)
    starts = [0, 17, 40, 41, 90]  # irregular heights, shuffled order
    stops = [*starts[1:], 103]
    blocks = [(s, m[s:e]) for s, e in zip(starts, stops, strict=True)]
    random.Random(1).shuffle(blocks)
    put_matrix(
        store,
        "stream-key",
        "dtm",
        {},
        iter(blocks),
        row_labels=LABELS_R,
        col_labels=LABELS_C,
        block_rows=8,
    )
    mat = open_matrix(store, "stream-key")
    assert mat is not None
    assert mat.dtype == np.float32
    np.testing.assert_array_equal(mat.rows(0, 103), m.astype(np.float32))
    mat.verify()
    with pytest.raises(MatrixError, match="never written"):
        put_matrix(
            store,
            "stream-bad",
            "dtm",
            {},
            iter(blocks[:-1]),
            row_labels=LABELS_R,
            col_labels=LABELS_C,
        )
    with pytest.raises(MatrixError, match="overlaps"):
        put_matrix(
            store,
            "stream-bad",
            "dtm",
            {},
            iter([*blocks, (0, m[:2])]),
            row_labels=LABELS_R,
            col_labels=LABELS_C,
        )
    with pytest.raises(MatrixError, match="shape"):
        put_matrix(store, "stream-bad", "dtm", {}, m[:5], row_labels=LABELS_R, col_labels=LABELS_C)
    assert not store.contains("stream-bad")
    assert os.listdir(store.tmp_dir) == []


def test_corrupt_matrix_block_fails_only_when_read(store: Store) -> None:
    m = _matrix(4)
    info = put_matrix(
        store, "cb-key", "dtm", {}, m, row_labels=LABELS_R, col_labels=LABELS_C, block_rows=10
    )
    assert info.path is not None
    record = json.loads((info.path / "meta.json").read_text())
    offset = record["arrays"]["matrix"]["data_offset"] + 45 * 61 * 4 + 8  # row 45: block 4
    path = info.path / "matrix.npy"
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    mat = open_matrix(store, "cb-key")
    assert mat is not None
    np.testing.assert_array_equal(mat.rows(0, 40), m[:40])
    np.testing.assert_array_equal(mat.rows(50, 103), m[50:])
    np.testing.assert_array_equal(mat.take([0, 60, 102], [1, 2]), m[np.ix_([0, 60, 102], [1, 2])])
    with pytest.warns(CacheCorruptWarning), pytest.raises(CacheCorruptError, match="rows 40:50"):
        mat.rows(38, 42)
    with pytest.raises(CacheCorruptError):
        mat.rows(0, 1)  # the entry is known to be broken now
    assert not store.contains("cb-key")
    assert open_matrix(store, "cb-key") is None


def test_partial_matrix_resume_and_finish(store: Store) -> None:
    m = _matrix(5)
    args = ("part-key", "dtm", {"r": 5}, (103, 61), LABELS_R, LABELS_C, 10)
    part = partial_matrix(store, *args)
    assert part.n_blocks == 11
    assert part.done_blocks() == set()
    for i in (0, 3, 10):
        s, e = part.block_range(i)
        part.write_block(i, m[s:e])
    with pytest.raises(IncompleteMatrixError, match="lacks 8 of 11"):
        part.finish()
    with pytest.raises(MatrixError, match="shape"):
        part.write_block(1, m[:3])
    del part
    resumed = partial_matrix(store, *args)  # e.g. after the process was killed
    assert resumed.done_blocks() == {0, 3, 10}
    assert resumed.missing_blocks() == [1, 2, 4, 5, 6, 7, 8, 9]
    for i in resumed.missing_blocks():
        s, e = resumed.block_range(i)
        resumed.write_block(i, m[s:e])
    resumed.write_block(3, m[30:40])  # rewriting a finished block is harmless
    info = resumed.finish(meta={"done": True})
    assert info.stored
    assert not resumed.folder.exists()
    mat = open_matrix(store, "part-key")
    assert mat is not None
    assert mat.meta == {"done": True}
    np.testing.assert_array_equal(mat.rows(0, 103), m)
    np.testing.assert_array_equal(mat.row_labels, LABELS_R)


def test_partial_matrix_mismatch_and_restart(store: Store) -> None:
    part = partial_matrix(store, "pm-key", "dtm", {}, (103, 61), LABELS_R, LABELS_C, 10)
    part.write_block(0, np.zeros((10, 61)))
    with pytest.raises(PartialMismatchError, match="block_rows"):
        partial_matrix(store, "pm-key", "dtm", {}, (103, 61), LABELS_R, LABELS_C, 20)
    with pytest.raises(PartialMismatchError, match="row_labels_sha256"):
        partial_matrix(store, "pm-key", "dtm", {}, (103, 61), LABELS_R[::-1], LABELS_C, 10)
    with pytest.raises(PartialMismatchError, match="inputs_key"):
        partial_matrix(store, "pm-key", "dtm", {"other": 1}, (103, 61), LABELS_R, LABELS_C, 10)
    fresh = partial_matrix(
        store, "pm-key", "dtm", {}, (103, 61), LABELS_R, LABELS_C, 20, restart=True
    )
    assert fresh.done_blocks() == set()
    assert fresh.block_rows == 20
    with pytest.raises(MatrixError, match="does not match"):
        partial_matrix(store, "pm-key2", "dtm", {}, (5, 61), LABELS_R, LABELS_C, 10)


def test_partial_matrix_corrupt_block_is_dropped_at_finish(store: Store) -> None:
    part = partial_matrix(store, "pc-key", "dtm", {}, (103, 61), LABELS_R, LABELS_C, 50)
    m = _matrix(6)
    for i in range(part.n_blocks):
        s, e = part.block_range(i)
        part.write_block(i, m[s:e])
    victim = next(part.folder.glob("block-000001-*.npy"))
    _flip_byte(victim, offset_from_end=5)
    with pytest.raises(CacheCorruptError, match="block 1"):
        part.finish()
    assert part.missing_blocks() == [1]
    part.write_block(1, m[50:100])
    part.finish()
    np.testing.assert_array_equal(open_matrix(store, "pc-key").rows(0, 103), m)  # type: ignore[union-attr]
