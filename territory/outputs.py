"""Output files of a command, written all or nothing.

Every output (areas in any GIS format, CSV, JSON, maps) is first written to a temp file in its
target folder; only when *all* outputs of the command have been written are they renamed into
place, one after another. A failure (bad path, read-only folder, full disk) removes the temp
files and leaves every previous file exactly as it was. A shapefile's sidecar files
(``.shp``, ``.shx``, ``.dbf``, ``.prj``, ``.cpg``) move together.

Example
-------
>>> with OutputSet() as outs:  # doctest: +SKIP
...     outs.write_areas(gdf, Path("result.gpkg"))
...     outs.write_json(report, Path("result.json"))
... # both renamed into place here, or neither
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from roadnet.files import file_mode
from territory.exceptions import OptionError, OutputError

log = logging.getLogger(__name__)

__all__ = ["AREA_FORMATS", "OutputSet", "check_output_path", "to_jsonable"]

_GIS_DRIVERS = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".shp": "ESRI Shapefile",
    ".fgb": "FlatGeobuf",
}
AREA_FORMATS = (*_GIS_DRIVERS, ".parquet", ".csv")
"""File extensions :meth:`OutputSet.write_areas` writes."""

_SHP_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays as Python values and non-finite floats as ``None``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def check_output_path(path: Path, what: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """Check that ``path`` can be an output file before any work is done.

    Raises
    ------
    OptionError
        Wrong extension, or the path is an existing folder.
    OutputError
        The parent is a file, or the folder cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise OptionError(f"{what} {str(path)!r} is a folder; give a file name")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise OptionError(f"{what} {str(path)!r}: use a file ending in {', '.join(suffixes)}")
    parent = path.parent
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputError(
            f"{what} {str(path)!r}: {str(probe)!r} is a file, not a folder; choose another path"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(
            f"{what} {str(path)!r}: folder {str(probe)!r} is not writable; choose another path "
            "or change its permissions"
        )
    if path.exists() and not os.access(path, os.W_OK) and not os.access(parent, os.W_OK):
        raise OutputError(f"{what} {str(path)!r} is read-only; choose another path")
    return path


def _os_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        hint = "the disk is full; free space or write elsewhere"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "permission denied; choose another path or change its permissions"
    elif exc.errno == errno.ENOTDIR:
        hint = "a part of the path is a file, not a folder"
    elif exc.errno == errno.EISDIR:
        hint = "it is a folder; give a file name"
    else:
        hint = exc.strerror or str(exc)
    return OutputError(f"cannot write {str(path)!r}: {hint}")


def _writer_error(path: Path, exc: Exception) -> OutputError:
    """A library's write failure as an :class:`OutputError` naming the path and the cause."""
    text = " ".join(str(exc).split())
    if any(s in text.lower() for s in ("disk is full", "no space left", "disk full")):
        return _os_error(path, OSError(errno.ENOSPC, "No space left on device"))
    if len(text) > 200:  # GDAL quotes whole SQL statements: keep the cause at the end
        text = "..." + text[-200:]
    return OutputError(f"cannot write {str(path)!r}: {type(exc).__name__}: {text}")


class OutputSet:
    """Outputs staged in temp files and renamed into place together by :meth:`commit`.

    Use as a context manager: leaving the block normally commits, an exception discards every
    staged file (the previous outputs stay untouched).
    """

    def __init__(self) -> None:
        self._staged: list[tuple[list[tuple[Path, Path]], Path]] = []
        self._temps: list[Path] = []
        self.written: list[Path] = []

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    # ------------------------------------------------------------------ staging
    def _temp_dir(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        self._temps.append(tmp)
        return tmp

    def stage(self, path: Path, write: Callable[[Path], object]) -> Path:
        """Have ``write(tmp_path)`` write the output of ``path`` to a temp path; return ``path``."""
        path = Path(path)
        try:
            folder = self._temp_dir(path)
            tmp = folder / path.name
            write(tmp)
            moves: list[tuple[Path, Path]] = []
            if path.suffix.lower() == ".shp":
                for f in sorted(folder.iterdir()):
                    moves.append((f, path.with_suffix(f.suffix)))
            else:
                moves.append((tmp, path))
            mode = file_mode()
            for src, _ in moves:
                os.chmod(src, mode)
                with open(src, "rb") as fh:
                    os.fsync(fh.fileno())
        except OSError as exc:
            self.discard()
            raise _os_error(path, exc) from exc
        except (OptionError, OutputError):
            self.discard()
            raise
        except Exception as exc:  # a writer's own error (GDAL/pyogrio, arrow, matplotlib)
            self.discard()
            raise _writer_error(path, exc) from exc
        except BaseException:
            self.discard()
            raise
        self._staged.append((moves, path))
        return path

    def write_bytes(self, path: Path, write: Callable[[IO[bytes]], object]) -> Path:
        """Stage a file whose content ``write(fh)`` writes to a binary file handle."""

        def to_file(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                write(fh)

        return self.stage(path, to_file)

    def write_text(self, path: Path, text: str) -> Path:
        """Stage a UTF-8 text file."""
        return self.write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))

    def write_json(self, path: Path, obj: Any) -> Path:
        """Stage strict JSON (numpy values converted, non-finite numbers as ``null``)."""
        text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False)
        return self.write_text(path, text + "\n")

    def write_csv(self, path: Path, df: Any) -> Path:
        """Stage a DataFrame as CSV (no index)."""
        return self.write_text(path, df.to_csv(index=False))

    def write_areas(self, gdf: Any, path: Path) -> Path:
        """Stage areas by extension: GIS formats, ``.parquet``, or ``.csv`` with lon/lat."""
        import shapely

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in AREA_FORMATS:
            raise OptionError(f"cannot write {path.name!r}: use one of {', '.join(AREA_FORMATS)}")

        def write(tmp: Path) -> None:
            if suffix == ".csv":
                pts = shapely.point_on_surface(gdf.to_crs("EPSG:4326").geometry.values)
                table = gdf.drop(columns=gdf.geometry.name).assign(
                    lon=shapely.get_x(pts), lat=shapely.get_y(pts)
                )
                table.to_csv(tmp, index=False)
            elif suffix == ".parquet":
                gdf.to_parquet(tmp)
            elif suffix == ".shp":
                _write_shapefile(gdf, tmp, path.name)
            else:
                layer = {"layer": path.stem} if suffix == ".gpkg" else {}
                gdf.to_file(tmp, driver=_GIS_DRIVERS[suffix], **layer)

        return self.stage(path, write)

    # ------------------------------------------------------------------ commit / discard
    def commit(self) -> list[Path]:
        """Rename every staged file into place; returns the paths written."""
        try:
            for moves, path in self._staged:
                if path.suffix.lower() == ".shp":  # no stale sidecar of an older shapefile
                    for ext in _SHP_SIDECARS:
                        old = path.with_suffix(ext)
                        if not any(dst == old for _, dst in moves):
                            old.unlink(missing_ok=True)
                for src, dst in moves:
                    os.replace(src, dst)
                self.written.append(path)
        except OSError as exc:
            raise _os_error(path, exc) from exc
        finally:
            self.discard()
        return self.written

    def discard(self) -> None:
        """Remove every temp file not yet renamed."""
        for tmp in self._temps:
            shutil.rmtree(tmp, ignore_errors=True)
        self._temps.clear()
        self._staged.clear()


_LAUNDERED = re.compile(r"Normalized/laundered field name: '([^']*)' to '([^']*)'")


def _write_shapefile(gdf: Any, tmp: Path, name: str) -> None:
    """Write a Shapefile, saying once which column names the format cut (10 characters)
    instead of GDAL's warning per column."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gdf.to_file(tmp, driver=_GIS_DRIVERS[".shp"])
    renamed = []
    for w in caught:
        text = str(w.message)
        m = _LAUNDERED.search(text)
        if m:
            renamed.append(f"{m.group(1)!r} -> {m.group(2)!r}")
        elif "Column names longer than 10 characters" not in text:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if renamed:
        log.warning(
            "%s: a Shapefile keeps 10 characters of a column name: %s (.gpkg keeps full names)",
            name,
            ", ".join(renamed),
        )
