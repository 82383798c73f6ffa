"""File-system helpers: fsync, atomic small files, temp folders that outlive no writer.

A temp folder ``tmp/<name>/`` is always paired with a lock file ``tmp/<name>.lock`` that its
writer holds (an OS file lock, released by the kernel when the writer dies, even on SIGKILL) from
before the folder is created until after it has been renamed away or deleted. A cleaner that can
take that lock therefore knows the writer is gone; no pid or age guess is needed for live writers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import filelock

from cache._pause import pause_point

__all__ = [
    "TempDir",
    "fsync_dir",
    "fsync_file",
    "mkdir_durable",
    "remove_tree",
    "sweep_temp",
    "try_lock",
    "unique_name",
    "utc_stamp",
    "write_atomic",
]

logger = logging.getLogger(__name__)

#: Stray temp items without a lock file are removed once older than this (seconds).
STRAY_AGE_S = 600.0


def utc_stamp() -> str:
    """Compact UTC time stamp for file names, e.g. ``20240131T235959Z``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def unique_name(prefix: str) -> str:
    """``<prefix>-<utc>-<pid>-<random>``: unique across processes and calls."""
    return f"{prefix}-{utc_stamp()}-{os.getpid()}-{secrets.token_hex(4)}"


def fsync_file(path: Path) -> None:
    """Flush a file's data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (created, renamed, removed names) to disk; no-op on Windows."""
    if os.name == "nt":  # pragma: no cover - folders cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mkdir_durable(path: Path) -> None:
    """Create ``path`` and missing parents, fsyncing each parent whose entries changed."""
    if path.is_dir():
        return
    mkdir_durable(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        return
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically and durably.

    The bytes go to a temp file in the same folder, which is fsynced and renamed over ``path``
    with :func:`os.replace`; the folder is fsynced afterwards. Readers see the old or the new
    content, never a mix.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        pause_point("atomic_tmp_written")
        os.replace(tmp, path)
        pause_point("atomic_replaced")
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def remove_tree(path: Path) -> None:
    """Delete a file or folder tree, ignoring anything already gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class TempDir:
    """A temp folder under ``tmp_root`` whose lock tells cleaners that its writer is alive.

    Use as a context manager. On exit, whatever is still at :attr:`path` (nothing, after a
    successful rename into place) is deleted and the lock file removed.

    Parameters
    ----------
    tmp_root
        The store's ``tmp/`` folder.
    prefix
        Start of the folder name, for people looking at the folder.
    """

    def __init__(self, tmp_root: Path, prefix: str) -> None:
        name = unique_name(prefix)
        self.path = tmp_root / name
        self._lock_path = tmp_root / f"{name}.lock"
        self._lock = filelock.FileLock(self._lock_path)

    def __enter__(self) -> TempDir:
        self._lock.acquire()
        try:
            self.path.mkdir()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        remove_tree(self.path)
        self._release()

    def _release(self) -> None:
        # Unlink while holding the lock: a cleaner that opens the name afterwards gets a new,
        # free file and finds nothing left to remove.
        with contextlib.suppress(OSError):
            self._lock_path.unlink()
        self._lock.release()


def _try_lock(path: Path) -> filelock.BaseFileLock | None:
    """Take the lock at ``path`` without waiting; ``None`` if someone else holds it."""
    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return None
    return lock


def sweep_temp(tmp_root: Path, *, stray_age_s: float = STRAY_AGE_S) -> int:
    """Remove temp items of writers that are gone.

    An item whose lock file can be taken belongs to a dead writer and is removed at once
    (whatever its age). An item without a lock file is removed once older than ``stray_age_s``.
    Lock files without an item are removed when free.

    Parameters
    ----------
    tmp_root
        The store's ``tmp/`` folder.
    stray_age_s
        Age in seconds after which an unlocked stray item is removed.

    Returns
    -------
    int
        Number of items removed.
    """
    try:
        names = os.listdir(tmp_root)
    except FileNotFoundError:
        return 0
    removed = 0
    present = set(names)
    now = time.time()
    for name in names:
        path = tmp_root / name
        if name.endswith(".lock"):
            if name[: -len(".lock")] in present:
                continue  # handled with its item
            lock = _try_lock(path)
            if lock is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
                lock.release()
            continue
        lock_path = tmp_root / f"{name}.lock"
        if lock_path.exists():
            lock = _try_lock(lock_path)
            if lock is None:
                continue  # its writer is alive
            try:
                if path.exists():
                    logger.info("removing %s left by a writer that stopped", path)
                    remove_tree(path)
                    removed += 1
                with contextlib.suppress(OSError):
                    lock_path.unlink()
            finally:
                lock.release()
            continue
        try:
            age = now - path.lstat().st_mtime
        except FileNotFoundError:
            continue
        if age > stray_age_s:
            logger.info("removing stray temp item %s (%.0f s old)", path, age)
            remove_tree(path)
            removed += 1
    return removed


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Context manager that tries the lock at ``path`` without waiting; yields whether it did."""
    lock = _try_lock(path)
    try:
        yield lock is not None
    finally:
        if lock is not None:
            lock.release()
