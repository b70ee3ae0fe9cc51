"""The worker's status page: server-rendered HTML (Jinja2) over the factory's `Console`.

The package face: ``add_status_page`` puts its routes on the worker's aiohttp application;
``token`` holds the optional bearer-token check of the worker's HTTP pages.
"""

from worker.status_page.routes import add_status_page
from worker.status_page.token import TOKEN_ENV, authorized, configured_token

__all__ = ["TOKEN_ENV", "add_status_page", "authorized", "configured_token"]
