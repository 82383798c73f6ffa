"""Writing files safely: a temp file in the target folder, fsynced, renamed into place.

A reader (or a crash) sees the old file or the new one, never a mix, and the new file gets the
permissions every other tool gives it (``0o666`` less the process umask) rather than the
``0o600`` of a temp file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "file_mode", "temp_path"]


def file_mode() -> int:
    """Permission bits of a new regular file under the current umask (e.g. ``0o644``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A new, empty temp file next to ``path`` (same folder, hidden name), umask permissions."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, file_mode())
    return Path(tmp)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temp file next to ``path``, fsync it and rename it into place.

    The parent folder is created when missing. On any error the temp file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
