"""Readers for the p-median benchmark files of OR-Library and of Lorena & Senne.

Every reader returns plain arrays (positions are 0-based rows) and raises
:class:`~optimizer.exceptions.InputError` naming the file and the line when a file is malformed.

Formats
-------
``pmedN.txt`` (Beasley 1990, uncapacitated)
    First line ``n edges p``, then ``edges`` lines ``i j cost`` (1-based, undirected). Some
    edges are listed more than once with different costs; OR-Library's own convention is that
    the **last** listing wins (Beasley builds the distance matrix by overwriting). The distances
    are all-pairs shortest paths over that graph.
``pmedopt.txt``
    A title line (``Data file   Optimal solution value``), then ``name value`` lines.
``pmedcapNN.txt`` (Osman & Christofides 1994, capacitated)
    First line ``instance optimum``, second ``n p capacity``, then ``n`` lines
    ``id x y demand``. The published optima use Euclidean distances **rounded down**
    (:func:`euclidean_distances` with ``floor=True``).
Lorena & Senne (2003/2004, capacitated; SJC, p3038 families)
    First line ``n p``, then ``n`` lines ``x y capacity demand``; exact Euclidean distances.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from optimizer.exceptions import InputError

__all__ = [
    "cpmp_format",
    "euclidean_distances",
    "read_lorena_senne",
    "read_pmed",
    "read_pmedcap",
    "read_pmedopt",
]

PathLike = str | os.PathLike[str]


def _lines(path: PathLike) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, tokens)`` for the non-blank lines of a file (CRLF tolerated)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    for no, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if tokens:
            yield no, tokens


def _numbers(
    path: PathLike, no: int, tokens: list[str], count: int, what: str, kind: type = float
) -> list[float]:
    if len(tokens) != count:
        raise InputError(
            f"{path}, line {no}: expected {count} values ({what}), got {len(tokens)}: "
            f"{' '.join(tokens)!r}"
        )
    try:
        values = [kind(t) for t in tokens]
    except ValueError:
        raise InputError(
            f"{path}, line {no}: expected {count} numbers ({what}), got {' '.join(tokens)!r}"
        ) from None
    if not all(np.isfinite(v) for v in values):
        raise InputError(f"{path}, line {no}: non-finite value in {' '.join(tokens)!r}")
    return values


def _header(path: PathLike, lines: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    try:
        return next(lines)
    except StopIteration:
        raise InputError(f"{path}: the file is empty") from None


def _check_count(path: PathLike, no: int, name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise InputError(f"{path}, line {no}: {name} = {value} must lie in [{lo}, {hi}]")


def read_pmed(path: PathLike) -> tuple[np.ndarray, int, int]:
    """Read an OR-Library uncapacitated p-median file (``pmed1.txt`` ... ``pmed40.txt``).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    dist
        ``(n, n)`` float64 all-pairs shortest-path distances over the undirected graph
        (``inf`` between disconnected nodes). Where an edge is listed more than once the last
        listed cost is used.
    p
        Number of medians.
    n
        Number of nodes.

    Raises
    ------
    InputError
        On a malformed header or edge line (the message names the line), a node number out of
        ``1..n``, a negative cost or an edge count that differs from the header.
    """
    lines = _lines(path)
    no, tokens = _header(path, lines)
    n, n_edges, p = (int(v) for v in _numbers(path, no, tokens, 3, "n edges p", int))
    _check_count(path, no, "n", n, 1, 10**6)
    _check_count(path, no, "p", p, 1, n)
    tails: list[int] = []
    heads: list[int] = []
    costs: list[float] = []
    for no, tokens in lines:
        i, j, c = _numbers(path, no, tokens, 3, "i j cost")
        if i != int(i) or j != int(j) or not (1 <= i <= n and 1 <= j <= n):
            raise InputError(f"{path}, line {no}: node numbers must be integers in 1..{n}")
        if c < 0:
            raise InputError(f"{path}, line {no}: negative edge cost {c:g}")
        tails.append(int(i) - 1)
        heads.append(int(j) - 1)
        costs.append(c)
    if len(costs) != n_edges:
        raise InputError(
            f"{path}: the header announces {n_edges} edges, the file lists {len(costs)}"
        )
    u = np.minimum(tails, heads).astype(np.int64)
    v = np.maximum(tails, heads).astype(np.int64)
    w = np.asarray(costs, dtype=np.float64)
    # the LAST listing of an edge wins: unique on the reversed order keeps the last occurrence;
    # a COO -> CSR conversion would otherwise SUM the duplicates
    key = (u * n + v)[::-1]
    _, first_rev = np.unique(key, return_index=True)
    keep = len(key) - 1 - first_rev
    graph = sp.csr_matrix((w[keep], (u[keep], v[keep])), shape=(n, n))
    dist = shortest_path(graph, method="D", directed=False)
    return np.asarray(dist, dtype=np.float64), p, n


def read_pmedopt(path: PathLike) -> dict[str, float]:
    """Read OR-Library's ``pmedopt.txt``: instance name -> optimal objective value.

    The file starts with a title line (``Data file   Optimal solution value``) followed by
    ``name value`` lines, e.g. ``pmed1 5819``. Lines whose last token is not a number are
    treated as titles only before the first value.

    Raises
    ------
    InputError
        On a malformed value line (named by its number) or a file without values.
    """
    optima: dict[str, float] = {}
    for no, tokens in _lines(path):
        try:
            value = float(tokens[-1])
        except ValueError:
            if not optima:
                continue  # the title line
            raise InputError(f"{path}, line {no}: expected 'name value', got {tokens!r}") from None
        if len(tokens) != 2:
            raise InputError(f"{path}, line {no}: expected 'name value', got {tokens!r}")
        optima[tokens[0]] = value
    if not optima:
        raise InputError(f"{path}: no 'name value' lines found")
    return optima


def read_pmedcap(path: PathLike) -> tuple[np.ndarray, np.ndarray, int, float, float | None]:
    """Read an OR-Library capacitated p-median instance (``pmedcap01.txt`` ... ).

    Parameters
    ----------
    path
        The file: ``instance [optimum]``, then ``n p capacity``, then ``n`` lines
        ``id x y demand``.

    Returns
    -------
    xy
        ``(n, 2)`` coordinates.
    demand
        ``(n,)`` demands.
    p
        Number of medians.
    capacity
        The capacity of every median.
    optimum
        The published optimum from the first line, ``None`` when the line has no value.
        It refers to floor-rounded Euclidean distances (see :func:`euclidean_distances`).

    Raises
    ------
    InputError
        On malformed lines, a wrong number of points, ids out of order or negative demands.
    """
    lines = _lines(path)
    no, tokens = _header(path, lines)
    if len(tokens) not in (1, 2):
        raise InputError(f"{path}, line {no}: expected 'instance optimum', got {tokens!r}")
    optimum = _numbers(path, no, tokens, len(tokens), "instance optimum")[1:]
    no, tokens = _header(path, lines)
    n_f, p_f, capacity = _numbers(path, no, tokens, 3, "n p capacity")
    n, p = int(n_f), int(p_f)
    if n != n_f or p != p_f:
        raise InputError(f"{path}, line {no}: n and p must be integers, got {tokens!r}")
    _check_count(path, no, "n", n, 1, 10**6)
    _check_count(path, no, "p", p, 1, n)
    rows: list[tuple[float, ...]] = []
    for no, tokens in lines:
        ident, x, y, d = _numbers(path, no, tokens, 4, "id x y demand")
        if ident != len(rows) + 1:
            raise InputError(f"{path}, line {no}: expected point id {len(rows) + 1}, got {ident:g}")
        if d < 0:
            raise InputError(f"{path}, line {no}: negative demand {d:g}")
        rows.append((x, y, d))
    if len(rows) != n:
        raise InputError(f"{path}: the header announces {n} points, the file lists {len(rows)}")
    arr = np.asarray(rows, dtype=np.float64)
    return (
        arr[:, :2].copy(),
        arr[:, 2].copy(),
        p,
        float(capacity),
        (optimum[0] if optimum else None),
    )


def read_lorena_senne(path: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Read a capacitated p-median instance in the format of Lorena & Senne.

    Parameters
    ----------
    path
        The file: ``n p``, then ``n`` lines ``x y capacity demand``.

    Returns
    -------
    xy
        ``(n, 2)`` coordinates.
    capacity
        ``(n,)`` capacity of each point as a median.
    demand
        ``(n,)`` demands.
    p
        Number of medians.

    Raises
    ------
    InputError
        On malformed lines, a wrong number of points or negative capacities/demands.
    """
    lines = _lines(path)
    no, tokens = _header(path, lines)
    n, p = (int(v) for v in _numbers(path, no, tokens, 2, "n p", int))
    _check_count(path, no, "n", n, 1, 10**6)
    _check_count(path, no, "p", p, 1, n)
    rows: list[tuple[float, ...]] = []
    for no, tokens in lines:
        x, y, cap, d = _numbers(path, no, tokens, 4, "x y capacity demand")
        if cap < 0 or d < 0:
            raise InputError(f"{path}, line {no}: capacity and demand must be >= 0")
        rows.append((x, y, cap, d))
    if len(rows) != n:
        raise InputError(f"{path}: the header announces {n} points, the file lists {len(rows)}")
    arr = np.asarray(rows, dtype=np.float64)
    return arr[:, :2].copy(), arr[:, 2].copy(), arr[:, 3].copy(), p


