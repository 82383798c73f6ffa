"""A generic, persistent, crash-safe store of numpy arrays with JSON metadata.

The cache knows nothing of what it stores: callers give a *kind*, the *inputs* an entry was
computed from (hashed into a key by :func:`make_key` and recorded in readable form), named
arrays and metadata. Every entry is a folder of plain ``.npy`` files (memory-mappable, never
pickled) and a ``meta.json`` with checksums per chunk of rows; writes are atomic (a crash leaves
the old or the new entry, never a mix), corrupt entries are quarantined and reported as misses,
and a cross-process lock per key makes concurrent computations of one key run once.

Large matrices are stored in checksummed row blocks (:func:`put_matrix`), read in
verified parts (:func:`open_matrix`) and can be computed resumably (:func:`partial_matrix`),
functions of :mod:`cache.matrix` built on the :class:`Store`. See :mod:`cache.store` for the
layout on disk and the atomicity design.

Example
-------
>>> import numpy as np, tempfile
>>> from cache import Store, make_key
>>> store = Store(tempfile.mkdtemp())
>>> key = make_key("demo", {"n": 3})
>>> entry, from_cache = store.get_or_compute(key, "demo", {"n": 3}, lambda: ({"x": np.ones(3)}, {}))
>>> from_cache, store.get(key).arrays["x"].tolist()
(False, [1.0, 1.0, 1.0])
"""

from __future__ import annotations

from cache.exceptions import (
    CacheCorruptError,
    CacheCorruptWarning,
    CacheError,
    CacheLockTimeout,
    CacheWriteError,
    IncompleteMatrixError,
    InvalidKeyError,
    InvalidSizeError,
    MatrixError,
    PartialMismatchError,
    UnsupportedInputError,
)
from cache.keys import make_key
from cache.matrix import (
    MatrixEntry,
    PartialMatrix,
    open_matrix,
    partial_matrix,
    put_matrix,
    verify_partials,
)
from cache.sizes import format_size, parse_size
from cache.store import (
    CleanupReport,
    Entry,
    EntryInfo,
    Store,
    VerifyReport,
)

__all__ = [
    "CacheCorruptError",
    "CacheCorruptWarning",
    "CacheError",
    "CacheLockTimeout",
    "CacheWriteError",
    "CleanupReport",
    "Entry",
    "EntryInfo",
    "IncompleteMatrixError",
    "InvalidKeyError",
    "InvalidSizeError",
    "MatrixEntry",
    "MatrixError",
    "PartialMatrix",
    "PartialMismatchError",
    "Store",
    "UnsupportedInputError",
    "VerifyReport",
    "__version__",
    "format_size",
    "make_key",
    "open_matrix",
    "parse_size",
    "partial_matrix",
    "put_matrix",
    "verify_partials",
]

__version__ = "0.1.0"
