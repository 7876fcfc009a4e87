"""Active start-up loads wrapt's C wrapper type alone, not its package (which imports asyncio)."""

from __future__ import annotations

import json

from conftest import run_python


def test_active_import_requests_loads_no_asyncio() -> None:
    r = run_python("""
        import json, sys
        import requests
        s = requests.Session()
        s.close()
        print(json.dumps(sorted(m for m in sys.modules
                                if m.split(".")[0] in ("wrapt", "asyncio", "inspect"))))
    """, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads(r.stdout) == ["wrapt._wrappers", "wrapt.exceptions"]


def test_wrapt_imported_later_is_whole_and_shares_the_wrapper_type() -> None:
    r = run_python("""
        import requests
        import wrapt
        import wrapt.exceptions
        init = vars(requests.Session)["__init__"]
        print(isinstance(init, wrapt.FunctionWrapper),
              wrapt.exceptions.WrapperNotInitializedError.__name__,
              wrapt._wrappers.FunctionWrapper is wrapt.FunctionWrapper)
        KEEP = requests.Session()  # leaked: still reported
    """, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "WrapperNotInitializedError", "True"]
    assert "requests.Session still open at interpreter exit" in r.stderr


def test_wrapt_imported_first_is_used_as_is() -> None:
    r = run_python("""
        import wrapt, sys
        import requests
        print(isinstance(vars(requests.Session)["__init__"], wrapt.FunctionWrapper))
        requests.Session().close()
    """, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True"]


def test_without_the_c_extension_the_package_is_used() -> None:
    r = run_python("""
        import sys
        import requests
        KEEP = requests.Session()
        print("wrapt" in sys.modules)
    """, env={"LEAKGUARD": "1", "WRAPT_DISABLE_EXTENSIONS": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True"]
    assert "requests.Session still open at interpreter exit" in r.stderr
