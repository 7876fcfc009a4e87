"""The README's first command: the bundled example says what the README shows, and nothing
else goes wrong (its own server included)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_summary() -> list[str]:
    """The summary block the README shows for `LEAKGUARD=1 python examples/leaky.py`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("The first prints, on stderr", 1)[1].split("```", 2)[1]
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"leakguard: \d+ leaked", line))
    return [line for line in lines[start:] if line.strip()]


def test_the_bundled_example_prints_what_the_readme_shows() -> None:
    summary = _readme_summary()
    assert len(summary) == 5, summary
    env = {**os.environ, "LEAKGUARD": "1"}
    for _ in range(3):  # its server once printed a reset connection's traceback, 1 run in 3
        run = subprocess.run([sys.executable, "examples/leaky.py"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert run.stderr.splitlines()[-5:] == summary
        assert "Traceback" not in run.stderr and "Exception" not in run.stderr, run.stderr
        assert run.stdout.count("-> 200") == 4
