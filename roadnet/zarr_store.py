"""Drive-time matrices as chunked Zarr v3 stores that other tools open without roadnet.

A store is a Zarr v3 group (a local folder or any fsspec URL such as ``s3://bucket/t.zarr``):

====================================  ============================================================
array                                 content
====================================  ============================================================
``seconds``                           ``(origin, destination)`` float32 drive seconds; ``inf`` =
                                      no route or beyond the cutoff, ``NaN`` = not computed yet.
                                      Chunked ``(block_rows, block_cols)``; codecs ``bytes``
                                      (little endian), optional ``zstd``, then ``crc32c`` so any
                                      Zarr reader rejects a damaged chunk.
``metres``                            road metres, same layout (only when requested)
``origin``, ``destination``           ids of the points (strings or integers): the dimension
                                      coordinates ``xarray.open_zarr`` indexes by
``origin_lon`` ... ``destination_lat``  WGS84 coordinates (float64)
``origin_label``, ...                 roadnet's coordinate labels (int64, 1e-7 degree)
``checksum_seconds`` (``_metres``)    ``(row_block, col_block)`` int64: CRC-32 of each chunk's
                                      values as little-endian float32 bytes in C order, ``-1`` =
                                      not written; one chunk per row block, written by the writer
                                      of that row block right after its data chunks
====================================  ============================================================

Group attributes hold ``format`` (:data:`STORE_FORMAT`), ``complete``, ``graph_key``,
``speed_profile``, ``cutoff_s``, ``engine``, ``created_utc``, ``completed_utc``, ``block_rows``,
``block_cols`` and, once complete, ``checksums`` (the checksum arrays as nested lists). The
metadata is consolidated when the store is complete, so ``xarray.open_zarr(path)`` opens it
quietly.

Every chunk is written whole by one writer (rows are split between writers by row block, which
is the chunk height) and atomically by the store (the local store writes a temporary file and
renames it; object stores put whole objects). A writer killed half-way leaves chunks whose
checksum row is missing: the row block counts as not written and is computed again.

Example
-------
>>> import xarray as xr  # doctest: +SKIP
>>> ds = xr.open_zarr("porto.zarr")  # doctest: +SKIP
>>> ds.seconds.sel(origin=["a", "b"]).values  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from roadnet.exceptions import (
    CorruptChunkError,
    InvalidArgumentError,
    MatrixStoreError,
    MatrixStoreMismatchError,
)

__all__ = [
    "STORE_FORMAT",
    "MatrixStore",
    "check_same_table",
    "chunk_checksum",
    "create_matrix_store",
    "matrix_store_exists",
    "open_matrix_store",
]

log = logging.getLogger(__name__)

#: value of the ``format`` attribute of a roadnet matrix store (bump on layout changes)
STORE_FORMAT = "roadnet-matrix-zarr/1"
_NOT_WRITTEN = -1


def chunk_checksum(values: npt.ArrayLike) -> int:
    """CRC-32 of a chunk's values as little-endian float32 bytes in C order.

    This is what the ``checksum_*`` arrays record; any reader can recompute it with
    ``zlib.crc32(np.ascontiguousarray(chunk, dtype="<f4").tobytes())``.
    """
    # one copy at most (a column slice of a block); crc32 reads the buffer in place
    return zlib.crc32(np.ascontiguousarray(values, dtype="<f4").reshape(-1).data)


def _url(url: str | Path) -> str:
    if isinstance(url, Path):
        return str(url)
    if not isinstance(url, str) or not url:
        raise MatrixStoreError(f"store must be a path or an fsspec URL, got {url!r}")
    return url


def _open_group(url: str, mode: str, storage_options: Mapping[str, Any] | None) -> Any:
    import zarr

    kwargs: dict[str, Any] = {"mode": mode, "zarr_format": 3, "use_consolidated": False}
    if storage_options:
        kwargs["storage_options"] = dict(storage_options)
    try:
        return zarr.open_group(url, **kwargs)
    except FileNotFoundError as exc:
        raise MatrixStoreError(f"no matrix store at {url!r} ({exc})") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MatrixStoreError(f"cannot open matrix store {url!r} in mode {mode!r}: {exc}") from exc


def _block_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidArgumentError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _ids(name: str, ids: npt.ArrayLike, n: int) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InvalidArgumentError(f"{name} must be a 1-D array of {n} ids, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return np.asarray([str(v) for v in arr.tolist()], dtype=object)


class MatrixStore:
    """An open drive-time matrix store (see the module docstring for the layout).

    Use :func:`create_matrix_store` or :func:`open_matrix_store`; the store is safe to write
    from several processes at once as long as each row block has one writer at a time.
    """

    def __init__(self, group: Any, url: str, storage_options: Mapping[str, Any] | None) -> None:
        self._group = group
        self.url = url
        self.storage_options = dict(storage_options) if storage_options else None
        attrs = dict(group.attrs)
        if attrs.get("format") != STORE_FORMAT:
            raise MatrixStoreError(
                f"{url!r} is not a roadnet matrix store (format attribute "
                f"{attrs.get('format')!r}, expected {STORE_FORMAT!r})"
            )
        self._seconds = group["seconds"]
        self._metres = group.get("metres", None)
        self.block_rows = int(attrs["block_rows"])
        self.block_cols = int(attrs["block_cols"])

    def __repr__(self) -> str:
        n, m = self.shape
        state = "complete" if self.complete else "incomplete"
        return f"MatrixStore({self.url!r}, {n}x{m}, {state})"

    # ------------------------------------------------------------------ description
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_origins, n_destinations)``."""
        return (int(self._seconds.shape[0]), int(self._seconds.shape[1]))

    @property
    def attrs(self) -> dict[str, Any]:
        """The group attributes (a copy)."""
        return dict(self._group.attrs)

    @property
    def complete(self) -> bool:
        """Whether every chunk was written and the store was finished."""
        return bool(self._group.attrs.get("complete", False))

    @property
    def has_metres(self) -> bool:
        """Whether the store holds road metres."""
        return self._metres is not None

    @property
    def n_row_blocks(self) -> int:
        """Number of row blocks (chunk rows)."""
        return -(-self.shape[0] // self.block_rows)

    @property
    def n_col_blocks(self) -> int:
        """Number of column blocks (chunk columns)."""
        return -(-self.shape[1] // self.block_cols)

    def row_block_range(self, block: int) -> tuple[int, int]:
        """``(start, stop)`` rows of row block ``block``."""
        if not 0 <= block < self.n_row_blocks:
            raise IndexError(f"row block must be in [0, {self.n_row_blocks}), got {block}")
        start = block * self.block_rows
        return start, min(start + self.block_rows, self.shape[0])

    def _col_range(self, cb: int) -> tuple[int, int]:
        start = cb * self.block_cols
        return start, min(start + self.block_cols, self.shape[1])

    def _vector(self, name: str) -> np.ndarray:
        return np.asarray(self._group[name][:])

    @property
    def origin_ids(self) -> np.ndarray:
        """Ids of the origins (rows)."""
        return self._vector("origin")

    @property
    def destination_ids(self) -> np.ndarray:
        """Ids of the destinations (columns)."""
        return self._vector("destination")

    @property
    def origin_labels(self) -> np.ndarray:
        """Coordinate labels of the origins (see :func:`roadnet.snap.point_labels`)."""
        return self._vector("origin_label")

    @property
    def destination_labels(self) -> np.ndarray:
        """Coordinate labels of the destinations."""
        return self._vector("destination_label")

    def lonlat(self, side: str = "origin") -> np.ndarray:
        """``(n, 2)`` lon/lat of the ``"origin"`` or ``"destination"`` points."""
        if side not in ("origin", "destination"):
            raise InvalidArgumentError(f"side must be 'origin' or 'destination', got {side!r}")
        return np.column_stack([self._vector(f"{side}_lon"), self._vector(f"{side}_lat")])

    def _array(self, name: str) -> Any:
        if name == "seconds":
            return self._seconds
        if name == "metres" and self._metres is not None:
            return self._metres
        valid = "'seconds' or 'metres'" if self._metres is not None else "'seconds'"
        raise InvalidArgumentError(f"name must be {valid} for store {self.url!r}, got {name!r}")

    def _names(self) -> list[str]:
        return ["seconds"] + (["metres"] if self._metres is not None else [])

    def recorded_checksums(self, name: str = "seconds") -> np.ndarray:
        """``(n_row_blocks, n_col_blocks)`` recorded chunk checksums (``-1`` = not written)."""
        self._array(name)
        return np.asarray(self._group[f"checksum_{name}"][:], dtype=np.int64)

    # ------------------------------------------------------------------ writing
    def write_row_block(
        self,
        block: int,
        seconds: npt.ArrayLike,
        metres: npt.ArrayLike | None = None,
        *,
        before_checksums: Any = None,
    ) -> list[int]:
        """Write row block ``block`` (all columns), then its checksums; return them.

        ``before_checksums`` is called (no arguments) between the data chunks and the checksum
        row: a fault-injection point for tests of interrupted writers.
        """
        r0, r1 = self.row_block_range(block)
        data = {"seconds": np.asarray(seconds, dtype=np.float32)}
        if self._metres is not None:
            if metres is None:
                raise InvalidArgumentError(f"store {self.url!r} holds metres: metres must be given")
            data["metres"] = np.asarray(metres, dtype=np.float32)
        for name, arr in data.items():
            if arr.shape != (r1 - r0, self.shape[1]):
                raise InvalidArgumentError(
                    f"{name} of row block {block} must have shape {(r1 - r0, self.shape[1])}, "
                    f"got {arr.shape}"
                )
        sums: dict[str, list[int]] = {}
        try:
            for name, arr in data.items():
                self._array(name)[r0:r1, :] = arr
                sums[name] = [
                    chunk_checksum(arr[:, slice(*self._col_range(cb))])
                    for cb in range(self.n_col_blocks)
                ]
            if before_checksums is not None:
                before_checksums()
            for name, row in sums.items():
                self._group[f"checksum_{name}"][block : block + 1, :] = np.asarray(
                    [row], dtype=np.int64
                )
        except OSError as exc:
            raise MatrixStoreError(
                f"cannot write row block {block} to {self.url!r}: {exc}"
            ) from exc
        return sums["seconds"]

    # ------------------------------------------------------------------ verification
    def _read_chunk(self, name: str, rb: int, cb: int, recorded: int) -> np.ndarray | None:
        """The chunk's values, or ``None`` when it is missing, unreadable or fails its CRC."""
        if recorded == _NOT_WRITTEN:
            return None
        r0, r1 = self.row_block_range(rb)
        c0, c1 = self._col_range(cb)
        try:
            chunk = np.asarray(self._array(name)[r0:r1, c0:c1])
        except Exception as exc:  # zarr raises codec-specific errors on damaged bytes
            log.warning("chunk (%d, %d) of %s in %s unreadable: %s", rb, cb, name, self.url, exc)
            return None
        if chunk_checksum(chunk) != recorded:
            log.warning("chunk (%d, %d) of %s in %s fails its checksum", rb, cb, name, self.url)
            return None
        return chunk

    def scan(self, *, verify: bool = True) -> tuple[list[int], list[int]]:
        """``(written row blocks, damaged row blocks)``.

        A row block is written when all its checksums are recorded; with ``verify`` its chunks
        are also read and checked against them (reads the whole store once). Damaged blocks
        have a recorded checksum that the data does not match (or data that cannot be read).
        """
        sums = {name: self.recorded_checksums(name) for name in self._names()}
        written = [
            rb
            for rb in range(self.n_row_blocks)
            if not any((s[rb] == _NOT_WRITTEN).any() for s in sums.values())
        ]
        if not verify:
            return written, []
        damaged = [rb for rb in written if not self.verify_row_block(rb, sums)]
        return [rb for rb in written if rb not in set(damaged)], damaged

    def verify_row_block(self, block: int, sums: Mapping[str, np.ndarray] | None = None) -> bool:
        """Whether every chunk of row block ``block`` is written and matches its checksum."""
        if sums is None:
            sums = {name: self.recorded_checksums(name) for name in self._names()}
        return all(
            self._read_chunk(name, block, cb, int(s[block, cb])) is not None
            for name, s in sums.items()
            for cb in range(self.n_col_blocks)
        )

    # ------------------------------------------------------------------ reading
    def read(
        self,
        rows: npt.ArrayLike | slice | None = None,
        cols: npt.ArrayLike | slice | None = None,
        *,
        name: str = "seconds",
        verify: bool = True,
        damaged: str = "raise",
    ) -> np.ndarray:
        """The ``(len(rows), len(cols))`` float32 sub-matrix at positions ``rows`` x ``cols``.

        Only the chunks that hold the requested cells are read; with ``verify`` each is checked
        against its recorded checksum first. Cells of chunks that are not written or fail it
        raise (``damaged="raise"``) or are returned as NaN (``damaged="nan"``).

        Raises
        ------
        CorruptChunkError
            Chunks the request needs are not written, unreadable or fail their checksum
            (``.blocks`` lists them; precomputing into the store again recomputes them).
        """
        arr = self._array(name)
        if damaged not in ("raise", "nan"):
            raise InvalidArgumentError(f"damaged must be 'raise' or 'nan', got {damaged!r}")
        n, m = self.shape
        r = _positions(rows, n, "rows")
        c = _positions(cols, m, "cols")
        out = np.empty((r.shape[0], c.shape[0]), dtype=np.float32)
        if r.size == 0 or c.size == 0:
            return out
        sums = self.recorded_checksums(name) if verify else None
        rblk, cblk = r // self.block_rows, c // self.block_cols
        bad: list[tuple[int, int]] = []
        for rb in np.unique(rblk).tolist():
            sel_r = np.flatnonzero(rblk == rb)
            r0, _ = self.row_block_range(rb)
            for cb in np.unique(cblk).tolist():
                sel_c = np.flatnonzero(cblk == cb)
                c0, _ = self._col_range(cb)
                if sums is not None:
                    chunk = self._read_chunk(name, rb, cb, int(sums[rb, cb]))
                    if chunk is None:
                        bad.append((rb, cb))
                        out[np.ix_(sel_r, sel_c)] = np.nan
                        continue
                    out[np.ix_(sel_r, sel_c)] = chunk[np.ix_(r[sel_r] - r0, c[sel_c] - c0)]
                else:
                    out[np.ix_(sel_r, sel_c)] = arr.get_orthogonal_selection((r[sel_r], c[sel_c]))
        if bad and damaged == "raise":
            raise CorruptChunkError(
                f"{len(bad)} chunk(s) of {name} in {self.url!r} are not written or fail their "
                f"checksum (row block, column block): {bad[:10]}"
                f"{' ...' if len(bad) > 10 else ''}; precompute into this store again to "
                "recompute them",
                sorted(bad),
            )
        return out

    # ------------------------------------------------------------------ state
    def set_attrs(self, **attrs: Any) -> None:
        """Update group attributes (the coordinating process only, never the block writers)."""
        self._group.attrs.update(attrs)

    def finish(self, **attrs: Any) -> None:
        """Mark the store complete (every checksum recorded), record checksums, consolidate."""
        sums = {name: self.recorded_checksums(name) for name in self._names()}
        missing = sorted({int(rb) for s in sums.values() for rb in np.argwhere(s < 0)[:, 0]})
        if missing:
            raise MatrixStoreError(
                f"store {self.url!r} cannot be finished: row blocks {missing[:10]} are not written"
            )
        self._group.attrs.update(
            {
                **attrs,
                "complete": True,
                "completed_utc": _utc_now(),
                "checksums": {name: s.tolist() for name, s in sums.items()},
            }
        )
        import zarr

        with warnings.catch_warnings():
            # zarr warns that consolidated metadata is not (yet) in the v3 specification;
            # zarr-python and xarray read it, and other readers ignore it
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(self._group.store, path=self._group.path, zarr_format=3)

    def unfinish(self) -> None:
        """Mark the store incomplete (before rewriting damaged blocks)."""
        self._group.attrs.update({"complete": False, "checksums": None})


def _positions(index: npt.ArrayLike | slice | None, n: int, name: str) -> np.ndarray:
    if index is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(index, slice):
        return np.arange(n, dtype=np.int64)[index]
    arr = np.asarray(index)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise InvalidArgumentError(f"{name} as a mask must have shape ({n},), got {arr.shape}")
        return np.flatnonzero(arr)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise InvalidArgumentError(f"{name} must be None, a slice, a mask or 1-D integer positions")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise IndexError(f"{name} must be positions in [0, {n}), got {arr.min()}..{arr.max()}")
    return arr


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def create_matrix_store(
    url: str | Path,
    *,
    origin_ids: npt.ArrayLike,
    destination_ids: npt.ArrayLike,
    origin_lonlat: npt.ArrayLike,
    destination_lonlat: npt.ArrayLike,
    origin_labels: npt.ArrayLike,
    destination_labels: npt.ArrayLike,
    block_rows: int,
    block_cols: int | None = None,
    metres: bool = False,
    attrs: Mapping[str, Any] | None = None,
    compression: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> MatrixStore:
    """Create an empty matrix store at ``url`` (which must not hold one already).

    Parameters
    ----------
    url
        Local folder or fsspec URL (``s3://``, ``gs://``, ``memory://`` ...).
    origin_ids, destination_ids
        Ids of the rows and columns (integers or strings).
    origin_lonlat, destination_lonlat
        ``(n, 2)`` WGS84 coordinates.
    origin_labels, destination_labels
        Coordinate labels (int64) identifying the points.
    block_rows, block_cols
        Chunk shape; ``block_cols`` defaults to the width split evenly into chunks of at most
        ``max(block_rows, 4096)`` columns (edge chunks are stored whole).
    metres
        Also hold road metres.
    attrs
        Extra group attributes (graph key, profile, cutoff, engine ...).
    compression
        ``None`` (raw float32, fastest and of predictable size) or ``"zstd"``.
    storage_options
        fsspec options for remote URLs.
    """
    from zarr.codecs import BytesCodec, Crc32cCodec, ZstdCodec

    target = _url(url)
    o_ll = np.asarray(origin_lonlat, dtype=np.float64)
    d_ll = np.asarray(destination_lonlat, dtype=np.float64)
    if o_ll.ndim != 2 or o_ll.shape[1] != 2 or d_ll.ndim != 2 or d_ll.shape[1] != 2:
        raise InvalidArgumentError(
            f"origin_lonlat and destination_lonlat must be (n, 2), got {o_ll.shape}, {d_ll.shape}"
        )
    n, m = o_ll.shape[0], d_ll.shape[0]
    if n == 0 or m == 0:
        raise InvalidArgumentError(
            f"a matrix store needs at least one origin and destination, got {n}x{m}"
        )
    br = _block_size("block_rows", block_rows)
    if block_cols is None:  # even split into chunks of at most 4096 columns: zarr writes edge
        # chunks whole, so 10,000 columns in 4096-wide chunks would store 12,288
        bc = -(-m // -(-m // max(br, 4096)))
    else:
        bc = _block_size("block_cols", block_cols)
    br, bc = min(br, n), min(bc, m)
    if compression not in (None, "zstd"):
        raise InvalidArgumentError(f"compression must be None or 'zstd', got {compression!r}")
    group = _open_group(target, "w-", storage_options)
    codecs: list[Any] = [ZstdCodec(level=3)] if compression == "zstd" else []
    codecs.append(Crc32cCodec())
    for name in ["seconds"] + (["metres"] if metres else []):
        group.create_array(
            name,
            shape=(n, m),
            chunks=(br, bc),
            dtype="float32",
            fill_value=np.nan,
            dimension_names=("origin", "destination"),
            serializer=BytesCodec(endian="little"),
            compressors=codecs,
            attributes={
                "units": "s" if name == "seconds" else "m",
                "coordinates": "origin_lon origin_lat destination_lon destination_lat",
                "description": (
                    "fastest drive time" if name == "seconds" else "road metres along it"
                )
                + "; inf = no route or beyond the cutoff, NaN = not computed",
            },
        )
        nrb, ncb = -(-n // br), -(-m // bc)
        group.create_array(
            f"checksum_{name}",
            shape=(nrb, ncb),
            chunks=(1, ncb),
            dtype="int64",
            fill_value=_NOT_WRITTEN,
            dimension_names=("row_block", "col_block"),
            attributes={
                "description": f"CRC-32 of each {name} chunk as little-endian float32 bytes in "
                "C order; -1 = not written"
            },
        )
    for side, ids, ll, labels, k in (
        ("origin", origin_ids, o_ll, origin_labels, n),
        ("destination", destination_ids, d_ll, destination_labels, m),
    ):
        idv = _ids(f"{side}_ids", ids, k)
        _vector(group, side, idv, side)
        _vector(group, f"{side}_lon", ll[:, 0], side)
        _vector(group, f"{side}_lat", ll[:, 1], side)
        _vector(group, f"{side}_label", _ids(f"{side}_labels", labels, k).astype(np.int64), side)
    group.attrs.update(
        {
            **dict(attrs or {}),
            "format": STORE_FORMAT,
            "complete": False,
            "created_utc": _utc_now(),
            "block_rows": br,
            "block_cols": bc,
            "checksum": "crc32 of little-endian float32 C-order chunk bytes",
        }
    )
    log.info("matrix store %s created: %dx%d in %dx%d chunks", target, n, m, br, bc)
    return MatrixStore(group, target, storage_options)


def _vector(group: Any, name: str, values: np.ndarray, dim: str) -> None:
    dtype: Any = str if values.dtype == object else values.dtype
    arr = group.create_array(
        name, shape=values.shape, chunks=values.shape, dtype=dtype, dimension_names=(dim,)
    )
    arr[:] = values


def matrix_store_exists(
    url: str | Path, *, storage_options: Mapping[str, Any] | None = None
) -> bool:
    """Whether a Zarr group exists at ``url`` (a roadnet matrix store or not)."""
    import zarr

    kwargs: dict[str, Any] = {"mode": "r", "zarr_format": 3, "use_consolidated": False}
    if storage_options:
        kwargs["storage_options"] = dict(storage_options)
    try:
        zarr.open_group(_url(url), **kwargs)
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        return True  # something is there; opening it says what is wrong
    return True


def open_matrix_store(
    url: str | Path,
    *,
    mode: str = "r",
    storage_options: Mapping[str, Any] | None = None,
) -> MatrixStore:
    """Open an existing matrix store (``mode="r"`` to read, ``"r+"`` to write blocks)."""
    if mode not in ("r", "r+"):
        raise InvalidArgumentError(f"mode must be 'r' or 'r+', got {mode!r}")
    target = _url(url)
    return MatrixStore(_open_group(target, mode, storage_options), target, storage_options)


def check_same_table(
    store: MatrixStore, expected: Mapping[str, Any], labels: Sequence[Any]
) -> None:
    """Raise :class:`MatrixStoreMismatchError` unless ``store`` holds the expected table.

    ``expected`` maps attribute names to values (compared as JSON would store them);
    ``labels`` is ``(origin_labels, destination_labels)``.
    """
    attrs = store.attrs
    diffs = [
        f"{k}: store has {attrs.get(k)!r}, this run {v!r}"
        for k, v in expected.items()
        if _jsonish(attrs.get(k)) != _jsonish(v)
    ]
    o_lab, d_lab = (np.asarray(x, dtype=np.int64) for x in labels)
    if store.shape != (o_lab.shape[0], d_lab.shape[0]):
        diffs.insert(0, f"shape: store {store.shape}, this run {(o_lab.shape[0], d_lab.shape[0])}")
    elif not (
        np.array_equal(store.origin_labels, o_lab)
        and np.array_equal(store.destination_labels, d_lab)
    ):
        diffs.insert(0, "points: the store's coordinates differ from this run's")
    if diffs:
        raise MatrixStoreMismatchError(
            f"store {store.url!r} holds another table ({'; '.join(diffs)}): pass another --out "
            "or delete the store"
        )


def _jsonish(value: Any) -> Any:
    """``value`` as it reads back from JSON attributes (tuples become lists ...)."""
    return json.loads(json.dumps(value))
