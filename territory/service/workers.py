"""The worker processes of ``roadnet serve --workers N``: one listening socket each.

uvicorn's own ``--workers`` shares one listening socket between the processes, and the first
process to wake up accepts every connection waiting (its event loop accepts until none is
left): 50 clients that connect at once end up mostly on one worker while the other idles, and
their requests queue behind each other. Here every worker binds its own socket to the same
address with ``SO_REUSEPORT``, and the kernel spreads new connections over the sockets by a
hash of the client's address and port.

(Linux lets only processes of the same user join such a group of sockets.)
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from typing import Any

__all__ = ["listening_socket", "run_workers"]

log = logging.getLogger(__name__)

#: A worker that ends within this many seconds of its start is not restarted: the server stops
#: (the app or the address is broken and would fail the same way again).
_STARTUP_S = 30.0
_GRACE_S = 10.0


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket listening on ``host:port`` that other sockets may share (``SO_REUSEPORT``).

    Raises
    ------
    OSError
        When the address cannot be bound (in use without ``SO_REUSEPORT``, not local, ...).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _worker(uvicorn_kwargs: dict[str, Any], host: str, port: int) -> None:  # pragma: no cover
    """One worker process: its own socket, one uvicorn server (runs in a spawned process)."""
    import uvicorn

    sock = listening_socket(host, port)
    uvicorn.Server(uvicorn.Config(**uvicorn_kwargs)).run(sockets=[sock])


def run_workers(uvicorn_kwargs: dict[str, Any], host: str, port: int, workers: int) -> int:
    """Run ``workers`` uvicorn servers on ``host:port`` until SIGINT/SIGTERM; restart a worker
    that dies after it started. Returns the exit code (1 when a worker failed at start-up).

    Raises
    ------
    OSError
        When the address cannot be bound (checked once before the workers start).
    """
    listening_socket(host, port).close()  # fail here, with the reason, not in every worker
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()
    failed = False

    def start() -> tuple[Any, float]:
        proc = ctx.Process(target=_worker, args=(uvicorn_kwargs, host, port), daemon=False)
        proc.start()
        return proc, time.monotonic()

    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    procs = [start() for _ in range(workers)]
    try:
        while not stop.wait(0.5):
            for i, (proc, started) in enumerate(procs):
                if proc.is_alive():
                    continue
                if time.monotonic() - started < _STARTUP_S:
                    log.error("worker %s ended at start-up (exit code %s)", proc.pid, proc.exitcode)
                    failed = True
                    stop.set()
                    break
                log.warning("worker %s died (exit code %s); starting another", proc.pid,
                            proc.exitcode)  # fmt: skip
                procs[i] = start()
    finally:
        for proc, _ in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn shuts down gracefully
        deadline = time.monotonic() + _GRACE_S
        for proc, _ in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0
