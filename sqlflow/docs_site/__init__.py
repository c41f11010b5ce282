"""The documentation site: `sqlflow docs generate` writes it, `sqlflow docs serve` serves it.

The generator is Python (build.py, with the graph layout in layout.py and the search index in
search_index.py); the page is our own plain JavaScript and CSS in assets/, shipped as package data.
"""

from .build import SiteInputs, SiteSummary, read_run_results, write_site
from .server import make_server, open_in_browser, url_of

__all__ = [
    "SiteInputs",
    "SiteSummary",
    "make_server",
    "open_in_browser",
    "read_run_results",
    "url_of",
    "write_site",
]
