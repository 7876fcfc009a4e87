"""Bugs found by a new user's trial of the wheel: reports, `leakguard report`, `status`."""

from __future__ import annotations

import sys

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
