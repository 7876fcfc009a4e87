"""Suppressions as people write them: trailing comments, module rules, rules that never match."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leakguard._suppress import Suppressions, covers

APP = '''
import requests
import legacy_client
import legacy_client.api

def get_status():
    return requests.Session()

KEEP = [get_status(), legacy_client.connect(), legacy_client.api.connect()]
'''
CONNECT = "import requests\ndef connect():\n    return requests.Session()\n"
PACKAGE = {"legacy_client/__init__.py": CONNECT, "legacy_client/api.py": CONNECT}


def _run(tmp_path: Path, rules: str) -> subprocess.CompletedProcess[str]:
    for name, text in PACKAGE.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "leakguard.supp").write_text(textwrap.dedent(rules))
    env = {k: v for k, v in os.environ.items() if "LEAKGUARD" not in k}
    env.update(LEAKGUARD="1", LEAKGUARD_SUPPRESSIONS=str(tmp_path / "leakguard.supp"))
    r = subprocess.run([sys.executable, "app.py"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ignoring the suppressions file" not in r.stderr
    return r


def test_trailing_comments_and_module_rules(tmp_path: Path) -> None:
    r = _run(tmp_path, """\
        # accepted leaks
        leak:get_status  # a function
        leak:legacy_client\t# the module and its submodules
    """)
    assert "still open at interpreter exit" not in r.stderr
    assert "leakguard: 0 leaked sessions, 3 suppressed" in r.stderr
    assert "Suppressions used:\n  2 leak:legacy_client\n  1 leak:get_status" in r.stderr
    assert "never matched" not in r.stderr


def test_a_package_glob_covers_the_package_itself(tmp_path: Path) -> None:
    r = _run(tmp_path, "leak:legacy_client.*\nleak:get_status\n")
    assert "leakguard: 0 leaked sessions, 3 suppressed" in r.stderr
    assert "  2 leak:legacy_client.*" in r.stderr


def test_the_summary_names_rules_that_never_matched(tmp_path: Path) -> None:
    r = _run(tmp_path, """\
        leak:get_stats  # a typo
        leak:legacy_client.api
        leak:legacy_clients
    """)
    assert "leakguard: 2 leaked sessions (2 still open at exit), 1 suppressed" in r.stderr
    assert r.stderr.rstrip().endswith(
        "Suppressions used:\n  1 leak:legacy_client.api\n"
        "Suppressions never matched:\n  leak:get_stats\n  leak:legacy_clients")


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("legacy_client", "legacy_client", True),
    ("legacy_client", "legacy_client.api.v2", True),
    ("legacy_client", "legacy_clientx", False),
    ("legacy_client", "other.legacy_client", False),
    ("legacy_client.*", "legacy_client", True),
    ("legacy_client.*", "legacy_client.api", True),
    ("legacy_client.*", "legacy_clients", False),
    ("legacy_*", "legacy_client.api", True),
    ("requests", "requests.Session", True),
])
def test_module_rules(pattern: str, name: str, expected: bool) -> None:
    assert covers(pattern, name) is expected


def test_comment_parsing() -> None:
    text = "leak:a  # x\nleak:b\t#y\nleak:dir#1/file.py\n  # whole line\nleak:c#\n"
    assert Suppressions.parse(text).rules == ["a", "b", "dir#1/file.py", "c#"]


@settings(max_examples=500, deadline=None)
@given(pattern=st.text(alphabet="ab.*?", max_size=8), name=st.text(alphabet="ab.", max_size=10))
def test_module_rules_agree_with_their_definition(pattern: str, name: str) -> None:
    import fnmatch

    prefixes = [name] + [name[:at] for at, char in enumerate(name) if char == "."]
    expected = any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
        pattern.endswith(".*") and fnmatch.fnmatchcase(name, pattern[:-2]))
    assert covers(pattern, name) is expected


def test_module_rules_take_linear_time() -> None:
    def timed(n: int) -> float:
        pattern, name = "*a" * n + "*b", ".".join("a" * 10 for _ in range(n))
        start = time.perf_counter()
        for _ in range(5):
            assert not covers(pattern, name)
        return time.perf_counter() - start

    small, big = timed(200), timed(2000)
    assert big < 1.5
    assert big / max(small, 1e-6) < 300  # 10x input: nowhere near 100x+ work
