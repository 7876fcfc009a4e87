"""httpx2 (the httpx fork the OpenAI and Anthropic SDKs use), also when aliased as `httpx`."""

from __future__ import annotations

import pytest
from conftest import SERVER_SNIPPET, run_python

httpx2 = pytest.importorskip("httpx2")
needs_alias = pytest.mark.skipif(not hasattr(httpx2, "alias_httpx"),
                                 reason="this httpx2 has no alias_httpx()")

LEAK = """
def fetch():
    c = httpx.Client()
    c.get(URL)
fetch()
import gc; gc.collect()
KEEP = httpx.AsyncClient()
"""


@needs_alias
@pytest.mark.parametrize("targets", [None, "httpx,httpx2"])
def test_aliased_httpx_is_httpx2_tracked_once(targets: str | None) -> None:
    env = {"LEAKGUARD": "1", "LEAKGUARD_LOG": "debug"}
    if targets:
        env["LEAKGUARD_TARGETS"] = targets  # explicit: an unsupported version would warn
    code = SERVER_SNIPPET + "import httpx2\nhttpx2.alias_httpx()\nimport httpx\n" \
        "assert httpx.Client is httpx2.Client\n" + LEAK
    r = run_python(code, env=env)
    assert r.returncode == 0, r.stderr
    assert "not tracking" not in r.stderr, r.stderr
    assert r.stderr.count("leakguard: httpx2.Client garbage-collected without close() "
                          "(1 open connection to http://127.0.0.1:") == 1, r.stderr
    assert r.stderr.count("leakguard: httpx2.AsyncClient still open at interpreter exit") == 1
    assert r.stderr.count("leakguard: 2 leaked sessions") == 1
    # debug logging: each session made and reported once
    assert r.stderr.count("created") >= 2
    assert "httpx.Client" not in r.stderr.replace("httpx.Client()", "")


@needs_alias
def test_alias_before_enable_then_import_httpx() -> None:
    code = SERVER_SNIPPET + "import httpx2\nhttpx2.alias_httpx()\nimport httpx\n" \
        "import leakguard\nleakguard.enable(targets='httpx,httpx2')\n" + LEAK
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert "not tracking" not in r.stderr, r.stderr
    assert r.stderr.count("leakguard: httpx2.Client garbage-collected") == 1, r.stderr
    assert r.stderr.count("leakguard: 2 leaked sessions") == 1, r.stderr


@needs_alias
def test_aliased_httpx_with_httpx2_not_targeted_is_silent() -> None:
    # the user asked for httpx only; the module called httpx is httpx2: nothing to do, no noise
    code = SERVER_SNIPPET + "import httpx2\nhttpx2.alias_httpx()\nimport httpx\n" + LEAK
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_TARGETS": "httpx"})
    assert r.returncode == 0, r.stderr
    assert "leakguard" not in r.stderr, r.stderr


def test_httpx_and_httpx2_side_by_side() -> None:
    pytest.importorskip("httpx")
    code = SERVER_SNIPPET + """
import httpx, httpx2
def fetch():
    a = httpx.Client(); a.get(URL)
    b = httpx2.Client(); b.get(URL)
fetch()
"""
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("leakguard: httpx.Client garbage-collected") == 1, r.stderr
    assert r.stderr.count("leakguard: httpx2.Client garbage-collected") == 1, r.stderr


def test_status_lists_httpx2() -> None:
    r = run_python("from leakguard.cli import main\nmain(['status'])\n")
    assert r.returncode == 0, r.stderr
    assert "httpx2" in r.stdout and "(supported: >=2.0,<3)" in r.stdout, r.stdout
