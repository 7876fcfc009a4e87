"""Issue 10 item 2: leakguard active at startup never changes a warnings-as-errors pytest run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TEST_FILE = "def test_ok():\n    assert 1 + 1 == 2\n"


def _pytest(folder: Path, args: list[str], env: dict[str, str],
            runner: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("LEAKGUARD", "PYTEST"))}
    full.update(env)
    cmd = runner or [sys.executable, "-m", "pytest"]
    # pytest-asyncio warns about its own configuration: not ours to judge here
    return subprocess.run([*cmd, "-p", "no:cacheprovider", "-p", "no:asyncio", *args],
                          cwd=folder, env=full, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("how", ["-W error", "ini filterwarnings = error", "plain"])
def test_leakguard_1_with_warnings_as_errors(tmp_path: Path, how: str) -> None:
    (tmp_path / "test_ok.py").write_text(TEST_FILE)
    args = ["-W", "error"] if how == "-W error" else []
    if how.startswith("ini"):
        (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    r = _pytest(tmp_path, args, {"LEAKGUARD": "1"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "1 passed" in out
    assert "cannot be rewritten" not in out
    assert "warnings summary" not in out and " warning" not in out


def test_plugin_module_imported_before_pytest_main(tmp_path: Path) -> None:
    # a program that imports the plugin itself, then runs pytest naming it with -p (plugin
    # autoload off, as projects that list their plugins do)
    (tmp_path / "test_ok.py").write_text(TEST_FILE)
    runner = [sys.executable, "-c",
              "import sys, leakguard.pytest_plugin, pytest; "
              "sys.exit(pytest.main(sys.argv[1:]))"]
    r = _pytest(tmp_path, ["-W", "error", "-p", "leakguard.pytest_plugin"],
                {"LEAKGUARD": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, runner)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "cannot be rewritten" not in out
