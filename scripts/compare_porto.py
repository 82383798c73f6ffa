"""Drive-time vs straight-line territories on the Porto parishes (the Douro case).

Designs the same number of territories twice with the same solver, once on straight lines
(the classic mode of commercial tools) and once on drive times, then validates BOTH with the
road graph: territories holding parishes on both banks of the Douro, territories not connected
by road inside themselves (no bridge inside), detour outliers, and drive times from the
centers. Writes the two maps as PNG (``--png-dir``, default ``docs/``).

Usage::

    python scripts/compare_porto.py [-p 10] [--tolerance 0.1] [--method la] [--png-dir docs]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import roadnet
from territory.maps import territory_map_png
from territory.pipeline import design_territories
from territory.validate import validate_territories

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def south_bank(codes: np.ndarray) -> np.ndarray:
    """Parishes south of the Douro: Aveiro district (01xx: Espinho, Santa Maria da Feira,
    Castelo de Paiva) and Vila Nova de Gaia (1317); everything else in the extract lies north."""
    c = np.asarray(codes).astype(str)
    return np.char.startswith(c, "01") | np.char.startswith(c, "1317")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "-p",
        "--territories",
        type=int,
        nargs="+",
        default=[10, 15, 20],
        help="numbers of territories to compare (maps for the first)",
    )
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--method", default="la")
    ap.add_argument("--png-dir", type=Path, default=ROOT / "docs")
    args = ap.parse_args()
    areas = roadnet.read_areas(DATA / "areas" / "porto_parishes.gpkg")
    t0 = time.perf_counter()
    graph = roadnet.graph_from_pbf(DATA / "osm" / "porto_portugal.osm.pbf")
    print(
        f"Porto graph: {graph.n_nodes:,} nodes [{time.perf_counter() - t0:.1f} s]; "
        f"{len(areas)} parishes, tolerance {args.tolerance:.0%}, method {args.method}, "
        "measure: count (each parish counts 1)"
    )
    for i, p in enumerate(args.territories):
        compare(areas, graph, p, args, maps=i == 0)


def compare(
    areas: roadnet.Areas,
    graph: roadnet.CompiledGraph,
    p: int,
    args: argparse.Namespace,
    *,
    maps: bool,
) -> None:
    """Design p territories both ways, validate both on the road graph, print the table."""
    south = south_bank(areas.ids)
    rows = []
    for mode, g in (("straight line", None), ("drive time", graph)):
        t0 = time.perf_counter()
        res = design_territories(
            areas, ["count"], p, graph=g, tolerance=args.tolerance, method=args.method
        )
        secs = time.perf_counter() - t0
        gdf = res.areas
        rep = validate_territories(
            gdf,
            "territory",
            graph=graph,
            center_column="is_center",
            measures=["count"],
            tolerance=args.tolerance,
            id_column=areas.id_column,
        )
        t = rep.territories
        both_banks = [
            int(k)
            for k, grp in gdf.groupby("territory")
            if south[grp.index].any() and not south[grp.index].all()
        ]
        not_connected = t.loc[t["road_connected"] == False, "territory"].astype(int).tolist()  # noqa: E712
        split_no_bridge = sorted(set(both_banks) & set(not_connected))
        drive = rep.areas["drive_minutes_from_center"].to_numpy(float)
        flags = rep.areas[["unreachable", "over_limit", "far_snap", "detour_outlier"]]
        gdf = gdf.assign(
            flagged=flags.any(axis=1).to_numpy() | np.isin(gdf["territory"], not_connected)
        )
        png = args.png_dir / f"porto_{mode.replace(' ', '_')}.png"
        if maps:
            territory_map_png(
                gdf,
                png,
                centers=gdf[gdf["is_center"]],
                flagged_column="flagged",
                title=f"Porto parishes: {p} territories on {mode} "
                "(red: not connected by road inside / detour)",
            )
        rows.append(
            {
                "mode": mode,
                "seconds": secs,
                "max_dev": res.solution.max_deviation,
                "both_banks": len(both_banks),
                "split_no_bridge": len(split_no_bridge),
                "not_road_connected": len(not_connected),
                "detour_outliers": int(rep.areas["detour_outlier"].sum()),
                "max_drive": float(np.nanmax(drive[np.isfinite(drive)])),
                "mean_drive": float(np.nanmean(drive[np.isfinite(drive)])),
                "png": png if maps else None,
            }
        )
    print()
    print(f"{'p = ' + str(p):34s}" + "".join(f"{r['mode']:>16s}" for r in rows))
    for key, label, fmt in [
        ("both_banks", "territories on both Douro banks", "{:d}"),
        ("split_no_bridge", "  ... of them without a bridge", "{:d}"),
        ("not_road_connected", "territories not road-connected", "{:d}"),
        ("detour_outliers", "detour outliers (ratio > 2.5)", "{:d}"),
        ("max_drive", "max drive to center (min)", "{:.1f}"),
        ("mean_drive", "mean drive to center (min)", "{:.1f}"),
        ("max_dev", "max deviation of size", "{:.1%}"),
        ("seconds", "design time (s)", "{:.1f}"),
    ]:
        print(f"{label:34s}" + "".join(f"{fmt.format(r[key]):>16s}" for r in rows))
    for r in rows:
        if r["png"] is not None:
            print(f"map ({r['mode']}): {r['png']}")


if __name__ == "__main__":
    main()
