"""roadnet's native API (``/v1/*``): matrices and jobs."""

from __future__ import annotations

from fastapi import FastAPI

from territory.service.state import ServiceState

__all__ = ["add_native_routes"]


def add_native_routes(app: FastAPI, state: ServiceState) -> None:
    """Register the native API on ``app``."""
