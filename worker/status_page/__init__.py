"""The worker's status page: server-rendered HTML (Jinja2) over the factory's `Console`.

The package face: ``add_status_page`` puts its routes on the worker's aiohttp application;
``token`` holds the optional bearer-token check of the worker's HTTP pages.
"""

from worker.status_page.routes import add_status_page
from worker.status_page.token import authorized, matches

__all__ = ["add_status_page", "authorized", "matches"]
