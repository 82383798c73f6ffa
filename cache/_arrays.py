"""Array files: raw ``.npy`` files with a SHA-256 per chunk of rows.

Each array is one ``.npy`` file (format 1.0 header, C order, never pickled) so that
``np.load(path, mmap_mode="r")`` works on it directly. Its record in ``meta.json`` holds the
dtype, shape, data offset, a SHA-256 of the header bytes and a SHA-256 per *chunk* of
``chunk_rows`` rows along the first axis (about :data:`CHUNK_BYTES` each, or one row block of a
matrix). Any row range can therefore be verified by hashing only the chunks it touches.
"""

from __future__ import annotations

import hashlib
import io
import math
import operator
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cache._pause import pause_point
from cache.exceptions import CacheCorruptError, InvalidKeyError, MatrixError, UnsupportedInputError

__all__ = [
    "CHUNK_BYTES",
    "as_stored_array",
    "bad_chunk_message",
    "byte_view",
    "check_array_name",
    "chunk_hashes",
    "chunks_for_rows",
    "default_chunk_rows",
    "first_bad_chunk",
    "load_array",
    "npy_header",
    "row_count",
    "row_nbytes",
    "sha256_hex",
    "validate_array_record",
    "write_array_file",
    "write_blocks_file",
]

#: Target size of one checksummed chunk of an ordinary array (bytes).
CHUNK_BYTES = 4 * 1024 * 1024

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


def check_array_name(name: object) -> str:
    """Return ``name`` if it is usable as an array file name, else raise InvalidKeyError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.lower() == "meta.json":
        raise InvalidKeyError(
            f"array name {name!r} is not valid; use 1-100 characters from A-Z a-z 0-9 _ . - "
            "not starting with '.' or '-'"
        )
    return name


def as_stored_array(name: str, value: Any) -> np.ndarray:
    """The C-ordered array that will be written for ``value``; rejects object arrays."""
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise UnsupportedInputError(
            f"array {name!r} has dtype {array.dtype}, which needs pickle; store numeric, bool "
            "or fixed-width string arrays (e.g. .astype(str))"
        )
    if array.dtype.itemsize == 0 and array.size:
        raise UnsupportedInputError(f"array {name!r} has the zero-width dtype {array.dtype}")
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    return array


def sha256_hex(data: bytes | memoryview) -> str:
    """SHA-256 hex digest of a bytes-like object."""
    return hashlib.sha256(data).hexdigest()


def row_count(shape: tuple[int, ...] | list[int]) -> int:
    """Number of rows (first-axis entries) of an array; a 0-d array counts as one row."""
    return int(shape[0]) if len(shape) else 1


def row_nbytes(shape: tuple[int, ...] | list[int], itemsize: int) -> int:
    """Bytes per row (per first-axis entry) of a C-ordered array."""
    return math.prod(int(s) for s in shape[1:]) * itemsize


def default_chunk_rows(shape: tuple[int, ...], itemsize: int) -> int:
    """Rows per checksummed chunk so that a chunk holds about :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // max(1, row_nbytes(shape, itemsize)))


def npy_header(shape: tuple[int, ...], dtype: np.dtype[Any]) -> bytes:
    """The ``.npy`` header (magic, version, dict, padding) of a C-ordered array."""
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": tuple(int(s) for s in shape),
    }
    buf = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buf, header)
    except ValueError:  # header longer than 64 KiB (huge structured dtypes)
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue()


def byte_view(array: np.ndarray) -> memoryview:
    """The raw bytes of a C-contiguous array, without a copy."""
    return array.reshape(-1).view(np.uint8).data


def _chunk_slices(shape: tuple[int, ...], itemsize: int, chunk_rows: int) -> list[slice]:
    rows = row_count(shape)
    per_row = row_nbytes(shape, itemsize)
    return [
        slice(i * per_row, min(i + chunk_rows, rows) * per_row) for i in range(0, rows, chunk_rows)
    ]


def chunk_hashes(array: np.ndarray, chunk_rows: int) -> list[str]:
    """SHA-256 of each chunk of ``chunk_rows`` rows of a C-contiguous array."""
    data = byte_view(array)
    return [
        sha256_hex(data[s]) for s in _chunk_slices(array.shape, array.dtype.itemsize, chunk_rows)
    ]