def cpmp_format(path: PathLike) -> Literal["pmedcap", "lorena_senne"]:
    """Tell the two capacitated formats apart from their first two lines.

    OR-Library ``pmedcap`` files have a 1- or 2-value first line and a 3-value second line
    (``n p capacity``); Lorena–Senne files have ``n p`` and then 4-value point lines.

    Raises
    ------
    InputError
        When the file matches neither layout.
    """
    lines = _lines(path)
    _, first = _header(path, lines)
    no, second = _header(path, lines)
    if len(first) in (1, 2) and len(second) == 3:
        return "pmedcap"
    if len(first) == 2 and len(second) == 4:
        return "lorena_senne"
    raise InputError(
        f"{path}, line {no}: neither the OR-Library pmedcap layout ('instance optimum' / "
        "'n p capacity' / 'id x y demand') nor the Lorena-Senne layout ('n p' / "
        "'x y capacity demand')"
    )


def euclidean_distances(xy: np.ndarray, *, floor: bool = False) -> np.ndarray:
    """All-pairs Euclidean distances between points, optionally rounded down.

    Parameters
    ----------
    xy
        ``(n, 2)`` coordinates.
    floor
        Round every distance down to an integer, as the published optima of the OR-Library
        capacitated instances require (with exact distances pmedcap01's optimum is 728.26,
        not 713).

    Returns
    -------
    np.ndarray
        ``(n, n)`` float64.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise InputError(f"xy must have shape (n, 2), got {xy.shape}")
    diff = xy[:, None, :] - xy[None, :, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    if floor:
        # sqrt is correctly rounded, so perfect squares give exact integers; the epsilon only
        # guards non-integer coordinates whose true distance is an integer
        dist = np.floor(dist + 1e-9)
    return dist
