"""A persistent, crash-safe store of numpy arrays with JSON metadata.

Layout on disk
--------------
::

    <root>/
        index.sqlite               SQLite (WAL) index: key, kind, version, size, last access
        entries/<key[:2]>/<key>/   one folder per entry
            current                pointer file: the name of the live version folder
            v-<utc>-<pid>-<rand>/  the live version: meta.json + one <name>.npy per array
        tmp/                       folders being written (+ <name>.lock held by their writer)
        quarantine/                corrupt versions moved aside for inspection
        locks/<key>.lock           cross-process key locks (filelock)
        partial/<key>/             resumable matrices (see :mod:`cache.matrix`)

Atomicity
---------
An entry is never modified in place. :meth:`Store.put` writes every array file and
``meta.json`` into a fresh folder under ``tmp/``, fsyncs the files and the folder, renames the
folder into the entry folder as a new *version* folder (same file system, so the rename is
atomic) and fsyncs the entry folder. It then switches the one-line pointer file ``current`` to
the new version by writing ``current`` anew in a temp file, fsyncing it and :func:`os.replace`-ing
it over the old pointer, and fsyncs the entry folder again. Only then are the previous version
folder removed and the SQLite index updated. A crash at any moment therefore leaves ``current``
naming either the old or the new complete version; leftovers (a temp folder, a version folder
that never became current) are removed by :meth:`Store.cleanup`. Writers of one key are
serialised by the key's file lock; readers take no lock: they read ``current`` and then the
version's files, and if those vanish under them (a writer replaced the version meanwhile) they
read the pointer again.

The folders are the truth and the SQLite index is a cache of them: it is updated after the
folders, repaired on read, and rebuilt from ``meta.json`` files by :meth:`Store.cleanup`.

Integrity
---------
``meta.json`` carries its own SHA-256 and, for each array, the SHA-256 of the ``.npy`` header
and of every chunk of rows (about 4 MiB, or one row block of a matrix). A read that finds a
mismatch, a missing file or an unreadable ``meta.json`` moves the version folder to
``quarantine/``, drops the entry from the index, logs a warning, emits a
:class:`~cache.exceptions.CacheCorruptWarning` and reports a miss.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import sqlite3
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import filelock
import numpy as np
import numpy.typing as npt

from cache._arrays import (
    as_stored_array,
    bad_chunk_message,
    check_array_name,
    chunks_for_rows,
    first_bad_chunk,
    load_array,
    row_count,
    validate_array_record,
    write_array_file,
)
from cache._fsio import (
    STRAY_AGE_S,
    TempDir,
    fsync_dir,
    mkdir_durable,
    remove_tree,
    sweep_temp,
    unique_name,
    write_atomic,
)
from cache._index import Index, IndexRow
from cache._pause import pause_point
from cache.exceptions import (
    CacheCorruptError,
    CacheCorruptWarning,
    CacheError,
    CacheLockTimeout,
    CacheWriteError,
    InvalidKeyError,
    UnsupportedInputError,
)
from cache.keys import readable_inputs, readable_meta
from cache.sizes import parse_size

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CleanupReport",
    "Entry",
    "EntryInfo",
    "Store",
    "VerifyReport",
]

logger = logging.getLogger(__name__)

#: Written into every ``meta.json`` as ``format``.
FORMAT_NAME = "array-cache-entry"
#: Version of the on-disk entry format; entries of a newer format are treated as misses.
FORMAT_VERSION = 1
#: Version of this package, recorded in ``meta.json``.
LIBRARY_VERSION = "0.1.0"

POINTER = "current"
META_FILE = "meta.json"
#: Quarantined items older than this are removed by :meth:`Store.cleanup` (seconds).
QUARANTINE_MAX_AGE_S = 30 * 86400.0

_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,127}$")
_VERSION_RE = re.compile(r"^v-[0-9A-Za-z-]{1,100}$")
_MAX_RETRIES = 8

_T = TypeVar("_T")


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _external_stacklevel() -> int:
    """``stacklevel`` that attributes a warning to the first caller outside this package."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and (
        os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR
    ):
        frame = frame.f_back
        level += 1
    return level


def _utc_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def check_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise InvalidKeyError(
            f"cache key {key!r} is not valid; use 2-128 characters from a-z 0-9 _ . - starting "
            "with a letter or digit (make_key() returns such keys)"
        )
    return key


def check_kind(kind: object) -> str:
    if not isinstance(kind, str) or not kind.strip() or len(kind) > 200 or not kind.isprintable():
        raise InvalidKeyError(
            f"kind {kind!r} is not valid; use a short printable name such as 'drive_time_matrix'"
        )
    return kind


def _dump_json(obj: Any, *, indent: int | None = None) -> str:
    if indent is None:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return json.dumps(obj, sort_keys=True, indent=indent, allow_nan=False)


