"""httpx2 (the httpx fork the OpenAI and Anthropic SDKs use), also when aliased as `httpx`."""

from __future__ import annotations

import gc

import pytest
from conftest import SERVER_SNIPPET, Reports, run_python

from leakguard._tracker import TRACKER

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


SDK_LIKE = """
import asyncio, gc, httpx2
class Wrapper(httpx2.AsyncClient):
    # what the OpenAI and Anthropic SDKs do: close on the running loop from __del__
    def __init__(self):
        super().__init__()
        self.me = self  # in a reference cycle (as SDK clients are): freed by the collector
    def __del__(self):
        if self.is_closed:
            return
        try:
            asyncio.get_running_loop().create_task(self.aclose())
        except Exception:
            pass
"""


def test_async_client_closed_by_the_task_its_del_schedules_is_not_reported() -> None:
    code = SERVER_SNIPPET + SDK_LIKE + """
async def main():
    c = Wrapper()
    await c.get(URL)
    del c
    gc.collect()
    await asyncio.sleep(0.05)  # the task runs aclose()
asyncio.run(main())
gc.collect()
"""
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert "leakguard" not in r.stderr, r.stderr


def test_async_close_scheduled_but_never_run_is_reported() -> None:
    # dropped outside a loop: nothing to schedule on, the connection stays open
    code = SERVER_SNIPPET + SDK_LIKE + """
async def main():
    c = Wrapper()
    await c.get(URL)
    return c
c = asyncio.run(main())
del c
gc.collect()
# a task created on a loop that never runs it: its coroutine dies unawaited with the loop
loop = asyncio.new_event_loop()
async def make():
    return Wrapper()
d = loop.run_until_complete(make())
async def use():
    await d.get(URL)
loop.run_until_complete(use())
loop.call_soon(lambda: None)
def drop():
    global d
    asyncio.events._set_running_loop(loop)  # __del__ finds a "running" loop, never run again
    try:
        del d
        gc.collect()
    finally:
        asyncio.events._set_running_loop(None)
drop()
"""
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("leakguard: __main__.Wrapper garbage-collected without close() "
                          "(1 open connection to http://127.0.0.1:") == 2, r.stderr
    assert "leakguard: 2 leaked sessions (2 garbage-collected without close())" in r.stderr


# -- httpx2 responses: as httpx's (test_responses.py), under their own name ------------------

RESPONSE_LEAK = '''
import asyncio, gc, httpx2
c = httpx2.Client()
a = httpx2.AsyncClient()
loop = asyncio.new_event_loop()
def work_sync():
    r = c.send(c.build_request("GET", BIG + "big"), stream=True)  # LEAK sync
    return r
async def _work():
    r = await a.send(a.build_request("GET", BIG + "big"), stream=True)  # LEAK async
    return r
def work_async():
    return loop.run_until_complete(_work())
'''


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("when", ["gc", "exit"])
def test_httpx2_streamed_response_leaked(flavour: str, when: str) -> None:
    from test_responses import BIG_SERVER

    ending = f"work_{flavour}()\ngc.collect()\n" if when == "gc" else \
        f"keep = work_{flavour}()\n"
    code = BIG_SERVER + RESPONSE_LEAK + ending
    r = run_python(code, env={"LEAKGUARD": "1"})
    assert r.returncode == 0, r.stderr
    what = "garbage-collected without close()" if when == "gc" else \
        "still open at interpreter exit"
    head = f"leakguard: httpx2.Response {what} (holding a connection to http://127.0.0.1:"
    assert r.stderr.count(head) == 1, r.stderr
    line = code.splitlines().index(
        next(x for x in code.splitlines() if f"# LEAK {flavour}" in x)) + 1
    assert f'app.py", line {line}, in ' in r.stderr.split(head)[1], r.stderr
    assert "1 leaked response (1 " in r.stderr, r.stderr


def test_httpx2_clean_responses_are_never_reported(reports: Reports) -> None:
    from test_responses import BIG_SERVER, _clean_httpx, _clean_httpx_async

    namespace: dict[str, object] = {}
    exec(BIG_SERVER, namespace)
    url = str(namespace["BIG"])
    _clean_httpx(url, httpx2)
    _clean_httpx_async(url, httpx2)
    gc.collect()
    namespace["_big"].shutdown()  # type: ignore[attr-defined]
    assert [t for t in reports.warnings() if "Response " in t.split("\n")[0]] == []
    assert [r for r in TRACKER._live.values() if r.kind == "response"] == []
