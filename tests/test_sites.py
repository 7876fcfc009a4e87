"""Issue 10 item 6: one creation site, the user's line, in the exit summary and in `report`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import run_python

LEAKGUARD_CLI = [sys.executable, "-m", "leakguard"]

# A wrapper library as users meet it: installed (in a site-packages directory), making the
# session inside its own constructor, by composition or by subclassing.
FAKE_LIBRARY = '''
import requests

class RetryClient:
    def __init__(self):
        self._session = requests.Session()  # LIB-COMPOSED

class CachedSession(requests.Session):
    def __init__(self):
        super().__init__()  # LIB-SUBCLASS
'''

APP = '''
import requests, fakewrap

class MySession(requests.Session):
    def __init__(self):
        self.extra = 1
        super().__init__()  # USER-SUPER

class Client:
    def __init__(self):
        self.session = requests.Session()  # USER-OWNER

def from_subclass():
    return MySession()  # SITE-SUBCLASS

def from_retry():
    return fakewrap.RetryClient()  # SITE-RETRY

def from_cached():
    return fakewrap.CachedSession()  # SITE-CACHED

KEEP = [from_subclass(), from_subclass(), from_retry(), from_cached(), from_cached(),
        from_cached(), Client()]
'''


def _line(marker: str) -> int:
    return next(n for n, text in enumerate(textwrap.dedent(APP).splitlines(), 1)
                if marker in text)


def _library(tmp_path: Path) -> str:
    site = tmp_path / "lib" / "site-packages"
    (site / "fakewrap").mkdir(parents=True)
    (site / "fakewrap" / "__init__.py").write_text(FAKE_LIBRARY)
    return str(site)


def test_summary_and_report_group_at_the_users_call(tmp_path: Path) -> None:
    site = _library(tmp_path)
    jsonl = tmp_path / "leaks.jsonl"
    r = run_python(APP, env={"LEAKGUARD": "1", "PYTHONPATH": site,
                             "LEAKGUARD_REPORT": str(jsonl)})
    assert r.returncode == 0, r.stderr
    summary = r.stderr[r.stderr.index("leakguard: 7 leaked sessions"):]
    expected = [
        f"  3 x fakewrap.CachedSession created at app.py:{_line('SITE-CACHED')} in from_cached",
        f"  2 x __main__.MySession created at app.py:{_line('SITE-SUBCLASS')} in from_subclass",
        f"  1 x requests.Session created at app.py:{_line('SITE-RETRY')} in from_retry",
        f"  1 x requests.Session created at app.py:{_line('USER-OWNER')} in __init__",
    ]
    got = summary.splitlines()
    for line in expected:
        assert line in got, summary
    assert f"app.py:{_line('USER-SUPER')}" not in summary
    # the creation stacks still show every frame, the constructor chain included
    assert "super().__init__()  # USER-SUPER" in r.stderr
    assert "super().__init__()  # LIB-SUBCLASS" in r.stderr

    folder = os.path.dirname(str(jsonl))
    report = subprocess.run([*LEAKGUARD_CLI, "report", str(jsonl)], capture_output=True,
                            text=True, cwd=folder)
    sites = {line.split(" created at ")[1].rsplit(":", 1)[-1] for line in
             report.stdout.splitlines() if " created at " in line}
    want = {f"{_line(m)} in {f}" for m, f in (("SITE-CACHED", "from_cached"),
                                            ("SITE-SUBCLASS", "from_subclass"),
                                            ("SITE-RETRY", "from_retry"),
                                            ("USER-OWNER", "__init__"))}
    assert sites == want, report.stdout


def test_site_of_frames_applies_the_same_library_rule() -> None:
    from leakguard import _stacks

    stack = [{"file": "/srv/app/main.py", "line": 3, "function": "<module>"},
             {"file": "/srv/app/jobs.py", "line": 9, "function": "run"},
             {"file": "/venv/lib/python3.11/site-packages/wrap/__init__.py", "line": 5,
              "function": "__init__"},
             {"file": "/usr/lib/python3.12/asyncio/runners.py", "line": 44,
              "function": "run"},
             {"file": "/usr/lib/python3/dist-packages/other/x.py", "line": 1, "function": "f"}]
    assert _stacks.site_of_frames(stack) == ("/srv/app/jobs.py", 9, "run")
    assert _stacks.site_of_frames([]) == ("<unknown>", 0, "<unknown>")
