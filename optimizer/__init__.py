"""optimizer: territory design on any cost matrix (drive time or straight line).

Arrays in, arrays out; it never imports :mod:`roadnet`. The solvers (location-allocation with
TRANSP and optimal split resolution, successive dichotomies, anchored centers, contiguity,
local search) arrive with issues 4 and 6; this release ships the package skeleton only.
"""

__all__: list[str] = []
