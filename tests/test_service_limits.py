"""The service's safety parts in process: the bounded work queue, its time limit, the token."""

from __future__ import annotations

import asyncio
import threading

import pytest

from territory.exceptions import RequestError
from territory.service.limits import WorkQueue, token_matches


def test_full_queue_refuses_with_retry_after() -> None:
    release = threading.Event()
    started = threading.Event()

    def hold() -> str:
        started.set()
        release.wait(30)
        return "done"

    async def scenario() -> tuple[str, RequestError]:
        q = WorkQueue(slots=1, max_waiting=0, time_limit=60)
        first = asyncio.ensure_future(q.run(hold))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
        with pytest.raises(RequestError) as refused:
            await q.run(lambda: "never")
        release.set()
        result = await first
        q.close()
        return result, refused.value

    result, exc = asyncio.run(scenario())
    assert result == "done"
    assert exc.status == 503 and exc.code == "Busy" and exc.headers["Retry-After"] == "1"


def test_time_limit_answers_503_and_the_waiting_work_never_runs() -> None:
    release = threading.Event()
    started = threading.Event()
    ran: list[str] = []

    def hold() -> None:
        started.set()
        release.wait(30)

    async def scenario() -> RequestError:
        q = WorkQueue(slots=1, max_waiting=4, time_limit=0.2)
        first = asyncio.ensure_future(q.run(hold))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
        with pytest.raises(RequestError) as late:
            await q.run(lambda: ran.append("late"))
        release.set()
        with pytest.raises(RequestError):
            await first  # its limit started earlier and ran out while it was held
        q.close(wait=True)  # the abandoned work has had its turn
        return late.value

    exc = asyncio.run(scenario())
    assert exc.status == 503 and exc.code == "Timeout" and "Retry-After" in exc.headers
    assert ran == []


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer abc", True),
        ("Bearer abd", False),
        ("abc", False),
        (None, False),
        ("Bearer ", False),
    ],
)
def test_token_matches(header: str | None, ok: bool) -> None:
    assert token_matches(header, "abc") is ok
