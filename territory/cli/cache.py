"""``roadnet cache ls | info | verify | prune | clear``: the cache folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cache import Store, format_size, parse_size, verify_partials
from roadnet.settings import default_cache_dir
from territory.cli._common import CacheDirOpt, err, friendly, out
from territory.cli._report import print_table
from territory.exceptions import OptionError

__all__ = ["cache_app"]

cache_app = typer.Typer(help="Inspect and manage the cache.", no_args_is_help=True)


def _root(cache_dir: Path | None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if root.exists() and not root.is_dir():
        raise OptionError(f"cache folder {str(root)!r} is a file; give a folder (--cache-dir)")
    return root


def _store(cache_dir: Path | None) -> Store | None:
    """The store of an existing cache folder, or ``None``: reading a cache never creates one."""
    root = _root(cache_dir)
    return Store(root) if root.exists() else None


def _no_cache_line(cache_dir: Path | None, what: str) -> None:
    err.print(f"no cache folder at {_root(cache_dir)}: {what}", highlight=False)


@friendly
def cache_ls(
    kind: Annotated[str | None, typer.Option(help="Only entries of this kind.")] = None,
    cache_dir: CacheDirOpt = None,
) -> None:
    """List cached entries (most recently used first) and the total size.

    On a terminal, keys are shortened to a unique prefix (which `cache info` accepts, like
    git's short hashes); piped, full keys are printed as tab-separated lines.
    """
    store = _store(cache_dir)
    if store is None:
        _no_cache_line(cache_dir, "0 entries (nothing cached yet)")
        return
    entries = sorted(store.ls(kind=kind), key=lambda e: -(e.last_access or 0.0))
    rows = []
    for e in entries:
        described = store.info(e.key)
        record = described[1] if described else {}
        rows.append(
            [
                e.key,
                e.kind,
                format_size(e.size_bytes),
                str(e.created)[:19],
                time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_access)),
                _describe_entry(record),
            ]
        )
    headers = ["key", "kind", "size", "created", "last used", "what"]
    if not out.is_terminal:
        typer.echo("\t".join(headers))
        for r in rows:
            typer.echo("\t".join(r))
    else:
        short = _short_keys([e.key for e in store.ls()])
        for r in rows:
            r[0] = short[r[0]]
        print_table(headers, rows)
    err.print(
        f"{len(entries)} entr(y/ies), {format_size(store.total_size())} in {store.root}",
        highlight=False,
    )


def _short_keys(keys: list[str], minimum: int = 12) -> dict[str, str]:
    """Each key's shortest prefix of at least ``minimum`` characters that no other key has."""
    ordered = sorted(keys)
    short = {}
    for i, key in enumerate(ordered):
        common = 0
        for other in (ordered[i - 1] if i else "", ordered[i + 1] if i + 1 < len(ordered) else ""):
            n = 0
            while n < min(len(key), len(other)) and key[n] == other[n]:
                n += 1
            common = max(common, n)
        short[key] = key[: max(minimum, common + 1)]
    return short


def resolve_key(store: Store, key: str) -> str:
    """The full key of ``key`` or of the one entry whose key starts with it."""
    if store.contains(key):
        return key
    matches = sorted(e.key for e in store.ls() if e.key.startswith(key))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise OptionError(f"no cache entry with key {key!r} (see `roadnet cache ls`)")
    raise OptionError(
        f"key prefix {key!r} is ambiguous: {len(matches)} entries start with it "
        f"({', '.join(matches[:5])}{', ...' if len(matches) > 5 else ''}); give more characters"
    )


def _describe_entry(record: dict[str, Any]) -> str:
    inputs = record.get("inputs") or {}
    meta = record.get("meta") or {}
    if record.get("kind") == "graph":
        src = inputs.get("source", {})
        what = src.get("query") or (src.get("sha256", "")[:12] and f"sha256 {src['sha256'][:12]}")
        counts = meta.get("counts", {})
        return f"{src.get('type')} {what} ({counts.get('nodes', '?')} nodes)"
    if record.get("kind") == "matrix":
        cut = meta.get("cutoff_s")
        return (
            f"{meta.get('rows')} x {meta.get('cols')}"
            + (f", cutoff {cut:g} s" if cut else "")
            + (", with metres" if meta.get("metres_key") else "")
            + (f", by {'+'.join(meta['engines'])}" if meta.get("engines") else "")
        )
    if record.get("kind") == "names":
        return f"road names of graph {str(inputs.get('graph', ''))[:12]} ({meta.get('ways')} ways)"
    return ""


@friendly
def cache_info(
    key: Annotated[
        str, typer.Argument(help="Entry key or a unique prefix of it (see `roadnet cache ls`).")
    ],
    cache_dir: CacheDirOpt = None,
) -> None:
    """Show an entry's metadata record: inputs, created, size, shapes, checksums."""
    store = _store(cache_dir)
    if store is None:
        raise OptionError(
            f"no cache entry with key {key!r}: no cache folder at {str(_root(cache_dir))!r} "
            "(check --cache-dir)"
        )
    described = store.info(resolve_key(store, key))
    if described is None:
        raise OptionError(f"no cache entry with key {key!r} (see `roadnet cache ls`)")
    out.print_json(json.dumps(described[1], default=str))


@friendly
def cache_verify(cache_dir: CacheDirOpt = None) -> None:
    """Check every entry's checksums, and the blocks of interrupted precomputes.

    Corrupt entries are quarantined, damaged blocks removed (the next `roadnet precompute`
    computes them again); exit 1 if any.
    """
    store = _store(cache_dir)
    if store is None:
        raise OptionError(
            f"cache folder {str(_root(cache_dir))!r} does not exist: nothing to verify "
            "(check --cache-dir)"
        )
    store.cleanup()
    rep = store.verify()
    partials = verify_partials(store)
    damaged = {k: v for k, v in partials.items() if v}
    out.print(
        f"{len(rep.ok)} entr(y/ies) ok, {len(rep.corrupt)} corrupt (quarantined), "
        f"{len(rep.missing)} missing; {len(partials)} resumable matrix(es), "
        f"{sum(map(len, damaged.values()))} damaged block(s) removed",
        highlight=False,
    )
    for key in rep.corrupt:
        out.print(f"corrupt: {key}", highlight=False)
    for key, blocks in damaged.items():
        out.print(
            f"damaged blocks of resumable matrix {key}: {blocks[:20]} (removed; "
            "`roadnet precompute` computes them again)",
            highlight=False,
        )
    if rep.corrupt or rep.missing or damaged:
        raise typer.Exit(1)


@friendly
def cache_prune(
    max_size: Annotated[str, typer.Option(help="Keep at most this much, e.g. 5GB.")],
    cache_dir: CacheDirOpt = None,
) -> None:
    """Remove least recently used entries until the cache fits in --max-size."""
    limit = parse_size(max_size)
    store = _store(cache_dir)
    if store is None:
        _no_cache_line(cache_dir, "nothing to remove")
        return
    removed = store.prune(limit)
    out.print(
        f"removed {len(removed)} entr(y/ies); {format_size(store.total_size())} left",
        highlight=False,
    )


@friendly
def cache_clear(
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask for confirmation.", metavar="")
    ] = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Remove every cached entry."""
    store = _store(cache_dir)
    if store is None:
        _no_cache_line(cache_dir, "nothing to remove")
        return
    if not yes and not typer.confirm(f"remove every entry in {store.root}?"):
        raise typer.Exit(1)
    removed = store.clear()
    out.print(f"removed {len(removed)} entr(y/ies) from {store.root}", highlight=False)


cache_app.command("ls")(cache_ls)
cache_app.command("info")(cache_info)
cache_app.command("verify")(cache_verify)
cache_app.command("prune")(cache_prune)
cache_app.command("clear")(cache_clear)
