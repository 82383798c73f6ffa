"""Contraction-hierarchy build: this code against a baseline commit, in the same run.

For the code of ``--baseline`` (a ``git archive`` copy; the work trees are not touched) and
for this checkout, one fresh process each, back to back (``--repeat`` times, alternating):
generate the synthetic graph (``roadnet.synthetic.synthetic_road_graph(n, seed=0)``), warm the
numba kernels on a 2,000-node graph, build the hierarchy with the defaults on ``--threads``
threads and report wall seconds, CPU seconds of the process (all threads: less disturbed by
other load than the wall time), peak RSS of the process, arcs, shortcuts, rounds; then a
``--table`` x ``--table`` drive-time table on the hierarchy (random nodes, seed 0; best of 3,
wall and CPU seconds, one thread). The tables of both builds are compared with each other and
``--check`` of their rows with scipy's Dijkstra on the graph (float32 rounding allowed).

Times on a shared machine are noisy: the script prints the load average before and after
each run. Usage::

    python scripts/bench_ch_build.py                          # 1M nodes, baseline 423de03
    python scripts/bench_ch_build.py --nodes 200000 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _provenance import code_at, code_version  # noqa: E402

#: main before the block adjacency and hop-limited priorities (issue 13 follow-up)
BASELINE_COMMIT = "423de03"


def _worker(a: argparse.Namespace) -> int:
    import numba

    from roadnet.ch import build_hierarchy
    from roadnet.synthetic import synthetic_road_graph

    numba.set_num_threads(a.threads)
    build_hierarchy(synthetic_road_graph(2000, seed=1), n_jobs=a.threads)  # compile / load
    g = synthetic_road_graph(a.nodes, seed=0)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    c0 = time.process_time()
    h = build_hierarchy(g, n_jobs=a.threads)
    res: dict[str, Any] = {
        "build_seconds": time.perf_counter() - t0,
        "build_cpu_seconds": time.process_time() - c0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "arcs": int(h.meta["n_arcs"]),
        "shortcuts": int(h.meta["n_shortcuts"]),
        "rounds": int(h.meta["rounds"]),
        "load_before": load0[0],
        "load_after": os.getloadavg()[0],
    }
    rng = np.random.default_rng(0)
    src = rng.choice(g.n_nodes, a.table, replace=False)
    dst = rng.choice(g.n_nodes, a.table, replace=False)
    walls, cpus = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        c0 = time.process_time()
        sec, _ = h.node_table(src, dst, n_jobs=1)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    res["table_seconds"] = min(walls)
    res["table_cpu_seconds"] = min(cpus)
    np.save(a.out.with_suffix(".npy"), sec)
    a.out.write_text(json.dumps(res))
    return 0


def _baseline_code(commit: str, workdir: Path) -> Path:
    """roadnet and cache at ``commit``, under ``workdir`` (:func:`_provenance.code_at`)."""
    return code_at(commit, workdir / f"baseline_{commit}")


def _run(code: Path, a: argparse.Namespace, out: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(code) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", "--out", str(out),
        "--nodes", str(a.nodes), "--threads", str(a.threads), "--table", str(a.table),
    ]  # fmt: skip
    subprocess.run(cmd, env=env, check=True)
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=1_000_000, help="synthetic graph nodes")
    ap.add_argument("--baseline", default=BASELINE_COMMIT, help="commit to compare with")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--table", type=int, default=1000, help="table sources = targets")
    ap.add_argument("--check", type=int, default=20, help="table rows checked by Dijkstra")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "roadnet_chb")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return _worker(a)
    a.workdir.mkdir(parents=True, exist_ok=True)
    codes = {"baseline": _baseline_code(a.baseline, a.workdir), "ours": ROOT}
    print(f"code {code_version()}; baseline {a.baseline}; load average {os.getloadavg()}")
    print(f"synthetic graph {a.nodes} nodes (seed 0), {a.threads} threads; times are noisy")
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "ours": []}
    for rep in range(a.repeat):
        for name, code in codes.items():
            res = _run(code, a, a.workdir / f"{name}_{rep}.json")
            runs[name].append(res)
            print(
                f"  {name:8s} build {res['build_seconds']:6.1f} s wall, "
                f"{res['build_cpu_seconds']:6.1f} CPU s, peak {res['peak_rss_mb']:.0f} MB, "
                f"{res['arcs']} arcs ({res['shortcuts']} shortcuts), {res['rounds']} rounds; "
                f"table {a.table}x{a.table} {res['table_seconds']:.3f} s "
                f"({res['table_cpu_seconds']:.3f} CPU s); load {res['load_before']:.2f} -> "
                f"{res['load_after']:.2f}",
                flush=True,
            )
    base_t = np.load(a.workdir / "baseline_0.npy")
    ours_t = np.load(a.workdir / "ours_0.npy")
    same_inf = bool(np.array_equal(np.isinf(base_t), np.isinf(ours_t)))
    fin = np.isfinite(base_t)
    rel = float(np.max(np.abs(base_t[fin] - ours_t[fin]) / np.maximum(base_t[fin], 1.0)))
    print(f"tables: same unreachable pairs {same_inf}, largest relative difference {rel:.2e}")
    if a.check:
        import scipy.sparse as sp
        from scipy.sparse.csgraph import dijkstra

        from roadnet.synthetic import synthetic_road_graph

        g = synthetic_road_graph(a.nodes, seed=0)
        rng = np.random.default_rng(0)
        src = rng.choice(g.n_nodes, a.table, replace=False)
        dst = rng.choice(g.n_nodes, a.table, replace=False)
        csr = sp.csr_matrix((g.seconds.astype(np.float64), g.indices, g.indptr))
        want = dijkstra(csr, indices=src[: a.check])[:, dst]
        got = ours_t[: a.check].astype(np.float64)
        ok = np.array_equal(np.isinf(got), np.isinf(want))
        w = np.isfinite(want)
        err = float(np.max(np.abs(got[w] - want[w]) / np.maximum(want[w], 1.0)))
        print(f"ours vs Dijkstra on {a.check} rows: same unreachable {ok}, max rel diff {err:.2e}")
    keys = ("build_seconds", "build_cpu_seconds", "peak_rss_mb", "shortcuts", "table_seconds")
    for key in (*keys, "table_cpu_seconds"):
        b = min(r[key] for r in runs["baseline"])
        o = min(r[key] for r in runs["ours"])
        print(f"  {key}: baseline {b:.4g}, ours {o:.4g}, baseline / ours = {b / o:.2f}x")
    print(f"load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
