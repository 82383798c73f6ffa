"""Scale proof: graph build memory and time for K tiled copies of a real extract.

For each K (default 1, 8, 64) the script writes ``K`` tiles of ``--source`` with
``scripts/make_big_pbf.py`` (reused when present), then in a **fresh process per run**:

* builds the graph with each reader and reports PBF size, raw and graph nodes, seconds, CPU
  seconds of the build (all threads; less disturbed by a loaded machine than the wall time),
  peak RSS of the whole process tree (the largest ``VmHWM`` of each
  process of the tree, summed: an upper bound when processes peak at different times) and
  bytes per graph node. Readers: ``osmium`` (the streaming reader), ``pyrosm`` (pyrosm used
  as leanly as today's pyrosm reader) and ``previous`` (roadnet's whole build before the
  streaming reader, run from a ``git archive`` of :data:`PREVIOUS_COMMIT`). pyrosm and the
  previous path are run up to ``--pyrosm-max-k`` / ``--previous-max-k``; above, their peak is
  extrapolated linearly in PBF size from the measured K (printed as such);
* builds the contraction hierarchy (ours, pandana CH, RoutingKit CCH where installed: the
  ``bench`` extra) on the 1M-node synthetic graph and on the largest K's graph, with the
  build's peak RSS and the stored hierarchy size;
* computes a ``--matrix`` x ``--matrix`` drive-time table end to end on the largest K's file
  (PBF -> graph -> snap -> hierarchy -> table, library calls in one fresh process).

Times on a shared machine are noisy (the script prints the load average); memory figures are
not affected. At K = 64 the previous build path needs ~7 GB and pyrosm ~4.5 GB (lower
``--previous-max-k`` / ``--pyrosm-max-k`` on a smaller machine: they are then extrapolated).
Usage::

    python scripts/bench_scale.py                       # K = 1, 8, 64 on Malta
    python scripts/bench_scale.py --k 1,8 --no-ch --no-matrix
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _provenance import code_at, code_version  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "osm"
#: roadnet's build path before the streaming reader (issue 13): the last commit whose
#: ``graph_from_pbf`` read every file with pyrosm (``get_network`` into pandas, then the build
#: path of that time). The issue's "125 MB per MB of PBF" was measured on it.
PREVIOUS_COMMIT = "6cd21cf77d5e13f0a230ee8a7a4671ff348342de"
READERS = ("osmium", "two-pass", "pyrosm", "previous")
PEERS = ("pandana", "pyroutingkit")
_WORK_CACHE = Path(tempfile.gettempdir()) / "roadnet_scale" / "cache"


# --------------------------------------------------------------------------- process memory
def _tree_pids(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _run_worker(
    args: list[str], timeout: float, code_root: Path = ROOT
) -> tuple[dict[str, Any], float]:
    """Run this script as a worker in a fresh process (importing roadnet from ``code_root``);
    returns its JSON and the tree peak MB."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args, "--out", str(out)]
    env = dict(
        os.environ, PYTHONPATH=str(code_root) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    env["ROADNET_CACHE_DIR"] = str(_WORK_CACHE)  # never the user's cache
    proc = subprocess.Popen(cmd, env=env)
    peaks: dict[int, int] = {}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for p in _tree_pids(proc.pid):
                peaks[p] = max(peaks.get(p, 0), _hwm_kb(p))
            stop.wait(0.05)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = -9
    stop.set()
    th.join()
    try:
        res = json.loads(out.read_text()) if rc == 0 else {"error": f"exit code {rc}"}
    except (OSError, ValueError):
        res = {"error": f"exit code {rc}, no result"}
    out.unlink(missing_ok=True)
    own = res.get("self_hwm_mb", 0.0)
    return res, max(sum(peaks.values()) / 1024, own)


def _self_hwm_mb() -> float:
    return _hwm_kb(os.getpid()) / 1024


# --------------------------------------------------------------------------- workers
def _worker(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("task", choices=["build", "floor", "floor-ways", "ch", "matrix"])
    ap.add_argument("--pbf", type=Path)
    ap.add_argument("--reader", default="osmium")
    ap.add_argument("--save", type=Path)
    ap.add_argument("--graph", default="")
    ap.add_argument("--engine", default="ours")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--clip", default="", help="W,S,E,N clip box (default buffer)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    res: dict[str, Any] = {}
    if a.task == "build":
        import roadnet

        clip = tuple(float(v) for v in a.clip.split(",")) if a.clip else None
        t0 = time.perf_counter()
        c0 = time.process_time()
        if a.reader == "previous":  # the old code (on PYTHONPATH) knows no reader or clip
            g = roadnet.graph_from_pbf(a.pbf)
        elif a.reader in ("osmium", "two-pass"):  # the location index, or two passes
            node_index = "two-pass" if a.reader == "two-pass" else None
            with roadnet.settings.override(pbf_node_locations="index"):
                g = roadnet.graph_from_pbf(a.pbf, reader="osmium", node_index=node_index, clip=clip)
        else:
            g = roadnet.graph_from_pbf(a.pbf, reader=a.reader, clip=clip)
        res["seconds"] = time.perf_counter() - t0
        res["cpu_seconds"] = time.process_time() - c0  # all threads (osmium decodes on 2)
        res["self_hwm_mb"] = _self_hwm_mb()
        res["raw_nodes"] = g.meta["counts"]["raw_nodes"]
        res["nodes"] = g.n_nodes
        res["arcs"] = int(g.indices.shape[0])
        if a.save:
            g.save(a.save)
    elif a.task in ("floor", "floor-ways"):
        # what every build of the file pays whatever it keeps: the build's imports and
        # osmium decoding every node and way of the file (in C++, no Python per object);
        # "floor-ways" adds what any clip with pyosmium pays: pyosmium has no spatial filter,
        # so every way with a highway tag reaches Python with its nodes' locations (the
        # location index of the one-pass reader) to be tested; here it is only touched
        t0 = time.perf_counter()
        c0 = time.process_time()
        import osmium
        import pyproj  # noqa: F401
        import shapely  # noqa: F401

        import roadnet.build
        import roadnet.sources

        res["import_seconds"] = time.perf_counter() - t0
        if a.task == "floor":
            osmium.apply(str(a.pbf), osmium.filter.EntityFilter(osmium.osm.NODE | osmium.osm.WAY))
        else:
            with roadnet.settings.override(pbf_node_locations="index"):  # the reader's index
                index = roadnet.sources.resolve_node_index(None, a.pbf)
            processor = (
                osmium.FileProcessor(str(a.pbf), osmium.osm.NODE | osmium.osm.WAY)
                .with_locations(index)
                .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                .with_filter(osmium.filter.KeyFilter("highway"))
            )
            res["ways"] = sum(1 for _ in processor)
        res["seconds"] = time.perf_counter() - t0
        res["cpu_seconds"] = time.process_time() - c0
        res["self_hwm_mb"] = _self_hwm_mb()
    elif a.task == "ch":
        res.update(_build_ch(a.graph, a.engine))
    else:
        res.update(_matrix(a.pbf, a.n))
    a.out.write_text(json.dumps(res))
    return 0


def _load_graph(spec: str) -> Any:
    if spec.startswith("synthetic:"):
        from roadnet.synthetic import synthetic_road_graph

        return synthetic_road_graph(int(spec.split(":")[1]), seed=0)
    from roadnet.graph import load_graph

    return load_graph(spec)


def _tails(indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))


def _build_ch(spec: str, engine: str) -> dict[str, Any]:
    g = _load_graph(spec)
    base = _self_hwm_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    out: dict[str, Any] = {"nodes": g.n_nodes}
    if engine in ("ours", "ours-serial"):
        from roadnet.ch import build_hierarchy

        h = build_hierarchy(g, parallel=engine == "ours")
        out["seconds"] = time.perf_counter() - t0
        out["stored_mb"] = sum(a.nbytes for a in h.arrays().values()) / 1e6
        out["arcs"] = h.n_arcs
        out["shortcuts"] = h.meta["n_shortcuts"]
        out["rounds"] = h.meta["rounds"]
    elif engine == "pandana":
        import pandana
        import pandas as pd

        pandana.Network(
            pd.Series(g.lon),
            pd.Series(g.lat),
            pd.Series(_tails(g.indptr)),
            pd.Series(g.indices.astype(np.int64)),
            pd.DataFrame({"seconds": g.seconds.astype(np.float64)}),
            twoway=False,
        )
        out["seconds"] = time.perf_counter() - t0
    else:
        import pyroutingkit

        cch = pyroutingkit.CCH()
        cch.build_topology(
            _tails(g.indptr).astype(np.uint32),
            g.indices.astype(np.uint32),
            g.lat.astype(np.float32),
            g.lon.astype(np.float32),
            g.n_nodes,
        )
        cch.customize_weights(np.rint(g.seconds.astype(np.float64) * 1000).astype(np.uint32))
        out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = time.process_time() - c0  # all threads of the process
    out["self_hwm_mb"] = _self_hwm_mb()
    out["graph_loaded_mb"] = base
    return out


def _matrix(pbf: Path, n: int) -> dict[str, Any]:
    import roadnet
    from roadnet.matrix import drive_time_matrix

    t0 = time.perf_counter()
    g = roadnet.graph_from_pbf(pbf)
    t_graph = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    pick = rng.choice(g.n_nodes, n, replace=False)
    pts = np.column_stack([g.lon[pick], g.lat[pick]]) + rng.normal(0, 2e-4, (n, 2))
    with tempfile.TemporaryDirectory() as fresh, roadnet.settings.override(cache_dir=Path(fresh)):
        m = drive_time_matrix(g, pts, engine="ch")  # the hierarchy is built, not read
    total = time.perf_counter() - t0
    sec = np.asarray(m.seconds)
    return {
        "seconds": total,
        "graph_seconds": t_graph,
        "nodes": g.n_nodes,
        "finite_share": float(np.isfinite(sec).mean()),
        "self_hwm_mb": _self_hwm_mb(),
    }


# --------------------------------------------------------------------------- driver
def _make(source: Path, k: int, workdir: Path) -> Path:
    out = workdir / f"{source.name.split('.')[0]}_x{k}.osm.pbf"
    if not out.exists():
        subprocess.run(
            [sys.executable, str(HERE / "make_big_pbf.py"), str(source), str(k), str(out)],
            check=True,
        )
    return out


def _previous_code(commit: str, workdir: Path) -> Path:
    """roadnet and cache at ``commit``, under ``workdir`` (:func:`_provenance.code_at`)."""
    return code_at(commit, workdir / f"previous_{commit[:12]}")


def _clip_case(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """Areas covering one tile of the K-tile file (a "Connecticut in the US-Northeast" case):
    the streaming reader's builds clipped to the source extract's box with the default 20 km
    buffer, against the unclipped build of the same reader; and the floor every build of the
    file pays (the build's imports, osmium decoding the whole file), which bounds the
    clipped / unclipped ratios from below."""
    import osmium

    k = args.clip_k
    pbf = _make(args.source, k, args.workdir)
    lon_min = lat_min = float("inf")
    lon_max = lat_max = float("-inf")
    for node in osmium.FileProcessor(str(args.source), osmium.osm.NODE):
        loc = node.location
        if loc.valid():
            lon_min, lon_max = min(lon_min, loc.lon), max(lon_max, loc.lon)
            lat_min, lat_max = min(lat_min, loc.lat), max(lat_max, loc.lat)
    box = f"{lon_min},{lat_min},{lon_max},{lat_max}"
    print(f"\nclip: K={k} file, areas = tile 0 ({box}), default 20 km buffer")
    if not any(r["k"] == k and r["reader"] in ("osmium", "two-pass") and "nodes" in r
               for r in rows):  # fmt: skip
        print("  no unclipped osmium or two-pass build of this file to compare with")
        return
    floor, floor_tree = _run_worker(["floor", "--pbf", str(pbf)], args.timeout)
    if "error" not in floor:
        print(
            f"  floor (imports {floor['import_seconds']:.1f} s + osmium decoding the whole file "
            f"in C++): {floor['seconds']:.1f} s ({floor['cpu_seconds']:.1f} CPU s), peak "
            f"{floor_tree:.0f} MB"
        )
    ways, ways_tree = _run_worker(["floor-ways", "--pbf", str(pbf)], args.timeout)
    if "error" not in ways:
        print(
            f"  floor of a clip with pyosmium (the above + the location index + each of the "
            f"{ways['ways']} highway ways reaching Python, untouched): {ways['seconds']:.1f} s "
            f"({ways['cpu_seconds']:.1f} CPU s), peak {ways_tree:.0f} MB"
        )
    for reader in ("osmium", "two-pass"):
        full = next(
            (r for r in rows if r["k"] == k and r["reader"] == reader and "nodes" in r), None
        )
        if full is None:
            continue
        res, tree = _run_worker(
            ["build", "--pbf", str(pbf), "--reader", reader, "--clip", box], args.timeout
        )
        if "error" in res:
            print(f"  {reader}: {res['error']}")
            continue
        print(
            f"  {reader}: clipped {res['nodes']} graph nodes, {res['seconds']:.1f} s "
            f"({res['cpu_seconds']:.1f} CPU s), peak {tree:.0f} MB; unclipped {full['nodes']} "
            f"nodes, {full['seconds']:.1f} s ({full['cpu_seconds']:.1f} CPU s), peak "
            f"{full['tree_mb']:.0f} MB"
        )
        print(
            f"  {reader}: clipped / unclipped: nodes {res['nodes'] / full['nodes']:.2f}, time "
            f"{res['seconds'] / full['seconds']:.2f}, CPU time "
            f"{res['cpu_seconds'] / full['cpu_seconds']:.2f}, peak memory "
            f"{tree / full['tree_mb']:.2f}"
        )
        floors = [("floor", floor, floor_tree)]
        if reader == "osmium":  # the one-pass reader's own floor: index + every highway way
            floors.append(("pyosmium clip floor", ways, ways_tree))
        for name, fl, fl_tree in floors:
            if "error" not in fl:
                print(
                    f"  {reader}: {name} / unclipped (no such clipped build of this file can go "
                    f"below): time {fl['seconds'] / full['seconds']:.2f}, CPU time "
                    f"{fl['cpu_seconds'] / full['cpu_seconds']:.2f}, peak memory "
                    f"{fl_tree / full['tree_mb']:.2f}"
                )


def _fmt_row(cells: list[Any], widths: list[int]) -> str:
    return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return _worker(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=SHARED / "malta-latest.osm.pbf")
    ap.add_argument("--k", default="1,8,64", help="tile counts, comma-separated")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "roadnet_scale")
    ap.add_argument("--readers", default=",".join(READERS), help="graph readers to run")
    ap.add_argument("--pyrosm-max-k", type=int, default=64)
    ap.add_argument("--previous", default=PREVIOUS_COMMIT, help="commit of the previous build")
    ap.add_argument("--previous-max-k", type=int, default=64)
    ap.add_argument("--synthetic-nodes", type=int, default=1_000_000)
    ap.add_argument("--matrix", type=int, default=5000)
    ap.add_argument("--no-ch", action="store_true", help="skip the hierarchy builds")
    ap.add_argument("--peers", default=",".join(PEERS), help="hierarchy peers to run")
    ap.add_argument(
        "--clip-k",
        type=int,
        default=8,
        help="clip test: the K whose file is clipped to its first tile (0 = skip)",
    )
    ap.add_argument("--no-matrix", action="store_true", help="skip the end-to-end table")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    args = ap.parse_args(argv)
    ks = sorted({int(x) for x in args.k.split(",")})
    args.workdir.mkdir(parents=True, exist_ok=True)
    global _WORK_CACHE
    _WORK_CACHE = args.workdir / "cache"
    print(f"code {code_version('roadnet', 'scripts')}; load average {os.getloadavg()}")
    print(f"cores {os.cpu_count()}; source {args.source.name}; times are noisy on a shared machine")

    rows = []
    graphs: dict[int, Path] = {}
    readers = [r for r in args.readers.split(",") if r in READERS]
    max_k = {
        "osmium": max(ks),
        "two-pass": max(ks),
        "pyrosm": args.pyrosm_max_k,
        "previous": args.previous_max_k,
    }
    previous_root = _previous_code(args.previous, args.workdir) if "previous" in readers else ROOT
    for k in ks:
        pbf = _make(args.source, k, args.workdir)
        mb = pbf.stat().st_size / 1e6
        for reader in readers:
            if k > max_k[reader]:
                rows.append({"k": k, "mb": mb, "reader": reader, "skipped": True})
                continue
            save = args.workdir / f"graph_x{k}.npz" if reader == "osmium" else None
            extra = ["--save", str(save)] if save else []
            res, tree = _run_worker(
                ["build", "--pbf", str(pbf), "--reader", reader, *extra],
                args.timeout,
                code_root=previous_root if reader == "previous" else ROOT,
            )
            if save and "error" not in res:
                graphs[k] = save
            rows.append({"k": k, "mb": mb, "reader": reader, "tree_mb": tree, **res})
            print(f"  K={k} {reader}: {json.dumps(res)} tree peak {tree:.0f} MB", flush=True)

    # extrapolation of a reader not run at some K: peak MB linear in PBF MB through its runs
    fits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for reader in readers:
        meas = [(r["mb"], r["tree_mb"], r["seconds"]) for r in rows if r["reader"] == reader
                and "tree_mb" in r and "error" not in r]  # fmt: skip
        if len(meas) >= 2:
            x = np.array([m[0] for m in meas])
            fits[reader] = (np.polyfit(x, [m[1] for m in meas], 1),
                            np.polyfit(x, [m[2] for m in meas], 1))  # fmt: skip
    print()
    print("readers: osmium = streaming reader (osmium's location index of every file node); "
          "two-pass = streaming reader, no index (road nodes' coordinates in a second pass); "
          "pyrosm = pyrosm used leanly (today's pyrosm reader); "
          f"previous = roadnet's graph_from_pbf at commit {args.previous[:7]}"
          + (" (the build before the streaming reader: pyrosm get_network + the build path of "
             "that time)" if PREVIOUS_COMMIT.startswith(args.previous) else ""))  # fmt: skip
    head = ["K", "PBF MB", "reader", "raw nodes", "graph nodes", "seconds", "CPU s", "peak MB",
            "B/graph node"]  # fmt: skip
    widths = [3, 7, 8, 10, 11, 8, 7, 8, 12]
    print(_fmt_row(head, widths))
    for r in rows:
        if r.get("skipped"):
            fit = fits.get(r["reader"])
            if fit is None:
                cells = [r["k"], f"{r['mb']:.1f}", r["reader"], "-", "-", "-", "-", "not run",
                         "-"]  # fmt: skip
            else:
                mb_fit = float(np.polyval(fit[0], r["mb"]))
                s_fit = float(np.polyval(fit[1], r["mb"]))
                r["tree_mb_extrapolated"] = mb_fit
                cells = [r["k"], f"{r['mb']:.1f}", r["reader"], "-", "-", f"~{s_fit:.0f}*", "-",
                         f"~{mb_fit:.0f}*", "-"]  # fmt: skip
        elif "error" in r:
            cells = [r["k"], f"{r['mb']:.1f}", r["reader"], "-", "-", "-", "-", r["error"], "-"]
        else:
            cells = [r["k"], f"{r['mb']:.1f}", r["reader"], r["raw_nodes"], r["nodes"],
                     f"{r['seconds']:.1f}", f"{r.get('cpu_seconds', float('nan')):.1f}",
                     f"{r['tree_mb']:.0f}",
                     f"{r['tree_mb'] * 2**20 / r['nodes']:.0f}"]  # fmt: skip
        print(_fmt_row(cells, widths))
    for reader, fit in fits.items():
        if any(r.get("skipped") and r["reader"] == reader for r in rows):
            print(f"  * {reader} extrapolated linearly in PBF MB from its measured runs "
                  f"(peak MB = {fit[0][1]:.0f} + {fit[0][0]:.1f} x PBF MB)")  # fmt: skip
    names = {"pyrosm": "pyrosm used leanly (today's pyrosm reader)",
             "previous": "roadnet's previous pyrosm build path"
             if PREVIOUS_COMMIT.startswith(args.previous)
             else f"roadnet at {args.previous[:7]}"}  # fmt: skip
    for k in ks:
        o = next(
            (r for r in rows if r["k"] == k and r["reader"] == "osmium" and "nodes" in r), None
        )
        for reader in ("previous", "pyrosm"):
            p = next((r for r in rows if r["k"] == k and r["reader"] == reader), None)
            if o and p:
                pm = p.get("tree_mb", p.get("tree_mb_extrapolated"))
                how = "extrapolated" if p.get("skipped") else "measured"
                if pm:
                    print(
                        f"  K={k}: peak memory of {names[reader]} / osmium = "
                        f"{pm / o['tree_mb']:.1f}x ({how})"
                    )

    if args.clip_k and args.clip_k in ks and args.clip_k > 1:
        _clip_case(args, rows)

    ch_rows = []
    if not args.no_ch:
        print("\nhierarchy build (fresh process each; peers where installed)")
        specs = [f"synthetic:{args.synthetic_nodes}"]
        if graphs:
            specs.append(str(graphs[max(graphs)]))
        for spec in specs:
            peers = [p for p in args.peers.split(",") if p in PEERS]
            for engine in ("ours", *peers):
                if engine in PEERS:
                    try:
                        __import__(engine)
                    except ImportError:
                        print(f"  {engine}: not installed (pip install -e '.[bench]'), skipped")
                        continue
                res, tree = _run_worker(["ch", "--graph", spec, "--engine", engine], args.timeout)
                ch_rows.append({"graph": spec, "engine": engine, "tree_mb": tree, **res})
                name = Path(spec).name if not spec.startswith("synthetic") else spec
                if "error" in res:
                    print(f"  {name} {engine}: {res['error']}")
                    continue
                extra = (f", {res['arcs']} arcs ({res['shortcuts']} shortcuts), stored "
                         f"{res['stored_mb']:.0f} MB, {res['rounds']} rounds"
                         if engine == "ours" else "")  # fmt: skip
                print(f"  {name} ({res['nodes']} nodes) {engine}: build {res['seconds']:.1f} s "
                      f"({res['cpu_seconds']:.1f} CPU s), peak {tree:.0f} MB "
                      f"(graph loaded: {res['graph_loaded_mb']:.0f} MB)"
                      f"{extra}", flush=True)  # fmt: skip
        for spec in specs:
            ours = next((r for r in ch_rows if r["graph"] == spec and r["engine"] == "ours"
                         and "seconds" in r), None)  # fmt: skip
            for r in ch_rows:
                if r["graph"] == spec and r["engine"] != "ours" and "seconds" in r and ours:
                    print(
                        f"  {Path(spec).name}: {r['engine']} build / ours = "
                        f"{r['seconds'] / ours['seconds']:.2f}x (CPU seconds "
                        f"{r['cpu_seconds'] / ours['cpu_seconds']:.2f}x)"
                    )

    if not args.no_matrix:
        big = _make(args.source, max(ks), args.workdir)
        res, tree = _run_worker(["matrix", "--pbf", str(big), "--n", str(args.matrix)],
                                args.timeout)  # fmt: skip
        print(f"\n{args.matrix}x{args.matrix} table end to end on {big.name}: {json.dumps(res)}, "
              f"tree peak {tree:.0f} MB")  # fmt: skip
    print(f"\nload average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
