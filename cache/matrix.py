"""Labelled 2-d matrices stored in row blocks, read in verified parts, and computed resumably.

A matrix entry is an ordinary entry holding three arrays: ``matrix`` (one ``.npy`` of shape
``(n_rows, n_cols)``, C order), ``row_labels`` and ``col_labels``; its ``meta.json`` records a
SHA-256 per block of ``block_rows`` rows. A 20,000 x 20,000 float32 matrix (1.6 GB) can thus be
written from blocks that never fit in memory together and read in parts: each read hashes only
the row blocks it touches (once per :class:`MatrixEntry`).

Resumable computation
---------------------
:class:`PartialMatrix` keeps finished row blocks under ``<root>/partial/<key>/``, each written
atomically as its own file ``block-<i>-<sha256>.npy`` (temp file, fsync, rename), next to a
``spec.json`` fixing kind, inputs, shape, dtype, block size and labels. A process killed halfway
loses only the blocks in flight: the next :meth:`Store.partial_matrix` call for the same key and
the same spec resumes with :meth:`PartialMatrix.done_blocks`. A different spec raises
:class:`~cache.exceptions.PartialMismatchError` unless ``restart=True`` discards the old blocks.
:meth:`PartialMatrix.finish` verifies every block, assembles the final entry atomically (like
:meth:`Store.put`) and then removes the partial folder.

Example
-------
>>> import numpy as np, tempfile
>>> from cache import Store
>>> store = Store(tempfile.mkdtemp())
>>> labels = np.array(["a", "b", "c"])
>>> part = store.partial_matrix("m1", "demo", {}, (3, 3), labels, labels, block_rows=2)
>>> for i in sorted(set(range(part.n_blocks)) - part.done_blocks()):
...     start, stop = part.block_range(i)
...     part.write_block(i, np.full((stop - start, 3), i, dtype=np.float32))
>>> info = part.finish()
>>> store.open_matrix("m1").rows(1, 3).tolist()
[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

import contextlib
import json
import logging
import operator
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from cache._arrays import (
    as_stored_array,
    bad_chunk_message,
    byte_view,
    load_array,
    npy_header,
    sha256_hex,
    validate_array_record,
    write_array_file,
    write_blocks_file,
)
from cache._fsio import TempDir, fsync_dir, utc_stamp
from cache._pause import pause_point
from cache.exceptions import (
    CacheCorruptError,
    CacheWriteError,
    IncompleteMatrixError,
    MatrixError,
    PartialMismatchError,
    UnsupportedInputError,
)
from cache.keys import array_digest, make_key, readable_inputs, readable_meta
from cache.store import EntryInfo, check_key, check_kind

if TYPE_CHECKING:
    from cache.store import Store

__all__ = [
    "COL_LABELS",
    "MATRIX",
    "ROW_LABELS",
    "MatrixEntry",
    "PartialMatrix",
    "open_matrix",
    "partial_matrix",
    "put_matrix",
    "verify_partials",
]

logger = logging.getLogger(__name__)

#: Names of the three arrays of a matrix entry.
MATRIX = "matrix"
ROW_LABELS = "row_labels"
COL_LABELS = "col_labels"

_PARTIAL_FORMAT = "array-cache-partial-matrix"
_BLOCK_RE = re.compile(r"^block-(\d{6,})-([0-9a-f]{64})\.npy$")
_SPEC_FILE = "spec.json"
# Fields of spec.json that must match for a partial matrix to be resumed.
_COMPARED = (
    "kind",
    "inputs_key",
    "shape",
    "dtype",
    "block_rows",
    "row_labels_sha256",
    "col_labels_sha256",
)


def _labels(name: str, labels: npt.ArrayLike) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise MatrixError(f"{name} must be 1-d, got shape {array.shape}")
    if array.dtype.hasobject:
        if all(isinstance(x, str) for x in array.tolist()):
            array = array.astype(str)
        else:
            raise UnsupportedInputError(
                f"{name} has dtype object with non-str values; use ints or strings"
            )
    return as_stored_array(name, array)


def _matrix_dtype(dtype: npt.DTypeLike) -> np.dtype[Any]:
    dt = np.dtype(dtype)
    if dt.kind not in "biufc":
        raise MatrixError(f"matrix dtype must be numeric or bool, got {dt}")
    return dt


def _block_rows(block_rows: Any) -> int:
    try:
        value = operator.index(block_rows)
    except TypeError:
        value = 0
    if value < 1:
        raise MatrixError(f"block_rows must be an int >= 1, got {block_rows!r}")
    return value


def _matrix_spec(block_rows: int, shape: tuple[int, int], dtype: np.dtype[Any]) -> dict[str, Any]:
    return {
        "array": MATRIX,
        "row_labels": ROW_LABELS,
        "col_labels": COL_LABELS,
        "block_rows": block_rows,
        "shape": [shape[0], shape[1]],
        "dtype": dtype.str,
    }


def put_matrix(
    store: Store,
    key: str,
    kind: str,
    inputs: Mapping[str, Any] | None,
    matrix_or_blocks: npt.ArrayLike | Iterable[tuple[int, npt.ArrayLike]],
    *,
    row_labels: npt.ArrayLike,
    col_labels: npt.ArrayLike,
    block_rows: int = 1024,
    meta: Mapping[str, Any] | None = None,
    dtype: npt.DTypeLike = np.float32,
) -> EntryInfo:
    """Store a labelled matrix, checksummed per block of ``block_rows`` rows.

    Parameters
    ----------
    store
        The store.
    key, kind, inputs, meta
        As for :meth:`Store.put`.
    matrix_or_blocks
        Either the whole matrix (a numpy array or array-like, e.g. a memory map), or an
        iterable of ``(row_start, block)`` pairs: 2-d blocks of any height, in any order,
        covering every row exactly once. Blocks are written to disk as they come, so the
        producer never needs the whole matrix in memory.
    row_labels, col_labels
        1-d labels; their lengths give the shape.
    block_rows
        Rows per checksummed block (the unit of partial verification).
    dtype
        Stored dtype (values are cast with ``same_kind`` casting); float32 by default.

    Returns
    -------
    EntryInfo
        The stored entry.

    Raises
    ------
    MatrixError
        Shapes disagree with the labels, blocks overlap or leave rows unwritten.
    CacheWriteError
        As for :meth:`Store.put`.
    """
    check_key(key)
    check_kind(kind)
    rows = _labels(ROW_LABELS, row_labels)
    cols = _labels(COL_LABELS, col_labels)
    shape = (rows.shape[0], cols.shape[0])
    dt = _matrix_dtype(dtype)
    br = _block_rows(block_rows)
    blocks: Iterable[tuple[int, Any]]
    if isinstance(matrix_or_blocks, np.ndarray) or hasattr(matrix_or_blocks, "__array__"):
        matrix = np.asarray(matrix_or_blocks)
        if matrix.shape != shape:
            raise MatrixError(
                f"the matrix has shape {matrix.shape}, but the labels give {shape} "
                f"({len(rows)} row labels, {len(cols)} column labels)"
            )
        blocks = ((start, matrix[start : start + br]) for start in range(0, shape[0], br))
    elif isinstance(matrix_or_blocks, Iterable):
        blocks = matrix_or_blocks  # type: ignore[assignment]
    else:
        raise MatrixError(
            "matrix_or_blocks must be an array or an iterable of (row_start, block) pairs, "
            f"got {type(matrix_or_blocks).__name__}"
        )

    def write(folder: Path) -> dict[str, dict[str, Any]]:
        return {
            ROW_LABELS: write_array_file(folder / f"{ROW_LABELS}.npy", rows),
            COL_LABELS: write_array_file(folder / f"{COL_LABELS}.npy", cols),
            MATRIX: write_blocks_file(folder / f"{MATRIX}.npy", shape, dt, br, blocks),
        }

    return store.write_entry(
        key,
        kind,
        readable_inputs(inputs),
        readable_meta(meta),
        write,
        {"matrix": _matrix_spec(br, shape, dt)},
    )


def _positions(index: Any, n: int, name: str) -> np.ndarray:
    if index is None:
        return np.arange(n)
    if isinstance(index, slice):
        return np.arange(n)[index]
    positions = np.asarray(index)
    if positions.dtype == bool:
        if positions.shape != (n,):
            raise IndexError(
                f"{name} is a boolean mask of shape {positions.shape}, expected ({n},)"
            )
        return np.flatnonzero(positions)
    if positions.ndim != 1 or (positions.size and positions.dtype.kind not in "iu"):
        raise IndexError(f"{name} must be a 1-d array of integer positions, a slice or None")
    positions = positions.astype(np.int64, copy=False)
    if positions.size and (positions.min() < -n or positions.max() >= n):
        raise IndexError(f"{name} holds positions outside 0..{n - 1}")
    return np.where(positions < 0, positions + n, positions)


class MatrixEntry:
    """A stored matrix opened for reading in verified parts (from :meth:`Store.open_matrix`).

    The matrix is memory-mapped; :meth:`rows` and :meth:`take` hash every row block they touch
    (once per object) before returning data. A block that fails its checksum quarantines the
    entry, emits a :class:`~cache.exceptions.CacheCorruptWarning` and raises
    :class:`~cache.exceptions.CacheCorruptError`; blocks not touched are never read.

    Attributes
    ----------
    info
        The entry's :class:`~cache.store.EntryInfo`.
    record
        The full ``meta.json``.
    row_labels, col_labels
        The labels (verified, in memory).
    block_rows
        Rows per checksummed block.
    """

    def __init__(
        self,
        store: Store,
        info: EntryInfo,
        record: dict[str, Any],
        data: np.ndarray,
        row_labels: np.ndarray,
        col_labels: np.ndarray,
    ) -> None:
        self._store = store
        self.info = info
        self.record = record
        self._data: np.ndarray | None = data
        self.row_labels = row_labels
        self.col_labels = col_labels
        self.block_rows = int(record["matrix"]["block_rows"])
        self._array_record = record["arrays"][MATRIX]
        self._verified: set[int] = set()
        self._broken: str | None = None

    def __repr__(self) -> str:
        return f"MatrixEntry(key={self.info.key!r}, kind={self.info.kind!r}, shape={self.shape})"

    def __enter__(self) -> MatrixEntry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_cols)``."""
        n_rows, n_cols = self._array_record["shape"]
        return int(n_rows), int(n_cols)

    @property
    def dtype(self) -> np.dtype[Any]:
        """Stored dtype (float32 unless stored otherwise)."""
        return np.dtype(self._array_record["dtype"])

    @property
    def meta(self) -> dict[str, Any]:
        """User metadata."""
        return dict(self.record["meta"])

    @property
    def n_blocks(self) -> int:
        """Number of row blocks."""
        return len(self._array_record["chunk_sha256"])

    def block_range(self, i: int) -> tuple[int, int]:
        """Rows ``(start, stop)`` of block ``i``."""
        start = i * self.block_rows
        return start, min(start + self.block_rows, self.shape[0])

    def _matrix(self) -> np.ndarray:
        if self._broken is not None:
            raise CacheCorruptError(self._broken)
        if self._data is None:
            raise ValueError(f"matrix entry {self.info.key} is closed")
        return self._data

    def _fail(self, block: int) -> None:
        reason = bad_chunk_message(f"{MATRIX}.npy", self._array_record, block)
        where = self._store.quarantine(
            self.info.key, self.info.version, self.info.kind, reason, warn=True
        )
        self._broken = (
            f"cache entry {self.info.key} ({self.info.kind}) is corrupt: {reason}; "
            f"quarantined at {where}; recompute it"
        )
        raise CacheCorruptError(self._broken)

    def _check_blocks(self, blocks: Iterable[int]) -> None:
        data = self._matrix()
        expected = self._array_record["chunk_sha256"]
        for block in blocks:
            if block in self._verified:
                continue
            start, stop = self.block_range(block)
            if sha256_hex(byte_view(data[start:stop])) != expected[block]:
                self._fail(block)
            self._verified.add(block)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as an in-memory array, after verifying the blocks they touch.

        Raises
        ------
        CacheCorruptError
            A touched block fails its checksum (the entry is quarantined).
        """
        data = self._matrix()
        n_rows, n_cols = self.shape
        start, stop, _ = slice(start, stop).indices(n_rows)
        stop = max(start, stop)
        out = np.empty((stop - start, n_cols), dtype=data.dtype)
        if stop == start:
            return out
        expected = self._array_record["chunk_sha256"]
        for block in range(start // self.block_rows, (stop - 1) // self.block_rows + 1):
            first, last = self.block_range(block)
            if block in self._verified:
                source = data[first:last]
            else:
                source = np.array(data[first:last])  # read once, hash the copy we return from
                if sha256_hex(byte_view(source)) != expected[block]:
                    self._fail(block)
                self._verified.add(block)
            lo, hi = max(first, start), min(last, stop)
            out[lo - start : hi - start] = source[lo - first : hi - first]
        return out

    def take(self, row_idx: Any = None, col_idx: Any = None) -> np.ndarray:
        """The sub-matrix at the given row and column positions, reading only needed blocks.

        Parameters
        ----------
        row_idx, col_idx
            1-d integer positions (negative count from the end), boolean masks, slices or
            ``None`` for all.

        Returns
        -------
        numpy.ndarray
            ``matrix[np.ix_(row_idx, col_idx)]`` in memory.
        """
        data = self._matrix()
        n_rows, n_cols = self.shape
        rows = _positions(row_idx, n_rows, "row_idx")
        cols = _positions(col_idx, n_cols, "col_idx")
        self._check_blocks(np.unique(rows // self.block_rows).tolist())
        return np.asarray(data[np.ix_(rows, cols)])

    def verify(self) -> None:
        """Verify every row block (reads the whole matrix once)."""
        self._check_blocks(range(self.n_blocks))

    def close(self) -> None:
        """Drop the memory map (its file stays open until garbage-collected)."""
        self._data = None


def open_matrix(store: Store, key: str) -> MatrixEntry | None:
    """Open a stored matrix; ``None`` on a miss or if it was corrupt (then quarantined).

    Raises
    ------
    MatrixError
        The entry exists but was not stored with :func:`put_matrix`.
    """
    check_key(key)

    def loader(
        version: str, vdir: Path, record: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        spec = record.get("matrix")
        if not isinstance(spec, dict) or set(record["arrays"]) != {MATRIX, ROW_LABELS, COL_LABELS}:
            raise MatrixError(
                f"cache entry {key} ({record['kind']}) is not a matrix; it holds the arrays "
                f"{sorted(record['arrays'])} (store matrices with put_matrix)"
            )
        array_record = record["arrays"][MATRIX]
        if (
            spec.get("block_rows") != array_record["chunk_rows"]
            or len(array_record["shape"]) != 2
            or spec.get("shape") != array_record["shape"]
        ):
            raise CacheCorruptError("the matrix description in meta.json is inconsistent")
        arrays = record["arrays"]
        row_labels = load_array(
            vdir / f"{ROW_LABELS}.npy", arrays[ROW_LABELS], mmap=False, verify=True
        )
        col_labels = load_array(
            vdir / f"{COL_LABELS}.npy", arrays[COL_LABELS], mmap=False, verify=True
        )
        if (len(row_labels), len(col_labels)) != tuple(array_record["shape"]):
            raise CacheCorruptError("the labels do not match the matrix shape")
        data = load_array(vdir / f"{MATRIX}.npy", array_record, mmap=True, verify=False)
        return data, row_labels, col_labels

    status, version, record, value = store.read_entry(key, loader, warn=True)
    if status != "ok" or version is None or record is None or value is None:
        return None
    last = store.touch(key, version, record)
    info = store.info_from(key, version, record, last)
    data, row_labels, col_labels = value
    return MatrixEntry(store, info, record, data, row_labels, col_labels)


class PartialMatrix:
    """A matrix being computed block by block, surviving crashes (see the module docs).

    Create with :meth:`Store.partial_matrix`. Several processes may write different blocks of
    one partial matrix at the same time.

    Attributes
    ----------
    key, kind
        Key and kind of the final entry.
    folder
        ``<root>/partial/<key>``.
    shape, dtype, block_rows
        Geometry of the matrix.
    """

    def __init__(
        self, store: Store, key: str, folder: Path, spec: dict[str, Any], meta: dict[str, Any]
    ) -> None:
        self._store = store
        self.key = key
        self.folder = folder
        self._spec = spec
        self._meta = meta
        self.kind: str = spec["kind"]
        self.shape: tuple[int, int] = (int(spec["shape"][0]), int(spec["shape"][1]))
        self.dtype: np.dtype[Any] = np.dtype(spec["dtype"])
        self.block_rows = int(spec["block_rows"])

    def __repr__(self) -> str:
        return (
            f"PartialMatrix(key={self.key!r}, shape={self.shape}, "
            f"blocks={len(self.done_blocks())}/{self.n_blocks})"
        )

    @classmethod
    def open(
        cls,
        store: Store,
        key: str,
        kind: str,
        inputs: Mapping[str, Any] | None,
        shape: tuple[int, int],
        row_labels: npt.ArrayLike,
        col_labels: npt.ArrayLike,
        block_rows: int = 1024,
        *,
        dtype: npt.DTypeLike = np.float32,
        meta: Mapping[str, Any] | None = None,
        restart: bool = False,
    ) -> PartialMatrix:
        """Start, or resume, the partial matrix of ``key``.

        Parameters
        ----------
        store
            The store.
        key, kind, inputs, meta
            As for :meth:`Store.put` (``meta`` can also be given to :meth:`finish`).
        shape
            ``(n_rows, n_cols)``; must equal the label lengths.
        row_labels, col_labels
            1-d labels.
        block_rows
            Rows per block; the unit of writing, resuming and verification.
        dtype
            Stored dtype (float32 by default).
        restart
            Discard any finished blocks and start afresh.

        Raises
        ------
        PartialMismatchError
            A partial matrix of this key exists with another kind, inputs, shape, dtype,
            block size or labels, and ``restart`` is false.
        CacheWriteError
            The folder cannot be written.
        """
        check_key(key)
        check_kind(kind)
        rows = _labels(ROW_LABELS, row_labels)
        cols = _labels(COL_LABELS, col_labels)
        dt = _matrix_dtype(dtype)
        br = _block_rows(block_rows)
        try:
            n_rows, n_cols = (operator.index(s) for s in shape)
        except (TypeError, ValueError):
            raise MatrixError(f"shape must be a pair of ints, got {shape!r}") from None
        if (n_rows, n_cols) != (len(rows), len(cols)):
            raise MatrixError(
                f"shape {(n_rows, n_cols)} does not match {len(rows)} row labels and "
                f"{len(cols)} column labels"
            )
        spec: dict[str, Any] = {
            "format": _PARTIAL_FORMAT,
            "format_version": 1,
            "key": key,
            "kind": kind,
            "inputs": readable_inputs(inputs),
            "inputs_key": make_key(kind, inputs or {}),
            "shape": [n_rows, n_cols],
            "dtype": dt.str,
            "block_rows": br,
            "row_labels_sha256": array_digest(rows),
            "col_labels_sha256": array_digest(cols),
            "created": utc_stamp(),
        }
        meta_json = readable_meta(meta)
        store.require_writable(f"start the resumable matrix {key}")
        folder = store.partial_dir / key
        try:
            with store.named_lock(f"partial-{key}", None):
                existing = cls._read_spec(folder)
                if existing is not None and existing.get("format") != _PARTIAL_FORMAT:
                    cls._discard_folder(store, folder)  # unreadable spec: start afresh
                    existing = None
                if existing is not None:
                    diffs = [f for f in _COMPARED if existing.get(f) != spec[f]]
                    if diffs and not restart:
                        detail = ", ".join(
                            f"{f}: {existing.get(f)!r} != {spec[f]!r}" for f in diffs
                        )
                        raise PartialMismatchError(
                            f"a resumable matrix for key {key} already exists in {folder} with "
                            f"another {', '.join(diffs)} ({detail}); pass restart=True to discard "
                            "its finished blocks"
                        )
                    if diffs or restart:
                        logger.info("discarding the resumable matrix in %s", folder)
                        cls._discard_folder(store, folder)
                        existing = None
                if existing is None:
                    cls._create(store, folder, spec, rows, cols)
                    existing = spec
        except OSError as exc:
            raise store.write_error(f"start the resumable matrix {key}", exc) from exc
        return cls(store, key, folder, existing, meta_json)

    @staticmethod
    def _read_spec(folder: Path) -> dict[str, Any] | None:
        try:
            raw = (folder / _SPEC_FILE).read_bytes()
        except FileNotFoundError:
            if folder.exists():
                logger.warning(
                    "resumable matrix folder %s has no %s; starting afresh", folder, _SPEC_FILE
                )
            return None if not folder.exists() else {"format": None}
        try:
            spec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            logger.warning(
                "resumable matrix folder %s has an unreadable %s; starting afresh",
                folder,
                _SPEC_FILE,
            )
            return {"format": None}
        return spec if isinstance(spec, dict) else {"format": None}

    @staticmethod
    def _discard_folder(store: Store, folder: Path) -> None:
        if folder.exists():
            with TempDir(store.tmp_dir, f"del-partial-{folder.name[:12]}") as trash:
                os.rename(folder, trash.path / folder.name)
                fsync_dir(folder.parent)

    @staticmethod
    def _create(
        store: Store, folder: Path, spec: dict[str, Any], rows: np.ndarray, cols: np.ndarray
    ) -> None:
        with TempDir(store.tmp_dir, f"partial-{folder.name[:12]}") as tmp:
            spec[ROW_LABELS] = write_array_file(tmp.path / f"{ROW_LABELS}.npy", rows)
            spec[COL_LABELS] = write_array_file(tmp.path / f"{COL_LABELS}.npy", cols)
            with open(tmp.path / _SPEC_FILE, "xb") as f:
                f.write(json.dumps(spec, indent=1, sort_keys=True).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(tmp.path)
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp.path, folder)
            fsync_dir(folder.parent)

    @property
    def n_blocks(self) -> int:
        """Number of row blocks."""
        return -(-self.shape[0] // self.block_rows)

    def block_range(self, i: int) -> tuple[int, int]:
        """Rows ``(start, stop)`` of block ``i``."""
        if not 0 <= i < self.n_blocks:
            raise IndexError(f"block {i} does not exist; blocks are 0..{self.n_blocks - 1}")
        start = i * self.block_rows
        return start, min(start + self.block_rows, self.shape[0])

    def _block_size(self, i: int) -> int:
        start, stop = self.block_range(i)
        header = npy_header((stop - start, self.shape[1]), self.dtype)
        return len(header) + (stop - start) * self.shape[1] * self.dtype.itemsize

    def _block_files(self) -> dict[int, tuple[Path, str]]:
        try:
            names = sorted(os.listdir(self.folder))
        except FileNotFoundError:
            return {}
        found: dict[int, tuple[Path, str]] = {}
        for name in names:
            match = _BLOCK_RE.match(name)
            if match is None:
                continue
            i = int(match.group(1))
            if i >= self.n_blocks or i in found:
                continue
            path = self.folder / name
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size == self._block_size(i):
                    found[i] = (path, match.group(2))
        return found

    def done_blocks(self) -> set[int]:
        """Indices of the blocks already written (by any process, before or after a crash)."""
        return set(self._block_files())

    def missing_blocks(self) -> list[int]:
        """Indices of the blocks still to write, in order."""
        done = self.done_blocks()
        return [i for i in range(self.n_blocks) if i not in done]

    def write_block(self, i: int, block: npt.ArrayLike) -> None:
        """Write row block ``i`` atomically (replacing an earlier copy of it).

        Parameters
        ----------
        i
            Block index, ``0 <= i < n_blocks``.
        block
            Array of shape ``block_range(i)`` rows x ``n_cols``; cast to the matrix dtype.

        Raises
        ------
        MatrixError
            Wrong shape or dtype.
        CacheWriteError
            The block could not be written (the partial folder was removed, disk full...).
        """
        i = operator.index(i)
        start, stop = self.block_range(i)
        array = np.asarray(block)
        if array.shape != (stop - start, self.shape[1]):
            raise MatrixError(
                f"block {i} must have shape {(stop - start, self.shape[1])} (rows {start}:{stop}), "
                f"got {array.shape}"
            )
        if not np.can_cast(array.dtype, self.dtype, casting="same_kind"):
            raise MatrixError(f"block {i} has dtype {array.dtype}, not castable to {self.dtype}")
        array = np.ascontiguousarray(array, dtype=self.dtype)
        digest = sha256_hex(byte_view(array))
        final = self.folder / f"block-{i:06d}-{digest}.npy"
        tmp = self.folder / f".tmp-{i:06d}-{os.getpid()}-{secrets.token_hex(4)}.npy"
        try:
            with open(tmp, "xb") as f:
                f.write(npy_header(array.shape, self.dtype))
                f.write(byte_view(array))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            fsync_dir(self.folder)
            pause_point("partial_block_written")
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise CacheWriteError(
                f"cannot write block {i} of the resumable matrix {self.key} "
                f"in {self.folder}: {exc}",
                self.folder,
                exc.errno,
            ) from exc
        for other in self.folder.glob(f"block-{i:06d}-*.npy"):
            if other.name != final.name:
                with contextlib.suppress(OSError):
                    other.unlink()

    def _load_labels(self) -> tuple[np.ndarray, np.ndarray]:
        labels = []
        for name in (ROW_LABELS, COL_LABELS):
            record = self._spec.get(name)
            try:
                validate_array_record(name, record)
                assert isinstance(record, dict)
                labels.append(
                    load_array(self.folder / f"{name}.npy", record, mmap=False, verify=True)
                )
            except (CacheCorruptError, FileNotFoundError) as exc:
                raise CacheCorruptError(
                    f"the {name} of the resumable matrix {self.key} in {self.folder} are damaged "
                    f"({exc}); start again with restart=True"
                ) from None
        return labels[0], labels[1]

    def _read_block(self, i: int, path: Path, digest: str) -> np.ndarray | None:
        """Block ``i`` read from ``path`` when it matches its checksum, else ``None``."""
        start, stop = self.block_range(i)
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            logger.debug("block file %s unreadable: %s", path, exc)
            return None
        ok = (
            array.shape == (stop - start, self.shape[1])
            and array.dtype == self.dtype
            and sha256_hex(byte_view(np.ascontiguousarray(array))) == digest
        )
        return array if ok else None

    def verify_blocks(self) -> list[int]:
        """Check every written block's checksum; remove the damaged ones (they become missing).

        Returns
        -------
        list of int
            Indices of the blocks that were damaged and removed.
        """
        bad = []
        with self._store.named_lock(f"partial-{self.key}", None):
            for i, (path, digest) in sorted(self._block_files().items()):
                if self._read_block(i, path, digest) is None:
                    with contextlib.suppress(OSError):
                        path.unlink()
                    bad.append(i)
        return bad

    def _verified_blocks(
        self, files: dict[int, tuple[Path, str]]
    ) -> Iterator[tuple[int, np.ndarray]]:
        for i in range(self.n_blocks):
            path, digest = files[i]
            start, stop = self.block_range(i)
            array = self._read_block(i, path, digest)
            if array is None:
                with contextlib.suppress(OSError):
                    path.unlink()
                message = (
                    f"block {i} (rows {start}:{stop}) of the resumable matrix {self.key} is "
                    f"corrupt ({path.name}); it was removed and shows as missing"
                )
                logger.warning(message)
                raise CacheCorruptError(message)
            yield start, array

    def finish(self, meta: Mapping[str, Any] | None = None) -> EntryInfo:
        """Verify all blocks, store the final matrix entry atomically, remove the partial folder.

        Parameters
        ----------
        meta
            User metadata of the final entry (default: the ``meta`` given when opening).

        Returns
        -------
        EntryInfo
            The stored matrix entry (read it with :meth:`Store.open_matrix`).

        Raises
        ------
        IncompleteMatrixError
            Some blocks are missing (the message lists the first ones).
        CacheCorruptError
            A block file fails its checksum; it is removed so that it shows as missing.
        """
        meta_json = readable_meta(meta) if meta is not None else self._meta
        with self._store.named_lock(f"partial-{self.key}", None):
            files = self._block_files()
            missing = [i for i in range(self.n_blocks) if i not in files]
            if missing:
                raise IncompleteMatrixError(
                    f"the resumable matrix {self.key} lacks {len(missing)} of {self.n_blocks} "
                    f"row blocks (first: {missing[:10]}); write them with write_block() first"
                )
            rows, cols = self._load_labels()
            blocks = self._verified_blocks(files)

            def write(folder: Path) -> dict[str, dict[str, Any]]:
                return {
                    ROW_LABELS: write_array_file(folder / f"{ROW_LABELS}.npy", rows),
                    COL_LABELS: write_array_file(folder / f"{COL_LABELS}.npy", cols),
                    MATRIX: write_blocks_file(
                        folder / f"{MATRIX}.npy", self.shape, self.dtype, self.block_rows, blocks
                    ),
                }

            info = self._store.write_entry(
                self.key,
                self.kind,
                self._spec.get("inputs", {}),
                meta_json,
                write,
                {"matrix": _matrix_spec(self.block_rows, self.shape, self.dtype)},
            )
            try:
                self._discard_folder(self._store, self.folder)
            except OSError as exc:
                logger.warning(
                    "could not remove the finished partial folder %s: %s", self.folder, exc
                )
        return info

    def discard(self) -> None:
        """Delete the partial folder and its blocks."""
        try:
            with self._store.named_lock(f"partial-{self.key}", None):
                self._discard_folder(self._store, self.folder)
        except OSError as exc:
            raise self._store.write_error(f"discard the resumable matrix {self.key}", exc) from exc


def partial_matrix(
    store: Store,
    key: str,
    kind: str,
    inputs: Mapping[str, Any] | None,
    shape: tuple[int, int],
    row_labels: npt.ArrayLike,
    col_labels: npt.ArrayLike,
    block_rows: int = 1024,
    *,
    dtype: npt.DTypeLike = np.float32,
    meta: Mapping[str, Any] | None = None,
    restart: bool = False,
) -> PartialMatrix:
    """Start or resume a matrix computed block by block (see :meth:`PartialMatrix.open`)."""
    return PartialMatrix.open(
        store, key, kind, inputs, shape, row_labels, col_labels, block_rows,
        dtype=dtype, meta=meta, restart=restart,
    )  # fmt: skip


def verify_partials(store: Store) -> dict[str, list[int]]:
    """Check the blocks of every resumable matrix of ``store``; remove the damaged ones.

    A removed block shows as missing, so the next run of the computation writes it again.

    Returns
    -------
    dict
        Key of each resumable matrix -> indices of its removed blocks (empty when sound).
    """
    report: dict[str, list[int]] = {}
    try:
        folders = sorted(p for p in store.partial_dir.iterdir() if p.is_dir())
    except FileNotFoundError:
        return report
    for folder in folders:
        spec = PartialMatrix._read_spec(folder)
        if spec is None or spec.get("format") != _PARTIAL_FORMAT:
            continue
        part = PartialMatrix(store, folder.name, folder, spec, {})
        report[folder.name] = part.verify_blocks()
    return report
