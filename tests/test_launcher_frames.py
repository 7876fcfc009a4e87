"""Frames of the launcher (`python -m`'s runpy) are not part of a creation stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEAKGUARD")}
    env.update(extra)
    return env


def test_python_dash_m_module_has_no_runpy_frames(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "leaky.py").write_text("import requests\nK = requests.Session()\n")
    report = tmp_path / "r.jsonl"
    r = subprocess.run([sys.executable, "-m", "pkg.leaky"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60,
                       env=_env(LEAKGUARD="1", LEAKGUARD_REPORT=str(report)))
    assert r.returncode == 0, r.stderr
    assert "runpy" not in r.stderr, r.stderr
    assert "Session created at (most recent call last):\n  File " in r.stderr
    assert r.stderr.split("(most recent call last):\n")[1].startswith(
        f'  File "{tmp_path / "pkg" / "leaky.py"}", line 2, in <module>'), r.stderr
    [record] = [json.loads(line) for line in report.read_text().splitlines()]
    assert [f["function"] for f in record["stack"]] == ["<module>"], record["stack"]


def test_python_dash_m_pytest_has_no_runpy_frames(tmp_path: Path) -> None:
    (tmp_path / "test_leak.py").write_text(
        "import requests\n\ndef test_x():\n    global K\n    K = requests.Session()\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "test_leak.py"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, env=_env(LEAKGUARD="1"))
    out = r.stdout + r.stderr
    assert "Session created at (most recent call last):" in out, out
    assert "runpy" not in out, out
