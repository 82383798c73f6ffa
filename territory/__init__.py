"""territory: the application that composes roadnet, cache and optimizer.

The territory-design pipeline (:mod:`territory.pipeline`), territory reachability validation
(:mod:`territory.validate`), maps (:mod:`territory.maps`), the offline demo
(:mod:`territory.demo`), all-or-nothing output files (:mod:`territory.outputs`) and the
``roadnet`` command line (:mod:`territory.cli`).
"""

from __future__ import annotations

__all__: list[str] = []
