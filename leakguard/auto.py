"""`import leakguard.auto` (e.g. from your sitecustomize.py) switches leakguard on.

`LEAKGUARD=0` (or any falsy value) still turns it off for one process.
"""

from __future__ import annotations

from ._startup import activate

activate(default=True)
