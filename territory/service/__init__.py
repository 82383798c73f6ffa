"""``roadnet serve``: an OSRM-compatible HTTP service with roadnet's native API.

:func:`~territory.service.app.create_app` builds the FastAPI app of a
:class:`~territory.service.config.ServiceConfig`; ``territory.cli.serve`` runs it with uvicorn.
"""

from territory.service.app import create_app, create_app_from_env
from territory.service.config import ServiceConfig

__all__ = ["ServiceConfig", "create_app", "create_app_from_env"]
