"""Tables and maps the commands show and write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from territory import maps
from territory.cli._common import out
from territory.outputs import OutputSet

__all__ = ["print_summary_table", "short_header", "stage_maps"]


def short_header(col: str, unit: str) -> str:
    short = {
        "territory": "terr.",
        "center_id": "center",
        "n_areas": "areas",
        "n_unreachable": "unreach.",
    }
    if col in short:
        return short[col]
    for stat in ("weighted_mean", "mean", "max"):
        if col.startswith(stat + "_") and col.endswith("_to_center"):
            return f"{stat.replace('weighted_mean', 'w.mean')} {unit}"
    if col.endswith("_deviation"):
        return "dev."
    return col


def print_summary_table(summary: Any, unit: str) -> None:
    unit_short = {"minutes": "min", "km": "km"}.get(unit, unit)
    table = Table(title="territories", show_lines=False)
    for col in summary.columns:
        table.add_column(short_header(str(col), unit_short), justify="right")
    for rec in summary.itertuples(index=False):
        cells = []
        for col, val in zip(summary.columns, rec, strict=True):
            if isinstance(val, float):
                cells.append(f"{val:+.1%}" if str(col).endswith("_deviation") else f"{val:,.1f}")
            else:
                cells.append(str(val))
        table.add_row(*cells)
    out.print(table)


def stage_maps(
    outs: OutputSet,
    gdf: Any,
    html: Path | None,
    png: Path | None,
    *,
    title: str,
    flagged_column: str | None = None,
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
                    gdf, tmp, centers=centers, title=title, flagged_column=flagged_column
                ),
            )
        )
    if png is not None:
        written.append(
            outs.stage(
                png,
                lambda tmp: maps.territory_map_png(
                    gdf, tmp, centers=centers, title=title, flagged_column=flagged_column
                ),
            )
        )
    return written
