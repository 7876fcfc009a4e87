"""Bugs found by a new user's trial of the wheel: reports, `leakguard report`, `status`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import SERVER_SNIPPET, run_python

LEAKGUARD_CLI = [sys.executable, "-m", "leakguard"]


def test_reporting_a_leak_never_loads_a_lazy_module() -> None:
    code = SERVER_SNIPPET + '''
import importlib.util, sys
with open("lazy_target.py", "w") as f:
    f.write("import sys\\nsys.stderr.write('LAZY MODULE LOADED\\\\n')\\nVALUE = 1\\n")
sys.path.insert(0, ".")
spec = importlib.util.find_spec("lazy_target")
spec.loader = importlib.util.LazyLoader(spec.loader)
lazy = importlib.util.module_from_spec(spec)
sys.modules["lazy_target"] = lazy  # loads itself when an attribute is read
spec.loader.exec_module(lazy)
import gc, requests
def dropped():
    requests.Session().get(URL)
dropped()
gc.collect()
sys.stderr.write("REPORTED\\n")
'''
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert "requests.Session garbage-collected without close()" in r.stderr, r.stderr
    assert "REPORTED" in r.stderr
    assert "LAZY MODULE LOADED" not in r.stderr


def test_secrets_in_urls_are_masked_in_text_and_json(tmp_path: Path) -> None:
    report = tmp_path / "r.jsonl"
    code = SERVER_SNIPPET + '''
import requests
def make(url):
    return requests.Session()
KEEP = make("http://alice:sk-pw1@127.0.0.1:1/x?token=tk-2&api_key=ak-3&page=2")  # LINE
'''
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report)})
    masked = 'make("http://alice:***@127.0.0.1:1/x?token=***&api_key=***&page=2")  # LINE'
    assert masked in r.stderr, r.stderr
    codes = [frame["code"] for line in report.read_text().splitlines()
             for frame in json.loads(line)["stack"]]
    assert f"KEEP = {masked}" in codes
    for secret in ("sk-pw1", "tk-2", "ak-3"):
        assert secret not in r.stderr and secret not in report.read_text()
