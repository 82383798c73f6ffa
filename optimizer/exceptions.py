"""Exceptions raised by :mod:`optimizer`.

Every error derives from :class:`OptimizerError` and also inherits the matching builtin. An
infeasible model raises :class:`InfeasibleError` with diagnostics that say why (which bound,
which territory, by how much), never a bare "model is infeasible".
"""

from __future__ import annotations

from typing import Any

__all__ = ["InfeasibleError", "InputError", "OptimizerError", "SolverError"]


class OptimizerError(Exception):
    """Base class of every error raised by the optimizer."""


class InputError(OptimizerError, ValueError):
    """Invalid problem data: shapes, negative weights, NaN costs, p out of range, ..."""


class InfeasibleError(OptimizerError, ValueError):
    """The model has no solution; ``diagnostics`` says why.

    Parameters
    ----------
    message
        What is infeasible, with numbers (e.g. "total weight 1200 exceeds total capacity 1000").
    diagnostics
        Machine-readable details (bounds, sizes, the smallest relaxation that would work).
    """

    def __init__(self, message: str, diagnostics: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = dict(diagnostics or {})


class SolverError(OptimizerError, RuntimeError):
    """An LP/MIP solver failed for a reason other than infeasibility (limits, numerics)."""