def _record_checksum(record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(_dump_json(body).encode("utf-8")).hexdigest()


class _NewerFormatError(Exception):
    """An entry was written by a newer format version; it is skipped, not quarantined."""


def _read_record(vdir: Path, key: str) -> dict[str, Any]:
    """Read and validate a version folder's ``meta.json``."""
    raw = (vdir / META_FILE).read_bytes()
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheCorruptError(f"{META_FILE} is not valid JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT_NAME:
        raise CacheCorruptError(f"{META_FILE} is not a cache entry record")
    version = record.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise _NewerFormatError(
            f"entry {key} has format version {version}; this library reads {FORMAT_VERSION}"
        )
    if record.get("checksum") != _record_checksum(record):
        raise CacheCorruptError(f"{META_FILE} does not match its checksum")
    if record.get("key") != key or record.get("version") != vdir.name:
        raise CacheCorruptError(f"{META_FILE} describes another entry or version")
    if not isinstance(record.get("kind"), str) or not isinstance(record.get("arrays"), dict):
        raise CacheCorruptError(f"{META_FILE} lacks a valid 'kind' or 'arrays'")
    if not isinstance(record.get("meta"), dict) or not isinstance(record.get("size_bytes"), int):
        raise CacheCorruptError(f"{META_FILE} lacks a valid 'meta' or 'size_bytes'")
    for name, array_record in record["arrays"].items():
        try:
            check_array_name(name)
        except InvalidKeyError:
            raise CacheCorruptError(f"{META_FILE} names the invalid array {name!r}") from None
        validate_array_record(name, array_record)
    return record


@dataclass(frozen=True)
class EntryInfo:
    """What the index knows of an entry.

    Attributes
    ----------
    key, kind
        The entry's key and kind.
    created
        When the entry was written (UTC, ISO 8601).
    size_bytes
        Bytes on disk (array files and ``meta.json``); for an unstored result, the arrays' bytes.
    last_access
        Last read or write (seconds since the epoch), if known.
    path
        The version folder holding ``meta.json`` and the ``.npy`` files; ``None`` if not stored.
    stored
        ``False`` for a result that could not be written (see :meth:`Store.get_or_compute`).
    version
        Name of the version folder.
    """

    key: str
    kind: str
    created: str
    size_bytes: int
    last_access: float | None = None
    path: Path | None = None
    stored: bool = True
    version: str | None = None


@dataclass
class Entry:
    """A cache entry read by :meth:`Store.get` or produced by :meth:`Store.get_or_compute`.

    Attributes
    ----------
    arrays
        Array name -> array (read-only memory maps when read with ``mmap=True``).
    meta
        The user metadata given to :meth:`Store.put`, as JSON (tuples become lists).
    info
        Index information; ``info.stored`` is ``False`` when the result could not be cached.
    record
        The full ``meta.json`` (inputs, checksums, versions); empty when not stored.
    """

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    info: EntryInfo
    record: dict[str, Any] = field(default_factory=dict)
    _store: Store | None = field(default=None, repr=False, compare=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def verify_rows(self, name: str, start: int = 0, stop: int | None = None) -> None:
        """Check the checksums of the chunks that hold rows ``start:stop`` of one array.

        Cheap partial verification for entries read with ``mmap=True, verify=False``: only the
        touched chunks (about 4 MiB each) are hashed.

        Parameters
        ----------
        name
            Array name.
        start, stop
            Row range along the first axis (``stop=None``: to the end; negative values count
            from the end as in slicing).

        Raises
        ------
        CacheCorruptError
            A touched chunk does not match; the entry is quarantined (with a
            :class:`CacheCorruptWarning`) and must be recomputed.
        """
        if name not in self.arrays:
            raise KeyError(
                f"entry {self.info.key} has no array {name!r}; it has {sorted(self.arrays)}"
            )
        if not self.record:
            return  # an unstored, freshly computed result: nothing on disk to check
        array_record = self.record["arrays"][name]
        if stop is None:
            stop = row_count(array_record["shape"])
        bad = first_bad_chunk(
            self.arrays[name], array_record, chunks_for_rows(array_record, start, stop)
        )
        if bad is not None:
            self._corrupt(bad_chunk_message(f"{name}.npy", array_record, bad))

    def verify(self) -> None:
        """Check every chunk of every array (see :meth:`verify_rows`)."""
        for name in self.arrays:
            self.verify_rows(name)

    def _corrupt(self, reason: str) -> None:
        where = None
        if self._store is not None and self.info.version is not None:
            where = self._store.quarantine(
                self.info.key, self.info.version, self.info.kind, reason, warn=True
            )
        raise CacheCorruptError(
            f"cache entry {self.info.key} ({self.info.kind}) is corrupt: {reason}; "
            f"quarantined at {where}; recompute it"
        )


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :meth:`Store.verify`: keys that verified, were corrupt (and are now
    quarantined) or were not found."""

    ok: list[str]
    corrupt: list[str]
    missing: list[str]

    @property
    def all_ok(self) -> bool:
        """``True`` if no entry was corrupt or missing."""
        return not self.corrupt and not self.missing


@dataclass(frozen=True)
class CleanupReport:
    """Outcome of :meth:`Store.cleanup`."""

    temp_removed: int
    index_dropped: int
    adopted: int
    orphans_removed: int


class Store:
    """A persistent, crash-safe store of numpy arrays + JSON metadata (see the module docs).

    Parameters
    ----------
    root
        The cache folder (the caller decides where; the store knows no default). Created if
            missing.
    readonly
        Never write: no cleanup, no last-access updates, no quarantine; :meth:`put` raises.

    Notes
    -----
    Opening a store runs a cheap :meth:`cleanup` (``deep=False``). A folder that cannot be
    written is opened anyway (reads work, writes raise :class:`CacheWriteError`).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from cache import Store, make_key
    >>> store = Store(tempfile.mkdtemp())
    >>> key = make_key("squares", {"n": 4})
    >>> entry, cached = store.get_or_compute(
    ...     key, "squares", {"n": 4}, lambda: ({"x": np.arange(4) ** 2}, {"note": "demo"})
    ... )
    >>> cached, entry.arrays["x"].tolist()
    (False, [0, 1, 4, 9])
    >>> store.get_or_compute(key, "squares", {"n": 4}, lambda: ({}, {}))[1]
    True
    """

    def __init__(self, root: Path | str, *, readonly: bool = False) -> None:
        # resolved, so that every Store on one folder shares the same (reentrant) key locks
        self.root = Path(root).expanduser().resolve()
        self.readonly = bool(readonly)
        self._unwritable: OSError | None = None
        if not self.readonly:
            try:
                for folder in (
                    self.root,
                    self.entries_dir,
                    self.tmp_dir,
                    self.quarantine_dir,
                    self.locks_dir,
                    self.partial_dir,
                ):
                    folder.mkdir(parents=True, exist_ok=True)
                if not os.access(self.tmp_dir, os.W_OK | os.X_OK):
                    raise PermissionError(errno.EACCES, "Permission denied", str(self.tmp_dir))
            except OSError as exc:
                self._unwritable = exc
                logger.warning(
                    "cache folder %s cannot be written (%s); only reads will work", self.root, exc
                )
        self._index = self._open_index()
        if self.writable:
            try:
                self._cleanup(deep=False)
            except (OSError, sqlite3.Error) as exc:
                logger.warning("cleanup of cache folder %s failed: %s", self.root, exc)

    # ------------------------------------------------------------------ folders, keys, locks
    @property
    def entries_dir(self) -> Path:
        """``<root>/entries``."""
        return self.root / "entries"

    @property
    def tmp_dir(self) -> Path:
        """``<root>/tmp``."""
        return self.root / "tmp"

    @property
    def quarantine_dir(self) -> Path:
        """``<root>/quarantine``."""
        return self.root / "quarantine"

    @property
    def locks_dir(self) -> Path:
        """``<root>/locks``."""
        return self.root / "locks"

    @property
    def partial_dir(self) -> Path:
        """``<root>/partial``."""
        return self.root / "partial"

    @property
    def writable(self) -> bool:
        """``False`` if opened read-only or if the folder could not be created or written."""
        return not self.readonly and self._unwritable is None

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else ("unwritable" if self._unwritable else "rw")
        return f"Store({os.fspath(self.root)!r}, {mode})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the index connection (the store can still be used; it reopens lazily)."""
        if self._index is not None:
            self._index.close()

    def _entry_dir(self, key: str) -> Path:
        return self.entries_dir / key[:2] / key

    def _open_index(self) -> Index | None:
        path = self.root / "index.sqlite"
        readonly = not self.writable
        if readonly and not path.exists():
            return None
        try:
            return Index(path, readonly=readonly, quarantine=self.quarantine_dir)
        except (sqlite3.Error, OSError) as exc:
            logger.warning(
                "cache index %s cannot be opened (%s); listing falls back to scanning folders",
                path,
                exc,
            )
            return None

    def _index_call(self, fn: Callable[[Index], _T], default: _T) -> _T:
        """Run an index operation; the index is a cache, so failures are logged, not raised."""
        if self._index is None:
            return default
        try:
            return fn(self._index)
        except (sqlite3.Error, OSError) as exc:
            logger.warning("cache index %s: %s", self._index.path, exc)
            return default

    def _index_remove(self, key: str, version: str | None = None) -> None:
        self._index_call(lambda ix: ix.remove(key, version), None)

    def _filelock(self, name: str) -> filelock.BaseFileLock:
        return filelock.FileLock(self.locks_dir / f"{name}.lock", is_singleton=True)

    @contextlib.contextmanager
    def named_lock(self, name: str, timeout: float | None) -> Iterator[None]:
        lock = self._filelock(name)
        try:
            lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout))
        except filelock.Timeout:
            raise CacheLockTimeout(
                f"cache lock {name!r} is held by another process or thread; waited {timeout} s "
                f"(lock file {lock.lock_file})"
            ) from None
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def _try_named_lock(self, name: str) -> Iterator[bool]:
        """Take a lock without waiting; yields whether it was taken (never raises)."""
        lock = self._filelock(name)
        try:
            lock.acquire(timeout=0)
        except (filelock.Timeout, OSError):
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def lock(
        self, key: str, timeout: float | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Cross-process, cross-thread lock of a key, as a context manager.

        Held by :meth:`put` and by :meth:`get_or_compute` while computing; reentrant within one
        thread. :meth:`prune` and :meth:`clear` skip entries whose lock is held.

        Parameters
        ----------
        key
            The cache key.
        timeout
            Seconds to wait; ``None`` waits for ever, ``0`` tries once.

        Raises
        ------
        CacheLockTimeout
            The lock was not free within ``timeout`` (a :class:`TimeoutError`).
        """
        check_key(key)
        return self.named_lock(key, timeout)

    def require_writable(self, what: str) -> None:
        if self.readonly:
            raise CacheWriteError(
                f"cannot {what}: the cache folder {self.root} was opened read-only", self.root
            )
        if self._unwritable is not None:
            raise CacheWriteError(
                f"cannot {what}: the cache folder {self.root} cannot be written "
                f"({self._unwritable})",
                self.root,
                self._unwritable.errno,
            )

    def write_error(self, what: str, exc: OSError) -> CacheWriteError:
        return CacheWriteError(
            f"cannot {what} in the cache folder {self.root}: {exc}", self.root, exc.errno
        )

    # ------------------------------------------------------------------ pointer and versions
    @staticmethod
    def _read_pointer(edir: Path) -> str | None:
        """Name of the live version of an entry folder, ``None`` if there is none."""
        try:
            raw = (edir / POINTER).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        text = raw.decode("ascii", errors="replace").strip()
        if not _VERSION_RE.match(text):
            raise CacheCorruptError(f"the pointer file {POINTER!r} holds {raw[:60]!r}")
        return text

    def _pointer_quiet(self, edir: Path) -> str | None:
        try:
            return self._read_pointer(edir)
        except CacheCorruptError:
            return None

    @staticmethod
    def _remove_stale(edir: Path, keep: str) -> int:
        """Remove version folders other than ``keep`` and stray pointer temp files (lock held)."""
        removed = 0
        try:
            names = os.listdir(edir)
        except FileNotFoundError:
            return 0
        for name in names:
            if name in (keep, POINTER):
                continue
            if name.startswith("v-") or (name.startswith(f".{POINTER}.") and name.endswith(".tmp")):
                remove_tree(edir / name)
                removed += 1
        return removed

    def _remove_entry_dir(self, key: str) -> bool:
        """Move an entry folder out of ``entries/`` at once, then delete it (lock held)."""
        edir = self._entry_dir(key)
        if not edir.exists():
            return False
        with TempDir(self.tmp_dir, f"del-{key[:12]}") as trash:
            os.rename(edir, trash.path / key)
            fsync_dir(edir.parent)
        return True

    def _folder_keys(self) -> list[str]:
        keys: list[str] = []
        try:
            prefixes = sorted(os.listdir(self.entries_dir))
        except FileNotFoundError:
            return keys
        for prefix in prefixes:
            try:
                names = os.listdir(self.entries_dir / prefix)
            except (NotADirectoryError, FileNotFoundError):
                continue
            keys.extend(n for n in sorted(names) if _KEY_RE.match(n) and n[:2] == prefix)
        return keys

    # ------------------------------------------------------------------ writing
    def put(
        self,
        key: str,
        kind: str,
        inputs: Mapping[str, Any] | None,
        arrays: Mapping[str, npt.ArrayLike],
        meta: Mapping[str, Any] | None = None,
    ) -> EntryInfo:
        """Store arrays and metadata under ``key`` atomically, replacing any previous entry.

        Parameters
        ----------
        key
            Entry key, usually from :func:`~cache.keys.make_key`.
        kind
            What the entry holds, e.g. ``"road_graph"``; recorded and usable in :meth:`ls`.
        inputs
            What the entry was computed from, recorded in readable form in ``meta.json``.
        arrays
            Name -> array; any numeric, bool or fixed-width string dtype, any shape (also 0-d
            and empty). Each becomes ``<name>.npy``.
        meta
            User metadata (JSON-like; numpy scalars and arrays are converted to numbers and
            lists, NaN and infinities to strings).

        Returns
        -------
        EntryInfo
            The stored entry.

        Raises
        ------
        CacheWriteError
            The folder is read-only, the disk is full or another :class:`OSError` occurred; the
            message names the cache folder and the previous entry (if any) is unchanged.
        UnsupportedInputError
            An array needs pickle (object dtype) or inputs/meta hold unsupported types.
        """
        check_key(key)
        check_kind(kind)
        inputs_json = readable_inputs(inputs)
        meta_json = readable_meta(meta)
        if not isinstance(arrays, Mapping):
            raise UnsupportedInputError(
                f"arrays must be a mapping of name to array, got {type(arrays).__name__}"
            )
        prepared = {
            check_array_name(name): as_stored_array(name, value) for name, value in arrays.items()
        }

        def write(folder: Path) -> dict[str, dict[str, Any]]:
            return {
                name: write_array_file(folder / f"{name}.npy", a) for name, a in prepared.items()
            }

        return self.write_entry(key, kind, inputs_json, meta_json, write)

    def write_entry(
        self,
        key: str,
        kind: str,
        inputs_json: dict[str, Any],
        meta_json: dict[str, Any],
        write: Callable[[Path], dict[str, dict[str, Any]]],
        extra: Mapping[str, Any] | None = None,
    ) -> EntryInfo:
        what = f"store cache entry {key} ({kind})"
        self.require_writable(what)
        try:
            with self.named_lock(key, None):
                return self._install(key, kind, inputs_json, meta_json, write, extra)
        except CacheError:
            raise
        except OSError as exc:
            raise self.write_error(what, exc) from exc

    def _install(
        self,
        key: str,
        kind: str,
        inputs_json: dict[str, Any],
        meta_json: dict[str, Any],
        write: Callable[[Path], dict[str, dict[str, Any]]],
        extra: Mapping[str, Any] | None,
    ) -> EntryInfo:
        """Write a new version folder and switch the pointer to it (key lock held)."""
        version = unique_name("v")
        edir = self._entry_dir(key)
        created = _utc_iso()
        with TempDir(self.tmp_dir, f"put-{key[:12]}") as tmp:
            array_records = write(tmp.path)
            array_bytes = sum(r["data_offset"] + r["nbytes"] for r in array_records.values())
            record: dict[str, Any] = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "library_version": LIBRARY_VERSION,
                "numpy_version": np.__version__,
                "key": key,
                "kind": kind,
                "version": version,
                "created": created,
                "inputs": inputs_json,
                "meta": meta_json,
                "arrays": array_records,
                "size_bytes": array_bytes,
                **(dict(extra) if extra else {}),
            }
            text = ""
            for _ in range(5):  # size_bytes includes meta.json itself: iterate to a fixed point
                record["checksum"] = _record_checksum(record)
                text = _dump_json(record, indent=1)
                total = array_bytes + len(text.encode("utf-8"))
                if total == record["size_bytes"]:
                    break
                record["size_bytes"] = total
            with open(tmp.path / META_FILE, "xb") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(tmp.path)
            pause_point("meta_written")
            mkdir_durable(edir)
            os.rename(tmp.path, edir / version)
            pause_point("version_renamed")
            try:
                fsync_dir(edir)
                write_atomic(edir / POINTER, f"{version}\n".encode("ascii"))
            except BaseException:
                if self._pointer_quiet(edir) != version:
                    remove_tree(edir / version)  # it never became current
                raise
        self._remove_stale(edir, keep=version)
        pause_point("stale_removed")
        self._index_call(
            lambda ix: ix.upsert(key, kind, version, created, record["size_bytes"]), None
        )
        pause_point("indexed")
        logger.debug("stored cache entry %s (%s), %d bytes", key, kind, record["size_bytes"])
        return EntryInfo(
            key=key,
            kind=kind,
            created=created,
            size_bytes=record["size_bytes"],
            last_access=time.time(),
            path=edir / version,
            stored=True,
            version=version,
        )

    # ------------------------------------------------------------------ reading
    def read_entry(
        self,
        key: str,
        loader: Callable[[str, Path, dict[str, Any]], _T],
        *,
        warn: bool,
    ) -> tuple[str, str | None, dict[str, Any] | None, _T | None]:
        """Read an entry's record and run ``loader``; quarantine it when corrupt.

        Returns ``(status, version, record, value)`` with status ``ok``, ``missing`` or
        ``corrupt``.
        """
        edir = self._entry_dir(key)
        for _ in range(_MAX_RETRIES):
            try:
                version = self._read_pointer(edir)
            except CacheCorruptError as exc:
                self.quarantine(key, None, "?", str(exc), warn=warn)
                return "corrupt", None, None, None
            if version is None:
                return "missing", None, None, None
            vdir = edir / version
            kind = "?"
            reason: str
            try:
                record = _read_record(vdir, key)
                kind = record["kind"]
                return "ok", version, record, loader(version, vdir, record)
            except FileNotFoundError as exc:
                if self._pointer_quiet(edir) != version:
                    continue  # replaced or deleted while we read: read the new pointer
                if not vdir.is_dir():
                    self._forget_dangling(key, version)
                    return "missing", None, None, None
                missing = Path(exc.filename).name if exc.filename else "a file"
                reason = f"{missing} is missing"
            except _NewerFormatError as exc:
                logger.warning("skipping cache entry: %s", exc)
                return "missing", None, None, None
            except PermissionError as exc:
                logger.warning("cannot read cache entry %s: %s", key, exc)
                return "missing", None, None, None
            except CacheCorruptError as exc:
                reason = str(exc)
            except OSError as exc:
                reason = f"read error: {exc}"
            self.quarantine(key, version, kind, reason, warn=warn)
            return "corrupt", None, None, None
        logger.warning("cache entry %s kept changing while being read; treating it as a miss", key)
        return "missing", None, None, None

    def info_from(
        self, key: str, version: str, record: Mapping[str, Any], last_access: float | None
    ) -> EntryInfo:
        return EntryInfo(
            key=key,
            kind=record["kind"],
            created=str(record.get("created", "")),
            size_bytes=int(record["size_bytes"]),
            last_access=last_access,
            path=self._entry_dir(key) / version,
            stored=True,
            version=version,
        )

    def touch(self, key: str, version: str, record: Mapping[str, Any]) -> float | None:
        """Record an access for LRU pruning, repairing the index row if it is stale."""
        if not self.writable:
            return None

        def run(ix: Index) -> float:
            if not ix.touch(key, version):
                ix.upsert(
                    key,
                    record["kind"],
                    version,
                    str(record.get("created", "")),
                    int(record["size_bytes"]),
                )
            return time.time()

        return self._index_call(run, None)

    def _load(
        self, key: str, *, mmap: bool, verify: bool, warn: bool, touch: bool
    ) -> tuple[str, Entry | None]:
        def loader(version: str, vdir: Path, record: dict[str, Any]) -> dict[str, np.ndarray]:
            return {
                name: load_array(vdir / f"{name}.npy", rec, mmap=mmap, verify=verify)
                for name, rec in record["arrays"].items()
            }

        status, version, record, arrays = self.read_entry(key, loader, warn=warn)
        if status != "ok" or version is None or record is None or arrays is None:
            return status, None
        last = self.touch(key, version, record) if touch else None
        info = self.info_from(key, version, record, last)
        return "ok", Entry(
            arrays=arrays, meta=dict(record["meta"]), info=info, record=record, _store=self
        )

    def get(self, key: str, *, mmap: bool = False, verify: bool = True) -> Entry | None:
        """Read an entry, verifying its checksums; ``None`` on a miss.

        Parameters
        ----------
        key
            Entry key.
        mmap
            Return read-only memory maps instead of loading the arrays.
        verify
            Hash every chunk of every array against ``meta.json``. Sizes and ``.npy`` headers are
            always checked; with ``verify=False`` use :meth:`Entry.verify_rows` to check parts.

        Returns
        -------
        Entry or None
            ``None`` if there is no entry, or if it was corrupt: then it has been moved to
            ``quarantine/``, a warning logged and a :class:`CacheCorruptWarning` emitted, so
            the caller can simply recompute. A hit counts as an access for :meth:`prune`.
        """
        check_key(key)
        return self._load(key, mmap=mmap, verify=verify, warn=True, touch=True)[1]

    def contains(self, key: str) -> bool:
        """Whether an entry exists for ``key`` (cheap: no checksum is verified)."""
        check_key(key)
        edir = self._entry_dir(key)
        version = self._pointer_quiet(edir)
        return version is not None and (edir / version / META_FILE).is_file()

    def info(self, key: str) -> tuple[EntryInfo, dict[str, Any]] | None:
        """Index information and the full ``meta.json`` of an entry, without reading arrays.

        Returns
        -------
        tuple of (EntryInfo, dict) or None
            ``None`` if there is no entry (or its ``meta.json`` was unreadable, which
            quarantines it like :meth:`get`).
        """
        check_key(key)
        status, version, record, _ = self.read_entry(key, lambda v, d, r: None, warn=True)
        if status != "ok" or version is None or record is None:
            return None
        row = self._index_call(lambda ix: ix.get(key), None)
        last = row.last_access if row is not None and row.version == version else None
        return self.info_from(key, version, record, last), record

    def get_or_compute(
        self,
        key: str,
        kind: str,
        inputs: Mapping[str, Any] | None,
        compute: Callable[[], tuple[Mapping[str, npt.ArrayLike], Mapping[str, Any] | None]],
        *,
        refresh: bool = False,
    ) -> tuple[Entry, bool]:
        """Read an entry, or compute, store and return it.

        While computing, the key's cross-process lock is held: a second process (or thread)
        asking for the same key waits, then reads the first one's entry instead of computing.

        Parameters
        ----------
        key, kind, inputs
            As for :meth:`put`.
        compute
            Called without arguments; returns ``(arrays, meta)``.
        refresh
            Recompute and overwrite even if an entry exists.

        Returns
        -------
        tuple of (Entry, bool)
            The entry and whether it was served from the cache. If the result could not be
            written (read-only folder, disk full), a warning is logged and the computed arrays
            are returned anyway in an entry with ``info.stored == False``.
        """
        check_key(key)
        check_kind(kind)
        if not refresh:
            entry = self.get(key)
            if entry is not None:
                return entry, True
        with self._lock_if_possible(key):
            if not refresh:
                entry = self.get(key)
                if entry is not None:
                    return entry, True
            result = compute()
            if not (
                isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Mapping)
            ):
                raise UnsupportedInputError(
                    f"compute() for cache entry {key} ({kind}) must return (arrays, meta), "
                    f"got {type(result).__name__}"
                )
            raw_arrays, meta = result
            arrays = {name: np.asarray(value) for name, value in raw_arrays.items()}
            meta_json = readable_meta(meta)
            try:
                info = self.put(key, kind, inputs, arrays, meta)
            except CacheWriteError as exc:
                logger.warning("%s; returning the computed result without caching it", exc)
                info = EntryInfo(
                    key=key,
                    kind=kind,
                    created=_utc_iso(),
                    size_bytes=sum(a.nbytes for a in arrays.values()),
                    last_access=time.time(),
                    path=None,
                    stored=False,
                    version=None,
                )
            return Entry(arrays=arrays, meta=meta_json, info=info), False

    @contextlib.contextmanager
    def _lock_if_possible(self, key: str) -> Iterator[bool]:
        if not self.writable:
            yield False
            return
        lock = self._filelock(key)
        try:
            lock.acquire()
        except OSError as exc:
            logger.warning("cannot lock cache key %s (%s); computing without the lock", key, exc)
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    # ------------------------------------------------------------------ corruption
    def quarantine(
        self, key: str, version: str | None, kind: str, reason: str, *, warn: bool
    ) -> Path | None:
        """Move a corrupt version (or, with ``version=None``, the entry folder) aside."""
        edir = self._entry_dir(key)
        dest: Path | None = None
        if self.writable:
            # version names are unique, so is the quarantine name
            dest = self.quarantine_dir / (f"{key}-{version}" if version else unique_name(key))
            try:
                self.quarantine_dir.mkdir(parents=True, exist_ok=True)
                if version is None:
                    with self._try_named_lock(key) as locked:
                        if not locked:
                            return None  # a writer is at work; it will replace the pointer
                        os.rename(edir, dest)
                        fsync_dir(edir.parent)
                else:
                    os.rename(edir / version, dest)
                    fsync_dir(edir)
                os.utime(dest)  # the age used by cleanup() counts from the quarantine
            except FileNotFoundError:
                return None  # another reader quarantined it first
            except OSError as exc:
                logger.warning("cannot move corrupt cache entry %s to %s: %s", key, dest, exc)
                dest = None
            if version is not None and dest is not None:
                self._forget_dangling(key, version)
            self._index_remove(key, version)
        if dest is not None:
            where = f"quarantined at {dest}"
        elif self.writable:
            where = "left in place (it could not be moved)"
        else:
            where = "left in place (the store is read-only)"
        message = f"cache entry {key} ({kind}) is corrupt: {reason}; {where}"
        logger.warning(message)
        if warn:
            warnings.warn(message, CacheCorruptWarning, stacklevel=_external_stacklevel())
        return dest

    def _forget_dangling(self, key: str, version: str) -> None:
        """Drop a pointer naming a version folder that no longer exists."""
        if not self.writable:
            return
        edir = self._entry_dir(key)
        with self._try_named_lock(key) as locked:
            if locked and self._pointer_quiet(edir) == version and not (edir / version).exists():
                with contextlib.suppress(OSError):
                    (edir / POINTER).unlink()
                    fsync_dir(edir)
                with contextlib.suppress(OSError):
                    edir.rmdir()
        self._index_remove(key, version)

    # ------------------------------------------------------------------ listing and upkeep
    def _scan(self, kind: str | None = None) -> list[EntryInfo]:
        infos = []
        for key in self._folder_keys():
            edir = self._entry_dir(key)
            try:
                version = self._read_pointer(edir)
                if version is None:
                    continue
                record = _read_record(edir / version, key)
            except (OSError, CacheError, _NewerFormatError):
                continue
            if kind is None or record["kind"] == kind:
                infos.append(self.info_from(key, version, record, None))
        return infos

    def _info_from_row(self, row: IndexRow) -> EntryInfo:
        return EntryInfo(
            key=row.key,
            kind=row.kind,
            created=row.created,
            size_bytes=row.size_bytes,
            last_access=row.last_access,
            path=self._entry_dir(row.key) / row.version,
            stored=True,
            version=row.version,
        )

    def ls(self, kind: str | None = None) -> list[EntryInfo]:
        """All entries (of one kind), sorted by key."""
        rows = self._index_call(lambda ix: ix.rows(kind), None)
        if rows is None:
            return sorted(self._scan(kind), key=lambda i: i.key)
        return [self._info_from_row(r) for r in rows]

    def total_size(self) -> int:
        """Bytes on disk of all entries (resumable matrices and quarantine not included)."""
        total = self._index_call(lambda ix: ix.total_size(), None)
        if total is None:
            return sum(i.size_bytes for i in self._scan())
        return total

    def verify(self, keys: Iterable[str] | None = None) -> VerifyReport:
        """Verify every chunk of the given (default: all) entries; quarantine corrupt ones.

        Corrupt entries are logged and reported, without a :class:`CacheCorruptWarning`.
        """
        todo = list(keys) if keys is not None else self._folder_keys()
        ok: list[str] = []
        corrupt: list[str] = []
        missing: list[str] = []
        for key in todo:
            check_key(key)
            status, _ = self._load(key, mmap=True, verify=True, warn=False, touch=False)
            {"ok": ok, "corrupt": corrupt}.get(status, missing).append(key)
        return VerifyReport(ok=ok, corrupt=corrupt, missing=missing)

    def delete(self, key: str, *, timeout: float | None = None) -> bool:
        """Delete an entry; ``True`` if there was one. Waits for the key's lock (``timeout``)."""
        check_key(key)
        self.require_writable(f"delete cache entry {key}")
        try:
            with self.named_lock(key, timeout):
                existed = self._remove_entry_dir(key)
        except CacheError:
            raise
        except OSError as exc:
            raise self.write_error(f"delete cache entry {key}", exc) from exc
        self._index_remove(key)
        return existed

    def _rows_lru(self) -> list[IndexRow]:
        rows = self._index_call(lambda ix: ix.rows(lru=True), None)
        if rows is not None:
            return rows
        infos = sorted(self._scan(), key=lambda i: i.created)
        return [
            IndexRow(i.key, i.kind, i.version or "", i.created, i.size_bytes, 0.0, 0) for i in infos
        ]

    def prune(self, max_bytes: int | str) -> list[str]:
        """Delete least recently used entries until the total size is at most ``max_bytes``.

        Entries whose key lock is held (being computed or written) are never removed.

        Parameters
        ----------
        max_bytes
            Limit in bytes, or a size such as ``"5GB"`` (see :func:`~cache.sizes.parse_size`).

        Returns
        -------
        list of str
            Removed keys, least recently used first.
        """
        limit = parse_size(max_bytes)
        self.require_writable("prune the cache")
        self._reconcile_index()
        rows = self._rows_lru()
        total = sum(r.size_bytes for r in rows)
        removed: list[str] = []
        for row in rows:
            if total <= limit:
                break
            with self._try_named_lock(row.key) as locked:
                if not locked:
                    logger.info("prune: skipping cache entry %s, it is locked", row.key)
                    continue
                try:
                    self._remove_entry_dir(row.key)
                except OSError as exc:
                    raise self.write_error(f"delete cache entry {row.key}", exc) from exc
                self._index_remove(row.key)
            total -= row.size_bytes
            removed.append(row.key)
        if removed:
            logger.info("pruned %d cache entries; %d bytes remain", len(removed), total)
        return removed

    def clear(self) -> list[str]:
        """Delete every entry not currently locked, every resumable matrix and the quarantine.

        Returns
        -------
        list of str
            Keys of the removed entries.
        """
        self.require_writable("clear the cache")
        removed: list[str] = []
        try:
            for key in self._folder_keys():
                with self._try_named_lock(key) as locked:
                    if locked:
                        self._remove_entry_dir(key)
                        self._index_remove(key)
                        removed.append(key)
            for folder in sorted(self.partial_dir.glob("*")):
                with self._try_named_lock(f"partial-{folder.name}") as locked:
                    if locked:
                        remove_tree(folder)
            for item in sorted(self.quarantine_dir.glob("*")):
                remove_tree(item)
            sweep_temp(self.tmp_dir)
        except OSError as exc:
            raise self.write_error("clear the cache", exc) from exc
        self._reconcile_index()
        return removed

    def _adopt(self, key: str) -> bool:
        edir = self._entry_dir(key)
        try:
            version = self._read_pointer(edir)
            if version is None:
                return False
            record = _read_record(edir / version, key)
        except (OSError, CacheError, _NewerFormatError) as exc:
            logger.debug("not adopting cache entry %s: %s", key, exc)
            return False
        self._index_call(
            lambda ix: ix.upsert(
                key,
                record["kind"],
                version,
                str(record.get("created", "")),
                int(record["size_bytes"]),
            ),
            None,
        )
        return True

    def _reconcile_index(self) -> tuple[int, int]:
        """Drop index rows without folder; adopt folders without index row."""
        index_keys = self._index_call(lambda ix: ix.keys(), None)
        if index_keys is None:
            return 0, 0
        folder_keys = set(self._folder_keys())
        dropped = 0
        for key in sorted(index_keys - folder_keys):
            self._index_remove(key)
            dropped += 1
        adopted = sum(self._adopt(key) for key in sorted(folder_keys - index_keys))
        if dropped or adopted:
            logger.info(
                "cache index: dropped %d rows without folder, adopted %d folders", dropped, adopted
            )
        return dropped, adopted

    def cleanup(self, *, deep: bool = True) -> CleanupReport:
        """Remove leftovers of interrupted writers and bring the index in line with the folders.

        * temp folders whose writer is gone (its lock is free; it died or was killed), and stray
          temp items older than 10 minutes;
        * index rows whose entry folder is missing; entry folders missing from the index are
          adopted (their row is rebuilt from ``meta.json``);
        * with ``deep``: version folders that never became (or stopped being) current, entry
          folders without a valid pointer, stale index rows, stray temp files of resumable
          matrices and quarantined items older than 30 days. Entries whose key lock is held are
          skipped.

        Opening a store runs ``cleanup(deep=False)``.

        Returns
        -------
        CleanupReport
            Counts of what was removed or adopted.
        """
        self.require_writable("clean up the cache")
        try:
            return self._cleanup(deep=deep)
        except OSError as exc:
            raise self.write_error("clean up the cache", exc) from exc

    def _cleanup(self, *, deep: bool) -> CleanupReport:
        temp_removed = sweep_temp(self.tmp_dir)
        dropped, adopted = self._reconcile_index()
        orphans = 0
        if deep:
            for key in self._folder_keys():
                orphans += self._tidy_entry(key)
            orphans += self._tidy_partials()
            now = time.time()
            for item in sorted(self.quarantine_dir.glob("*")):
                with contextlib.suppress(FileNotFoundError):
                    if now - item.lstat().st_mtime > QUARANTINE_MAX_AGE_S:
                        remove_tree(item)
        return CleanupReport(temp_removed, dropped, adopted, orphans)

    def _tidy_entry(self, key: str) -> int:
        edir = self._entry_dir(key)
        with self._try_named_lock(key) as locked:
            if not locked:
                return 0
            try:
                version = self._read_pointer(edir)
            except CacheCorruptError:
                return 0  # left for get() to quarantine with a warning
            if version is None or not (edir / version).is_dir():
                logger.info("removing cache entry folder %s: it has no complete version", edir)
                self._remove_entry_dir(key)
                self._index_remove(key)
                return 1
            removed = self._remove_stale(edir, keep=version)
            row = self._index_call(lambda ix: ix.get(key), None)
            if row is not None and row.version != version:
                self._adopt(key)
            return removed

    def _tidy_partials(self) -> int:
        removed = 0
        now = time.time()
        for tmp_file in sorted(self.partial_dir.glob("*/.tmp-*")):
            with contextlib.suppress(FileNotFoundError):
                if now - tmp_file.lstat().st_mtime > STRAY_AGE_S:
                    remove_tree(tmp_file)
                    removed += 1
        return removed

    # ------------------------------------------------------------------ matrices
