"""Safety of the service: a bounded queue for heavy work, time limits, body size, bearer token.

Heavy work (large tables, routes, matrices) runs in ``slots`` worker threads (one by default:
one process never runs two kernels at once). At most ``max_waiting`` more requests wait, in the
pool's queue and not in threads of their own (every thread would keep its own allocator arena:
50 waiting requests grew a server by 60 MB); beyond that a request is answered at once with
503 and ``Retry-After`` instead of piling up. A request that waits and runs longer than
``time_limit`` seconds is answered with 503 (``Timeout``); if it had not started yet it never
will.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from territory.exceptions import RequestError

__all__ = ["BodyLimit", "WorkQueue", "token_matches"]

T = TypeVar("T")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant-time compare)."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


class WorkQueue:
    """Runs blocking work in threads, ``slots`` at a time, with a bounded wait and a time limit.

    Parameters
    ----------
    slots
        Work items running at once.
    max_waiting
        Requests allowed to wait for a slot; more are refused (503 + ``Retry-After``).
    time_limit
        Seconds a request may wait and run before it is answered with 503 (``Timeout``).
    """

    def __init__(self, slots: int = 1, max_waiting: int = 64, time_limit: float = 30.0) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self.time_limit = time_limit
        self._lock = threading.Lock()
        self._admitted = 0
        # `slots` threads; waiting work waits in the executor's queue (first come, first served)
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="work")

    @property
    def depth(self) -> int:
        """Requests waiting or running."""
        return self._admitted

    def close(self, wait: bool = False) -> None:
        """Stop the threads (work in progress finishes; ``wait`` for it)."""
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, within the queue's limits."""
        with self._lock:
            if self._admitted >= self.slots + self.max_waiting:
                raise RequestError(
                    "Busy",
                    f"the server is busy ({self._admitted} requests queued or running); retry "
                    "after the time in Retry-After",
                    503,
                    {"Retry-After": "1"},
                )
            self._admitted += 1
        given_up = threading.Event()

        def work() -> T | None:
            try:
                if given_up.is_set():
                    return None
                return fn(*args)
            finally:
                with self._lock:
                    self._admitted -= 1

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, work)
        try:
            return cast(T, await asyncio.wait_for(asyncio.shield(future), self.time_limit))
        except TimeoutError:
            given_up.set()
            future.add_done_callback(_swallow)
            raise RequestError(
                "Timeout",
                f"the request took longer than the server's limit of {self.time_limit:g} s",
                503,
                {"Retry-After": "5"},
            ) from None


def _swallow(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so that asyncio does not log it


class BodyLimit:
    """ASGI middleware: request bodies over ``max_bytes`` get 413 with a JSON error."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    size = -1
                if size < 0 or size > self.max_bytes:
                    await self._refuse(send, size)
                    return
        seen = 0
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLargeError(seen)
            return message

        try:
            await self.app(scope, counted, guarded_send)
        except _TooLargeError as exc:
            if not started:
                await self._refuse(send, exc.size)

    async def _refuse(self, send: Send, size: int) -> None:
        body = json.dumps(
            {
                "code": "TooBig",
                "message": f"request body of {size} bytes is larger than the server's limit of "
                f"{self.max_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLargeError(Exception):
    def __init__(self, size: int) -> None:
        self.size = size
