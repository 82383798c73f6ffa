"""Issue 6: road adjacency (a road crosses the shared border) on the Porto parishes, and
`validate` with road adjacency for its contiguity rule (the Douro without a bridge)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from roadnet.adjacency import isolated_areas, polygon_adjacency, road_adjacency
from roadnet.exceptions import AreaDataError
from roadnet.graph import CompiledGraph
from territory.cli import app
from territory.validate import validate_territories
from tests.conftest import shared_file
from tests.test_validate import _PORTO

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


def test_validate_contiguity_on_road_adjacency(porto: CompiledGraph, parishes) -> None:
    sel = parishes[parishes["parish_code"].isin(list(_PORTO))].copy()
    sel["territory"] = sel["parish_code"].map(_PORTO)
    rook = validate_territories(sel, "territory", graph=porto, require_contiguity=True)
    road = validate_territories(
        sel, "territory", graph=porto, require_contiguity=True, adjacency="road"
    )
    assert rook.territories["contiguous"].all() and rook.rule("contiguity")["passed"] is True
    t = road.territories.set_index("territory")
    # Gondomar and Avintes face each other across the Douro: no bridge between them
    assert not t.loc["river", "contiguous"] and t.loc["river", "n_polygon_pieces"] == 2
    # Lordelo do Ouro and Afurada: the Arrábida bridge joins them
    assert t.loc["bridge", "contiguous"] and t.loc["north", "contiguous"]
    assert road.rule("contiguity")["passed"] is False
    assert "river (2 pieces)" in road.rule("contiguity")["detail"]
    assert road.params["adjacency"] == "road"
    with pytest.raises(AreaDataError, match="needs a road graph"):
        validate_territories(sel, "territory", graph=None, adjacency="road")


def test_cli_validate_contiguity_road(tmp_path, porto: CompiledGraph, parishes) -> None:
    sel = parishes[parishes["parish_code"].isin(list(_PORTO))].copy()
    sel["territory"] = sel["parish_code"].map(_PORTO)
    src = tmp_path / "sel.gpkg"
    sel.to_file(src, driver="GPKG")
    graph = porto.save(tmp_path / "porto.npz")
    base = ["validate", str(src), "-t", "territory", "--graph", str(graph), "--no-cache"]
    polygon = CliRunner().invoke(app, [*base, "--require-contiguous"], catch_exceptions=False)
    assert polygon.exit_code == 0, polygon.output
    road = CliRunner().invoke(
        app, [*base, "--require-contiguous", "--contiguity", "road"], catch_exceptions=False
    )
    assert road.exit_code == 1, road.output
    assert "validation failed: contiguity" in road.stderr
    bad = CliRunner().invoke(
        app, ["validate", str(src), "-t", "territory", "--straight-line", "--contiguity", "road"]
    )
    assert bad.exit_code == 2 and "needs a road source" in bad.stderr
