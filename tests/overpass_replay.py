"""A local replay server for the Overpass and Nominatim APIs, and a guard against the internet.

Tests of the download path point osmnx (through ``roadnet.settings.overpass_url`` /
``nominatim_url``) at a :class:`ReplayServer` on 127.0.0.1 that answers from recorded responses
in ``tests/data/`` (written by ``scripts/make_download_fixtures.py``):

``GET|POST /api/interpreter``
    The recorded Overpass JSON, cut to the query's ``(poly:"lat lon ...")`` area as Overpass
    does: the recorded ways with a node inside the polygon, and all the nodes of those ways.
    A query without a ``poly`` filter or not asking for ``[out:json]`` gets Overpass' ``400``.
``GET /api/status``
    Overpass' plain-text status page, with free slots (osmnx reads it before each query).
``GET /search``
    The recorded Nominatim result for the recorded place name (case and spaces ignored), ``[]``
    for any other query.
anything else
    ``404`` with a JSON body.

Every request is recorded (:attr:`ReplayServer.requests`) so that tests can check what osmnx
asked and how often. :attr:`ReplayServer.overpass_failure` makes the interpreter answer
``"http500"`` (status 500 with an HTML body) or ``"garbage"`` (status 200, a body that is not
JSON) instead.

:func:`guard_network` makes any connection to a host other than the loopback interface fail and
records it, so that a test that would reach the internet fails loudly even where a library
swallows the error. The pytest fixtures :func:`no_internet` and :func:`replay_server` wrap both;
import them into a test module or ``conftest.py`` to use them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import socket
import threading
import unicodedata
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = [
    "DATA_DIR",
    "InternetAccessError",
    "RecordedRequest",
    "ReplayServer",
    "guard_network",
    "no_internet",
    "query_polygons",
    "replay_server",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
FIXTURE_STEM = "andorra_la_vella"
_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    #: query-string parameters (``?a=1``), each a list of values
    params: dict[str, list[str]]
    #: form fields of a urlencoded POST body, each a list of values
    form: dict[str, list[str]]
    headers: dict[str, str]

    def value(self, name: str) -> str | None:
        """First value of a parameter, from the query string or else the form body."""
        values = self.params.get(name) or self.form.get(name)
        return values[0] if values else None


def _normalise_place(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.replace(",", " , ").split())


class ReplayServer:
    """Overpass + Nominatim replay server on ``127.0.0.1`` (OS-chosen port), in a daemon thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    data_dir
        Folder with ``<stem>_overpass.json``, ``<stem>_nominatim.json`` and
        ``<stem>_fixture.json``.
    stem
        Name stem of the recorded files.
    """

    def __init__(self, data_dir: Path = DATA_DIR, stem: str = FIXTURE_STEM) -> None:
        self.fixture: dict[str, Any] = json.loads((data_dir / f"{stem}_fixture.json").read_text())
        self.overpass: dict[str, Any] = json.loads(
            (data_dir / f"{stem}_overpass.json").read_text(encoding="utf-8")
        )
        self.nominatim: list[dict[str, Any]] = json.loads(
            (data_dir / f"{stem}_nominatim.json").read_text(encoding="utf-8")
        )
        self.place: str = self.fixture["place"]
        self.requests: list[RecordedRequest] = []
        #: ``None`` (replay), ``"http500"`` or ``"garbage"``: how the interpreter answers
        self.overpass_failure: str | None = None
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        nodes = [e for e in self.overpass["elements"] if e["type"] == "node"]
        self._coords = {e["id"]: (e["lon"], e["lat"]) for e in nodes}
        self._nodes = {e["id"]: e for e in nodes}
        self._ways = [e for e in self.overpass["elements"] if e["type"] == "way"]

    # -------------------------------------------------------------------- lifecycle
    def start(self) -> ReplayServer:
        server = self

        class Handler(_Handler):
            replay = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="overpass-replay",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------------- addresses
    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the replay server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def overpass_url(self) -> str:
        """Overpass endpoint (what ``roadnet.settings.overpass_url`` takes)."""
        return f"{self.base_url}/api"

    @property
    def nominatim_url(self) -> str:
        """Nominatim endpoint (what ``roadnet.settings.nominatim_url`` takes)."""
        return f"{self.base_url}/"

    # -------------------------------------------------------------------- records
    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path is ``path`` (e.g. ``"/api/interpreter"``)."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -------------------------------------------------------------------- answers
    @staticmethod
    def query_polygons(query: str) -> list[Any]:
        """The shapely polygons of the ``(poly:...)`` filters of an Overpass query."""
        return query_polygons(query)

    def search(self, params: dict[str, list[str]]) -> tuple[int, Any]:
        """Nominatim ``/search``: the recorded result for the recorded place, else ``[]``."""
        if params.get("format", ["json"])[0] not in {"json", "jsonv2"}:
            return 400, {"error": "the replay server answers format=json only"}
        query = (params.get("q") or [""])[0]
        if _normalise_place(query) == _normalise_place(self.place):
            return 200, self.nominatim
        return 200, []

    def interpret(self, query: str | None) -> tuple[int, str, bytes]:
        """Overpass ``/api/interpreter``: ``(status, content type, body)``."""
        if self.overpass_failure == "http500":
            body = b"<html><body><h1>500 Internal Server Error</h1></body></html>\n"
            return 500, "text/html; charset=utf-8", body
        if self.overpass_failure == "garbage":
            return 200, "application/json", b"\x00\x1f<osm>this is not JSON{{{"
        if self.overpass_failure is not None:
            raise ValueError(f"unknown overpass_failure {self.overpass_failure!r}")
        polygons = query_polygons(query or "")
        if not polygons or "[out:json]" not in (query or ""):
            body = (
                b'<html><body><p><strong style="color:#FF0000">Error</strong>: the replay '
                b"server only answers [out:json] queries with a (poly:...) filter</p>"
                b"</body></html>\n"
            )
            return 400, "text/html; charset=utf-8", body
        ways = [w for w in self._ways if any(self._inside(w, poly) for poly in polygons)]
        ids = sorted({nid for w in ways for nid in w["nodes"]})
        answer = {k: v for k, v in self.overpass.items() if k != "elements"}
        answer["elements"] = [self._nodes[i] for i in ids] + ways
        return 200, "application/json", json.dumps(answer).encode()

    def _inside(self, way: dict[str, Any], polygon: Any) -> bool:
        import shapely

        xy = [self._coords[nid] for nid in way["nodes"]]
        return bool(shapely.intersects_xy(polygon, [p[0] for p in xy], [p[1] for p in xy]).any())


def query_polygons(query: str) -> list[Any]:
    """The shapely polygons of the ``(poly:"lat lon lat lon ...")`` filters of a query."""
    import shapely

    polygons = []
    for text in re.findall(r"\(poly:\s*[\"']([^\"']*)[\"']\s*\)", query):
        values = [float(x) for x in text.split()]
        if len(values) < 6 or len(values) % 2:
            continue
        lat, lon = values[0::2], values[1::2]
        polygons.append(shapely.Polygon(list(zip(lon, lat, strict=True))))
    return polygons


class _Handler(BaseHTTPRequestHandler):
    replay: ReplayServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are recorded instead of printed."""

    def _record(self, form: dict[str, list[str]]) -> RecordedRequest:
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            params=parse_qs(parts.query, keep_blank_values=True),
            form=form,
            headers=dict(self.headers.items()),
        )
        self.replay.record(request)
        return request

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, "application/json; charset=utf-8", json.dumps(value).encode())

    def do_GET(self) -> None:
        self._answer(self._record({}))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        self._answer(self._record(parse_qs(body, keep_blank_values=True)))

    def _answer(self, request: RecordedRequest) -> None:
        path = request.path.rstrip("/") or "/"
        if path == "/api/interpreter":
            self._send(*self.replay.interpret(request.value("data")))
        elif path == "/api/status" and request.method == "GET":
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            text = (
                "Connected as: 2130706433\n"
                f"Current time: {now}\n"
                "Announced endpoint: none\n"
                "Rate limit: 2\n"
                "2 slots available now.\n"
                "Currently running queries (pid, space limit, time limit, start time):\n"
            )
            self._send(200, "text/plain; charset=utf-8", text.encode())
        elif path == "/search" and request.method == "GET":
            self._send_json(*self.replay.search(request.params))
        else:
            self._send_json(404, {"error": "not found", "path": request.path})


