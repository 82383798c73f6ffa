"""Cache keys: a SHA-256 of a canonical serialisation of what an entry was computed from.

The canonical form is JSON with sorted keys at every level and no whitespace. Floats are written
with :func:`repr` (so ``1`` and ``1.0`` give different keys, but the order of dictionary keys
never matters), tuples and lists are the same, :class:`pathlib.Path` becomes its string, numpy
scalars become Python numbers and a numpy array is replaced by the SHA-256 of its dtype, shape and
C-order bytes. Anything else raises :class:`~cache.exceptions.UnsupportedInputError` (a
:class:`TypeError`) naming where in the inputs the value sits.

Example
-------
>>> from cache import make_key
>>> make_key("demo", {"b": 1, "a": [1.5, "x"]}) == make_key("demo", {"a": (1.5, "x"), "b": 1})
True
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

from cache.exceptions import UnsupportedInputError

__all__ = [
    "KEY_LENGTH",
    "array_digest",
    "canonical_json",
    "make_key",
    "readable_inputs",
    "readable_meta",
]

#: Number of hex characters in a key made by :func:`make_key` (128 bits).
KEY_LENGTH = 32

# Bumped when the canonical form changes, so old and new keys never collide.
_KEY_SCHEME = 1

_ARRAY_TAG = "__ndarray__"
_BYTES_TAG = "__bytes__"


def array_digest(array: np.ndarray) -> str:
    """SHA-256 hex digest of an array's dtype, shape and C-order bytes.

    Parameters
    ----------
    array
        Any numpy array without Python objects inside.

    Returns
    -------
    str
        64 hex characters; equal arrays of equal dtype and shape give equal digests whatever
        their memory layout.
    """
    if array.dtype.hasobject:
        raise UnsupportedInputError(
            f"cannot hash an array of dtype {array.dtype}: it holds Python objects; "
            "convert it to a numeric, bool or fixed-width string dtype first"
        )
    contiguous = array if array.flags.c_contiguous else array.copy(order="C")
    digest = hashlib.sha256()
    digest.update(f"{contiguous.dtype.str}|{list(contiguous.shape)}|".encode())
    digest.update(contiguous.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def _jsonable(value: Any, where: str, *, finite_only: bool, as_lists: bool = False) -> Any:
    """Convert ``value`` to plain JSON types; ``where`` names it in error messages.

    ``finite_only`` writes NaN and infinities as strings; ``as_lists`` writes numpy arrays as
    nested lists (for user metadata) instead of their digest (for inputs).
    """
    if value is None or isinstance(value, bool | str):
        return str(value) if isinstance(value, str) else value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if finite_only and not math.isfinite(value):
            return repr(value)  # 'nan', 'inf', '-inf': readable JSON has no such numbers
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return _jsonable(float(value), where, finite_only=finite_only, as_lists=as_lists)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise UnsupportedInputError(
                f"{where} is a numpy array of dtype object; supported are numeric, bool and "
                "fixed-width string arrays (convert with .astype(str) or a numeric dtype)"
            )
        if as_lists:
            return _jsonable(value.tolist(), where, finite_only=finite_only)
        return {
            _ARRAY_TAG: {
                "dtype": value.dtype.str,
                "shape": list(value.shape),
                "sha256": array_digest(value),
            }
        }
    if isinstance(value, PurePath):
        return os.fspath(value)
    if isinstance(value, bytes):
        return {_BYTES_TAG: hashlib.sha256(value).hexdigest()}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise UnsupportedInputError(
                    f"{where} has the key {k!r} of type {type(k).__name__}; "
                    "mapping keys must be str"
                )
            out[k] = _jsonable(v, f"{where}[{k!r}]", finite_only=finite_only, as_lists=as_lists)
        return out
    if isinstance(value, list | tuple):
        return [
            _jsonable(v, f"{where}[{i}]", finite_only=finite_only, as_lists=as_lists)
            for i, v in enumerate(value)
        ]
    if isinstance(value, set | frozenset):
        items = [
            _jsonable(v, f"{where}{{...}}", finite_only=finite_only, as_lists=as_lists)
            for v in value
        ]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    raise UnsupportedInputError(
        f"{where} has the unsupported type {type(value).__module__}.{type(value).__qualname__}; "
        "supported are None, bool, int, float, str, bytes, list/tuple, set, mappings with str "
        "keys, pathlib paths, numpy scalars and numpy arrays"
    )


def canonical_json(kind: str, inputs: Mapping[str, Any]) -> str:
    """The canonical string that :func:`make_key` hashes.

    Parameters
    ----------
    kind
        What the entry holds, e.g. ``"drive_time_matrix"``.
    inputs
        Everything the entry was computed from.

    Returns
    -------
    str
        Compact JSON with sorted keys at every level.
    """
    if not isinstance(kind, str) or not kind:
        raise UnsupportedInputError(f"kind must be a non-empty str, got {kind!r}")
    if not isinstance(inputs, Mapping):
        raise UnsupportedInputError(
            f"inputs must be a mapping of str to values, got {type(inputs).__name__}"
        )
    payload = {
        "scheme": _KEY_SCHEME,
        "kind": kind,
        "inputs": _jsonable(inputs, "inputs", finite_only=False),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=True)


def make_key(kind: str, inputs: Mapping[str, Any]) -> str:
    """Key of a cache entry: a hash of its kind and of everything it was computed from.

    Parameters
    ----------
    kind
        What the entry holds, e.g. ``"road_graph"`` or ``"drive_time_matrix"``.
    inputs
        Mapping of str to JSON-like values, paths, numpy scalars and arrays (see the module
        docstring for the canonical form).

    Returns
    -------
    str
        The first :data:`KEY_LENGTH` hex characters of the SHA-256 of :func:`canonical_json`.

    Raises
    ------
    UnsupportedInputError
        A value (named by its path, e.g. ``inputs['speeds'][2]``) has an unsupported type.
    """
    text = canonical_json(kind, inputs)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def readable_inputs(inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Inputs as strict, human-readable JSON for an entry's ``meta.json``.

    Same conversion as the key (arrays become dtype, shape and SHA-256), except that NaN and
    infinities become the strings ``'nan'``, ``'inf'`` and ``'-inf'``.

    Parameters
    ----------
    inputs
        Mapping of str to values, or ``None`` for an empty mapping.

    Returns
    -------
    dict
        Plain JSON types only.
    """
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping):
        raise UnsupportedInputError(
            f"inputs must be a mapping of str to values, got {type(inputs).__name__}"
        )
    out = _jsonable(inputs, "inputs", finite_only=True)
    assert isinstance(out, dict)
    return out


def readable_meta(value: Mapping[str, Any] | None, where: str = "meta") -> dict[str, Any]:
    """User metadata as strict JSON: like :func:`readable_inputs`, but arrays become lists.

    Parameters
    ----------
    value
        Mapping of str to JSON-like values, or ``None`` for an empty mapping.
    where
        Name of the argument, for error messages.

    Returns
    -------
    dict
        Plain JSON types only.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UnsupportedInputError(f"{where} must be a mapping, got {type(value).__name__}")
    out = _jsonable(value, where, finite_only=True, as_lists=True)
    assert isinstance(out, dict)
    return out
