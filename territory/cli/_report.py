"""Tables and maps the commands show and write."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from territory import maps
from territory.cli._common import out
from territory.outputs import OutputSet

__all__ = ["print_summary_table", "print_table", "short_header", "stage_maps"]


def short_header(col: str, unit: str) -> str:
    """A short column header for the summary table (the full names are in the CSV)."""
    short = {
        "territory": "terr.",
        "center_id": "center",
        "n_areas": "areas",
        "n_unreachable": "unreached",
    }
    if col in short:
        return short[col]
    for stat in ("weighted_mean", "mean", "max"):
        if col.startswith(stat + "_") and col.endswith("_to_center"):
            return f"{stat.replace('weighted_mean', 'w.mean')} {unit}"
    if col.endswith("_deviation"):
        return "dev."
    return col


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    justify: Sequence[str] | None = None,
    console: Console | None = None,
) -> None:
    """Print a table whose values are never cut: headers wrap, a value keeps its full width.

    A column is as wide as its longest value; when the table is wider than the console (or
    the 80 columns of a pipe) it is printed wider rather than truncated.
    """
    console = console or out
    table = Table(title=title, show_lines=False)
    widths = []
    for j, head in enumerate(headers):
        longest = max((len(r[j]) for r in rows), default=0)
        widths.append(max(longest, min(len(head), 12)))
        table.add_column(
            head,
            justify=(justify[j] if justify else "left"),  # type: ignore[arg-type]
            min_width=widths[-1],
            overflow="fold",
            no_wrap=False,
        )
    for r in rows:
        table.add_row(*r)
    needed = sum(widths) + 3 * len(widths) + 1
    console.print(table, width=max(console.width, needed))


def print_summary_table(summary: Any, unit: str) -> None:
    """The per-territory summary of ``optimize`` and ``demo``."""
    unit_short = {"minutes": "min", "km": "km"}.get(unit, unit)
    headers = [short_header(str(col), unit_short) for col in summary.columns]
    rows = []
    for rec in summary.itertuples(index=False):
        cells = []
        for col, val in zip(summary.columns, rec, strict=True):
            if isinstance(val, float):
                cells.append(f"{val:+.1%}" if str(col).endswith("_deviation") else f"{val:,.1f}")
            else:
                cells.append(str(val))
        rows.append(cells)
    print_table(headers, rows, title="territories", justify=["right"] * len(headers))


def stage_maps(
    outs: OutputSet,
    gdf: Any,
    html: Path | None,
    png: Path | None,
    *,
    title: str,
    flagged_column: str | None = None,
    roads: Any = None,
) -> list[Path]:
    """Stage the interactive (``.html``) and static (``.png``) maps of ``gdf`` in ``outs``."""
    if html is None and png is None:
        return []
    centers = gdf[gdf["is_center"]] if "is_center" in gdf.columns else None
    written = []
    if html is not None:
        written.append(
            outs.stage(
                html,
                lambda tmp: maps.territory_map_html(
                    gdf,
                    tmp,
                    centers=centers,
                    title=title,
                    flagged_column=flagged_column,
                    roads=roads,
                ),
            )
        )
    if png is not None:
        written.append(
            outs.stage(
                png,
                lambda tmp: maps.territory_map_png(
                    gdf,
                    tmp,
                    centers=centers,
                    title=title,
                    flagged_column=flagged_column,
                    roads=roads,
                ),
            )
        )
    return written
