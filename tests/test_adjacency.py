"""Area adjacency: polygon adjacency (rook, queen, tolerance) on grids and real layers, pieces
of a territory, islands, and road adjacency (a road crosses the shared border) in Porto."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pytest
import scipy.sparse as sp

import roadnet
from roadnet.adjacency import components_within, isolated_areas, polygon_adjacency, road_adjacency
from roadnet.exceptions import AreaDataError
from roadnet.graph import CompiledGraph
from tests.support import shared_file
from tests.support.grids import grid, pairs


# ------------------------------------------------------------------------ polygon adjacency
@pytest.mark.parametrize("crs", ["EPSG:32631", "EPSG:4326"])
def test_grid_rook_is_4_neighbour_queen_is_8_neighbour(crs: str) -> None:
    nx, ny = 6, 5
    g = grid(nx, ny).to_crs(crs)
    rook = polygon_adjacency(g, kind="rook")
    queen = polygon_adjacency(g, kind="queen")
    n_rook = (nx - 1) * ny + nx * (ny - 1)
    assert rook.nnz == 2 * n_rook
    assert queen.nnz == 2 * (n_rook + 2 * (nx - 1) * (ny - 1))
    assert rook.dtype == bool and rook.shape == (nx * ny, nx * ny)
    # cell (x, y) = y * nx + x: the right neighbour is rook, the diagonal one queen only
    assert rook[0, 1] and rook[0, nx] and not rook[0, nx + 1] and queen[0, nx + 1]


def test_grid_tolerance_bridges_gaps_only_up_to_its_width() -> None:
    gapped = grid(4, 3, gap=0.5)  # 0.5 m gaps, 0.71 m across the corners
    exact = grid(4, 3)
    for kind in ("rook", "queen"):
        ref = polygon_adjacency(exact, kind=kind, tolerance_m=0.0)
        assert pairs(polygon_adjacency(gapped, kind=kind, tolerance_m=1.0)) == pairs(ref)
        assert polygon_adjacency(gapped, kind=kind, tolerance_m=0.4).nnz == 0
    assert polygon_adjacency(exact, kind="rook", tolerance_m=0.0).nnz == 2 * (3 * 3 + 4 * 2)


def test_components_within_checkerboard() -> None:
    nx, ny = 4, 4
    g = grid(nx, ny)
    colour = np.array([(c % nx + c // nx) % 2 for c in range(nx * ny)])
    labels = np.where(colour == 0, "black", "white")
    rook = components_within(polygon_adjacency(g, kind="rook"), labels)
    assert [t for t, _ in rook] == ["black", "white"]
    assert all(len(pieces) == 8 for _, pieces in rook)  # no two same-colour cells share a side
    queen = components_within(polygon_adjacency(g, kind="queen"), labels)
    assert all(len(pieces) == 1 for _, pieces in queen)  # corners join them diagonally
    assert queen[0][1][0].tolist() == np.flatnonzero(labels == "black").tolist()


def test_components_within_orders_pieces_largest_first() -> None:
    # a row of 5 cells: territory "a" = cells 0, 2, 3 -> pieces [2, 3] then [0]
    adj = polygon_adjacency(grid(5, 1))
    out = dict(components_within(adj, ["a", "b", "a", "a", "b"]))
    assert [p.tolist() for p in out["a"]] == [[2, 3], [0]]
    assert [p.tolist() for p in out["b"]] == [[1], [4]]
    assert isolated_areas(adj).size == 0
    assert isolated_areas(sp.csr_matrix((3, 3), dtype=bool)).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("name", "id_col", "known"),
    [
        ("porto_parishes.gpkg", "parish_code", ("131216", "131218")),  # Foz - Lordelo do Ouro
        ("ct_zcta_2010.gpkg", "zcta", ("06510", "06511")),  # New Haven downtown - East Rock
    ],
)
def test_real_polygon_adjacency_invariants(name: str, id_col: str, known: tuple[str, str]) -> None:
    gdf = gpd.read_file(shared_file("areas", name))
    rook = polygon_adjacency(gdf, kind="rook")
    queen = polygon_adjacency(gdf, kind="queen")
    n = len(gdf)
    for adj in (rook, queen):
        assert adj.shape == (n, n)
        assert (adj != adj.T).nnz == 0
        assert not adj.diagonal().any()
    assert pairs(rook) <= pairs(queen)
    assert len(pairs(queen)) > len(pairs(rook))  # some areas meet only at a corner
    ids = gdf[id_col].astype(str).tolist()
    i, j = ids.index(known[0]), ids.index(known[1])
    assert rook[i, j] and rook[j, i]
    assert isolated_areas(rook).size == 0  # both layers are one landmass
    # every area has at least 1 and typically a handful of neighbours
    assert 3 < rook.nnz / n < 8


def test_rhode_island_islands_are_reported() -> None:
    gdf = gpd.read_file(shared_file("areas", "ri_zcta_2010.gpkg"))
    islands = gdf["zcta"].iloc[isolated_areas(polygon_adjacency(gdf))].tolist()
    # Prudence Island, Jamestown (Conanicut Island), Block Island
    assert sorted(islands) == ["02807", "02835", "02872"]


def test_points_have_no_adjacency(caplog: pytest.LogCaptureFixture) -> None:
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([0, 1, 2], [0, 0, 0]), crs="EPSG:32631")
    with caplog.at_level(logging.WARNING, logger="roadnet.adjacency"):
        adj = polygon_adjacency(pts)
    assert adj.shape == (3, 3) and adj.nnz == 0
    assert "no area has a neighbour" in caplog.text


def test_adjacency_bad_input() -> None:
    g = grid(2, 1)
    with pytest.raises(roadnet.AreaDataError, match="kind must be 'rook' or 'queen'"):
        polygon_adjacency(g, kind="bishop")  # type: ignore[arg-type]
    with pytest.raises(roadnet.AreaDataError, match="tolerance_m must be a finite number >= 0"):
        polygon_adjacency(g, tolerance_m=-1)
    with pytest.raises(roadnet.CRSError, match="no CRS"):
        polygon_adjacency(g.set_crs(None, allow_override=True))


# --------------------------------------------------------------------------- road adjacency
#: cross-Douro parish pairs a road joins (by the OSM data): Arrábida, Luís I, Infante and
#: Freixo bridges in Porto, the Crestuma-Lever dam road and the A41 bridge upstream, and two
#: crossings between Gondomar and the Aveiro district (Pedorido, Canedo)
BRIDGED = {
    ("131218", "131742"),  # Lordelo do Ouro e Massarelos - São Pedro da Afurada
    ("131217", "131741"),  # Cedofeita, ..., Sé ... - Santa Marinha
    ("131202", "131741"),  # Bonfim - Santa Marinha
    ("131203", "131712"),  # Campanhã - Oliveira do Douro
    ("130414", "131735"),  # Foz do Sousa e Covelo - Lever
    ("130416", "131735"),  # Melres e Medas - Lever
    ("010614", "130405"),  # Pedorido - Lomba
    ("010938", "130405"),  # Canedo - Lomba
}


@pytest.fixture(scope="module")
def parishes() -> gpd.GeoDataFrame:
    return gpd.read_file(shared_file("areas", "porto_parishes.gpkg"))


def _south(codes: np.ndarray) -> np.ndarray:
    codes = codes.astype(str)
    return np.char.startswith(codes, "01") | np.char.startswith(codes, "1317")


def test_road_adjacency_on_porto(porto: CompiledGraph, parishes: gpd.GeoDataFrame) -> None:
    poly = polygon_adjacency(parishes)
    road = road_adjacency(poly, porto, parishes)
    assert road.shape == poly.shape and (road != road.T).nnz == 0
    assert (road > poly).nnz == 0  # a subset of the polygon neighbours
    assert isolated_areas(road).size == 0  # every parish keeps a road-adjacent neighbour
    assert 0.85 * (poly.nnz // 2) < road.nnz // 2 < poly.nnz // 2
    codes = parishes["parish_code"].to_numpy().astype(str)
    south = _south(codes)
    u, v = sp.triu(road, 1).nonzero()
    cross = {tuple(sorted((codes[a], codes[b]))) for a, b in zip(u, v, strict=True)}
    cross = {pair for pair in cross if south[codes == pair[0]][0] != south[codes == pair[1]][0]}
    assert cross == {tuple(sorted(pair)) for pair in BRIDGED}
    pos = {c: i for i, c in enumerate(codes)}
    assert poly[pos["130415"], pos["131702"]] and not road[pos["130415"], pos["131702"]]
    with pytest.raises(AreaDataError, match="adjacency"):
        road_adjacency(poly[:5, :5], porto, parishes)
