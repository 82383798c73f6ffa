"""``python -m territory.cli``: the ``roadnet`` command."""

from territory.cli import main

main()