# ------------------------------------------------------------------------ network guard
class InternetAccessError(AssertionError):
    """Raised (and recorded) when code under test tries to reach a non-local host."""


def _is_local(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    return isinstance(host, str) and (host in _LOCAL_HOSTS or host.startswith("127."))


def guard_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse every connection to a host other than the loopback interface, for one test.

    Name lookups (``socket.getaddrinfo``, ``socket.gethostbyname``, and the copy of
    ``getaddrinfo`` that osmnx keeps for its DNS pinning) and ``socket.connect`` raise
    :class:`InternetAccessError` for any other host. Returns the list the attempts are recorded
    in: a library may catch the error, so check the list is empty at the end of the test.
    """
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    if getattr(real_getaddrinfo, "__module__", "socket") != "socket":
        # an earlier osmnx call left its DNS-pinning wrapper in place: wrap the function it
        # saved, not the wrapper (which would call back into ours without end)
        from osmnx import _http as _osmnx_http

        real_getaddrinfo = _osmnx_http._original_getaddrinfo
    real_gethostbyname = socket.gethostbyname
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def refuse(what: str) -> InternetAccessError:
        attempts.append(what)
        return InternetAccessError(f"a test tried to reach the internet: {what}")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host):
            raise refuse(f"getaddrinfo({host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host: str) -> str:
        if not _is_local(host):
            raise refuse(f"gethostbyname({host!r})")
        return real_gethostbyname(host)

    def check_address(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            raise refuse(f"connect({address!r})")

    def connect(self: socket.socket, address: Any) -> None:
        check_address(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check_address(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", gethostbyname)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    try:
        from osmnx import _http
    except ImportError:  # pragma: no cover - osmnx is a dependency
        pass
    else:
        # osmnx._http._config_dns replaces socket.getaddrinfo by a wrapper around the function
        # it saved at import time; guard that one too (monkeypatch restores both afterwards)
        monkeypatch.setattr(_http, "_original_getaddrinfo", getaddrinfo)
    return attempts


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test if anything tried to reach a host other than 127.0.0.1."""
    attempts = guard_network(monkeypatch)
    yield attempts
    assert not attempts, f"the test tried to reach the internet: {attempts}"


@pytest.fixture
def replay_server(
    no_internet: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ReplayServer]:
    """A running :class:`ReplayServer`, with roadnet pointed at it for the test.

    ``roadnet.settings`` gets the server's Overpass and Nominatim URLs and a fresh
    ``cache_dir`` (``tmp_path / "cache"``: osmnx's HTTP cache is ``<cache_dir>/osmnx-http``).
    The osmnx settings roadnet changes are restored afterwards.
    """
    import osmnx as ox

    import roadnet

    for name in (
        "overpass_url",
        "nominatim_url",
        "cache_folder",
        "use_cache",
        "log_console",
        "useful_tags_way",
        "all_oneway",
    ):
        monkeypatch.setattr(ox.settings, name, getattr(ox.settings, name))
    with (
        ReplayServer() as server,
        roadnet.settings.override(
            overpass_url=server.overpass_url,
            nominatim_url=server.nominatim_url,
            cache_dir=tmp_path / "cache",
            use_cache=True,
        ),
    ):
        yield server
