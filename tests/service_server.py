"""A real ``roadnet serve`` in a subprocess on 127.0.0.1 (a free port), for the service tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pyproj

from roadnet.graph import CompiledGraph
from roadnet.synthetic import synthetic_road_graph

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 180.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``roadnet serve ARGS`` on 127.0.0.1; :meth:`start` waits until ``/ready`` says 200."""

    def __init__(
        self, args: Sequence[str], cache_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.args = list(args)
        self.cache_dir = cache_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.env.pop("ROADNET_SERVICE_CONFIG", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = cache_dir / f"server-{self.port}.log"

    def start(self, headers: dict[str, str] | None = None) -> Server:
        cmd = [sys.executable, "-m", "territory.cli", "serve", *self.args,
               "--port", str(self.port), "--cache-dir", str(self.cache_dir)]  # fmt: skip
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=5.0, headers=headers) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{self.log.read_text()[-3000:]}")
                try:
                    if client.get(f"{self.url}/ready").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.2)  # polling readiness; no test result depends on this delay
        self.stop()
        raise RuntimeError(f"server not ready in {READY_TIMEOUT_S} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def two_islands(nodes: int = 400, seed: int = 3) -> CompiledGraph:
    """A synthetic road graph and a copy of it 5 km east with no road between them."""
    g = synthetic_road_graph(nodes, seed=seed)
    n, a = g.n_nodes, g.arc_u.shape[0]
    shift = float(g.x.max() - g.x.min()) + 5000.0
    arrays = g.arrays()
    out = {}
    for name, arr in arrays.items():
        second = arr.copy()
        if name in ("indices", "arc_u", "arc_v"):
            second = arr + n
        elif name == "arc_twin":
            second = np.where(arr >= 0, arr + a, -1).astype(arr.dtype)
        elif name == "csr_arc":
            second = arr + a
        elif name in ("x", "geom_x"):
            second = arr + shift
        elif name == "node_ids":
            second = arr + int(arr.max())
        elif name == "scc":
            second = arr + int(arr.max()) + 1
        elif name == "indptr" or name == "geom_indptr":
            second = arr[1:] + arr[-1]
        out[name] = np.concatenate([arr, second]).astype(arr.dtype)
    to_ll = pyproj.Transformer.from_crs(g.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(out["x"], out["y"])
    out["lon"], out["lat"] = np.asarray(lon), np.asarray(lat)
    meta = dict(g.meta)
    meta.pop("cache_key", None)
    meta["bbox"] = [float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))]
    return CompiledGraph.from_arrays(out, meta)
