"""The distribution: its name on the package index and the version that is running."""

from __future__ import annotations

import os

DIST = "leakguard-http"  # the distribution's name on the package index (`leakguard` is taken)


def version() -> str:
    """The installed leakguard-http version; the package's own when it runs from elsewhere."""
    from . import __version__

    try:
        from importlib import metadata

        dist = metadata.distribution(DIST)
        here = os.path.dirname(os.path.abspath(__file__))
        there = os.path.dirname(os.path.abspath(str(dist.locate_file("leakguard/__init__.py"))))
        # a source checkout on PYTHONPATH shadows the installed one: report what runs
        if os.path.normcase(here) == os.path.normcase(there):
            return str(dist.version)
    except Exception:  # no metadata (a checkout), or metadata we cannot read
        pass
    return __version__
