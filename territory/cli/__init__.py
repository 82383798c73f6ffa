"""The ``roadnet`` command line: a thin shell that composes the road layer, the cache and the
optimizer. One module per command group; shared options and the error boundary live in
:mod:`territory.cli._common`."""

from __future__ import annotations

import typer

from territory.cli.cache import cache_app
from territory.cli.demo import demo_cmd
from territory.cli.graph import graph_app
from territory.cli.matrix import matrix_cmd, precompute_cmd
from territory.cli.optimize import optimize_cmd
from territory.cli.serve import serve_cmd
from territory.cli.validate import validate_cmd

__all__ = ["app", "main"]

app = typer.Typer(
    name="roadnet",
    help="Drive-time-aware territory design on OpenStreetMap roads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(graph_app, name="graph")
app.command("matrix")(matrix_cmd)
app.command("precompute")(precompute_cmd)
app.add_typer(cache_app, name="cache")
app.command("optimize")(optimize_cmd)
app.command("validate")(validate_cmd)
app.command("demo")(demo_cmd)
app.command("serve")(serve_cmd)


def main() -> None:
    """Entry point of the ``roadnet`` console script."""
    app()