def chunks_for_rows(record: Mapping[str, Any], start: int, stop: int) -> range:
    """Indices of the chunks that hold rows ``start:stop`` of an array record."""
    rows = row_count(record["shape"])
    start, stop, _ = slice(start, stop).indices(rows)
    if stop <= start:
        return range(0)
    chunk_rows = int(record["chunk_rows"])
    return range(start // chunk_rows, (stop - 1) // chunk_rows + 1)


def first_bad_chunk(
    array: np.ndarray, record: Mapping[str, Any], chunks: Iterable[int]
) -> int | None:
    """First chunk among ``chunks`` whose bytes do not match the record, or ``None``."""
    slices = _chunk_slices(array.shape, array.dtype.itemsize, int(record["chunk_rows"]))
    data = byte_view(array)
    expected = record["chunk_sha256"]
    for i in chunks:
        if sha256_hex(data[slices[i]]) != expected[i]:
            return i
    return None


def _record(
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    header: bytes,
    chunk_rows: int,
    hashes: list[str],
) -> dict[str, Any]:
    return {
        "file": path.name,
        "dtype": dtype.str,
        "shape": [int(s) for s in shape],
        "data_offset": len(header),
        "nbytes": math.prod(shape) * dtype.itemsize,
        "header_sha256": sha256_hex(header),
        "chunk_rows": int(chunk_rows),
        "chunk_sha256": hashes,
    }


def write_array_file(
    path: Path, array: np.ndarray, *, chunk_rows: int | None = None
) -> dict[str, Any]:
    """Write a C-contiguous array as ``.npy`` (new file, fsynced) and return its record."""
    if chunk_rows is None:
        chunk_rows = default_chunk_rows(array.shape, array.dtype.itemsize)
    header = npy_header(array.shape, array.dtype)
    with open(path, "xb") as f:
        f.write(header)
        f.write(byte_view(array))
        f.flush()
        os.fsync(f.fileno())
    pause_point("array_written")
    return _record(
        path, array.shape, array.dtype, header, chunk_rows, chunk_hashes(array, chunk_rows)
    )


def _as_block(
    start: Any, block: Any, dtype: np.dtype[Any], shape: tuple[int, int]
) -> tuple[int, np.ndarray]:
    try:
        start = operator.index(start)
    except TypeError:
        raise MatrixError(f"a block's row_start must be an int, got {start!r}") from None
    array = np.asarray(block)
    n_rows, n_cols = shape
    if array.ndim != 2 or array.shape[1] != n_cols:
        raise MatrixError(
            f"the block at row {start} has shape {array.shape}; blocks must be 2-d with "
            f"{n_cols} columns (one per column label)"
        )
    if start < 0 or start + array.shape[0] > n_rows:
        raise MatrixError(
            f"the block at row {start} with {array.shape[0]} rows falls outside rows 0..{n_rows}"
        )
    if not np.can_cast(array.dtype, dtype, casting="same_kind"):
        raise MatrixError(
            f"the block at row {start} has dtype {array.dtype}, not castable to {dtype}"
        )
    return start, np.ascontiguousarray(array, dtype=dtype)


def write_blocks_file(
    path: Path,
    shape: tuple[int, int],
    dtype: np.dtype[Any],
    chunk_rows: int,
    blocks: Iterable[tuple[int, Any]],
) -> dict[str, Any]:
    """Write a 2-d ``.npy`` block by block and return its record (one hash per row block).

    Blocks are ``(row_start, array)`` pairs in any order and of any height; together they must
    cover every row exactly once. Blocks aligned on ``chunk_rows`` are hashed from memory;
    the others are hashed by reading the file back once all rows are written.
    """
    n_rows, n_cols = shape
    header = npy_header(shape, dtype)
    per_row = n_cols * dtype.itemsize
    covered = np.zeros(n_rows, dtype=bool)
    hashes: dict[int, str] = {}
    with open(path, "xb") as f:
        f.write(header)
        f.truncate(len(header) + n_rows * per_row)
        for raw_start, raw_block in blocks:
            start, block = _as_block(raw_start, raw_block, dtype, shape)
            stop = start + block.shape[0]
            if covered[start:stop].any():
                raise MatrixError(f"the block at rows {start}:{stop} overlaps rows written before")
            f.seek(len(header) + start * per_row)
            f.write(byte_view(block))
            covered[start:stop] = True
            pause_point("matrix_block_written")
            if start % chunk_rows == 0 and stop == min(start + chunk_rows, n_rows) and stop > start:
                hashes[start // chunk_rows] = sha256_hex(byte_view(block))
        if not covered.all():
            missing = np.flatnonzero(~covered)
            raise MatrixError(
                f"{missing.size} of {n_rows} rows were never written (first missing row: "
                f"{int(missing[0])}); the blocks must cover every row"
            )
        f.flush()
        os.fsync(f.fileno())
    n_chunks = math.ceil(n_rows / chunk_rows)
    todo = [i for i in range(n_chunks) if i not in hashes]
    if todo:
        with open(path, "rb") as f:
            for i in todo:
                first, last = i * chunk_rows, min((i + 1) * chunk_rows, n_rows)
                f.seek(len(header) + first * per_row)
                hashes[i] = sha256_hex(f.read((last - first) * per_row))
    return _record(path, shape, dtype, header, chunk_rows, [hashes[i] for i in range(n_chunks)])


def validate_array_record(name: str, record: Any) -> None:
    """Raise CacheCorruptError unless ``record`` is a well-formed array record for ``name``."""
    fields: dict[str, type | tuple[type, ...]] = {
        "file": str,
        "dtype": str,
        "shape": list,
        "data_offset": int,
        "nbytes": int,
        "header_sha256": str,
        "chunk_rows": int,
        "chunk_sha256": list,
    }
    if not isinstance(record, dict):
        raise CacheCorruptError(f"the record of array {name!r} is not an object")
    for field, kind in fields.items():
        if not isinstance(record.get(field), kind) or isinstance(record.get(field), bool):
            raise CacheCorruptError(f"the record of array {name!r} lacks a valid {field!r}")
    if record["file"] != f"{name}.npy":
        raise CacheCorruptError(f"array {name!r} points at the unexpected file {record['file']!r}")
    shape = record["shape"]
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise CacheCorruptError(f"array {name!r} has the invalid shape {shape!r}")
    if record["chunk_rows"] < 1 or record["data_offset"] < 10 or record["nbytes"] < 0:
        raise CacheCorruptError(f"array {name!r} has invalid sizes in its record")
    n_chunks = math.ceil(row_count(shape) / record["chunk_rows"])
    hashes = record["chunk_sha256"]
    if len(hashes) != n_chunks or not all(
        isinstance(h, str) and _HEX64_RE.match(h) for h in hashes
    ):
        raise CacheCorruptError(
            f"array {name!r} has {len(hashes)} chunk hashes, expected {n_chunks}"
        )


def load_array(path: Path, record: Mapping[str, Any], *, mmap: bool, verify: bool) -> np.ndarray:
    """Read one array file, checking size, header and (if ``verify``) every chunk hash.

    Raises
    ------
    FileNotFoundError
        The file is missing (the caller decides whether that is a race or corruption).
    CacheCorruptError
        Wrong size, header, dtype, shape or chunk hash.
    """
    size = path.stat().st_size
    expected = record["data_offset"] + record["nbytes"]
    if size != expected:
        raise CacheCorruptError(
            f"{path.name} is {size} bytes, expected {expected} (truncated or overwritten)"
        )
    with open(path, "rb") as f:
        header = f.read(record["data_offset"])
    if sha256_hex(header) != record["header_sha256"]:
        raise CacheCorruptError(f"{path.name}: the .npy header does not match its checksum")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise CacheCorruptError(f"{path.name} cannot be read as .npy: {exc}") from exc
    if array.dtype.str != record["dtype"] or list(array.shape) != record["shape"]:
        raise CacheCorruptError(
            f"{path.name} holds {array.dtype.str} {list(array.shape)}, expected "
            f"{record['dtype']} {record['shape']}"
        )
    if not array.flags.c_contiguous:
        raise CacheCorruptError(f"{path.name} is not in C order")
    if verify:
        bad = first_bad_chunk(array, record, range(len(record["chunk_sha256"])))
        if bad is not None:
            raise CacheCorruptError(bad_chunk_message(path.name, record, bad))
    return array


def bad_chunk_message(file: str, record: Mapping[str, Any], chunk: int) -> str:
    chunk_rows = int(record["chunk_rows"])
    rows = row_count(record["shape"])
    first, last = chunk * chunk_rows, min((chunk + 1) * chunk_rows, rows)
    return f"{file}: rows {first}:{last} (chunk {chunk}) do not match their checksum"
