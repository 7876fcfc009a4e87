"""Leaks in the child processes of a checked pytest run: a private JSON Lines channel.

The plugin names a file in `_LEAKGUARD_PYTEST_CHILDREN` and sets `LEAKGUARD=1`; a child
process (forked or started afresh) writes each leak there instead of logging it, and the
plugin reads the new lines at each test's verdict and pins them on that test.
"""

from __future__ import annotations

import json
import os

from ._jsonl import append

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ._report import Leak, Reporter
    from ._tracker import Record

CHILDREN = "_LEAKGUARD_PYTEST_CHILDREN"  # inherited by child processes (not an option)
RUN_DIR = "_LEAKGUARD_PYTEST_DIR"  # the run's private folder, shared with xdist workers


def entry(leak: Leak) -> dict[str, object]:
    """What the parent needs of one leak: the JSON record, its site and the full report."""
    return {"record": leak.as_dict(), "site": site_of(leak), "text": leak.text()}


def site_of(leak: Leak) -> str:
    """`file:line in function` of the leak's creation site, the file relative if it can be."""
    file, line, function = leak.site()
    try:
        rel = os.path.relpath(file)
    except ValueError:
        rel = file
    return f"{file if rel.startswith('..') else rel}:{line} in {function}"


def claimer(path: str) -> Callable[[Record, Leak], bool]:
    """A Reporter.claimer that sends every leak to the parent through `path`."""

    def claim(record: Record, leak: Leak) -> bool:
        return append(path, entry(leak))  # on failure the child reports it itself

    return claim


def install(reporter: Reporter) -> None:
    """In a child of a checked pytest run: send this process's leaks to the parent."""
    path = os.environ.get(CHILDREN)
    # the file is named after the pytest process that reads it: there, enable() called
    # again (by a test) must not send that process's own leaks to itself
    if path and not path.endswith(f"-{os.getpid()}.jsonl"):
        reporter.claimer = claimer(path)


class Reader:
    """Reads the lines that children appended since the last read; costs one stat when idle."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0

    def new(self) -> list[dict[str, object]]:
        """Every complete line written since the last call."""
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return []
        if size <= self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        self.offset += end
        found = []
        for line in data[:end].splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and isinstance(item.get("record"), dict):
                found.append(item)
        return found


class RunFolder:
    """The run's private folder, and the variables that the run's child processes inherit."""

    def __init__(self, worker: bool) -> None:
        import tempfile

        # an xdist worker shares its controller's folder; any other pytest has its own
        self.owned = RUN_DIR not in os.environ or not worker
        self.path = tempfile.mkdtemp(prefix="leakguard-pytest-") if self.owned \
            else os.environ[RUN_DIR]
        self.channel = os.path.join(self.path, f"children-{os.getpid()}.jsonl")
        self.leaks = os.path.join(self.path, "leaks.jsonl")
        self.keep = False  # the summary named `leaks`: it stays after the run
        self.pid = os.getpid()  # a forked child (a test's) never removes it
        self._saved = {k: os.environ.get(k) for k in (RUN_DIR, CHILDREN, "LEAKGUARD")}
        os.environ[RUN_DIR] = self.path
        os.environ[CHILDREN] = self.channel
        os.environ.setdefault("LEAKGUARD", "1")  # child processes: tracked, and they tell us

    def close(self) -> None:
        """Put the variables back; remove the folder unless the summary named a file in it."""
        import shutil

        saved, self._saved = self._saved, {}  # closing twice is a no-op
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not self.owned or os.getpid() != self.pid or not os.path.isdir(self.path):
            return
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for name in os.listdir(self.path):
            if name.startswith("children-"):
                os.unlink(os.path.join(self.path, name))
