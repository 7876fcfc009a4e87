"""The contract every integration honours, each scenario in a fresh interpreter.

Like dd-trace-py's patch tests: patch before and after import, twice, unpatch, unpatch
then patch, leak at GC, leak at exit, every close path, and a subclass.
"""

from __future__ import annotations

import importlib.util
import textwrap

import pytest
from conftest import SERVER_SNIPPET, run_python


class Client:
    """How one client class is made, used and closed, as source snippets."""

    def __init__(self, module: str, name: str, new: str, use: str, closes: dict[str, str],
                 is_async: bool = False, close_method: str = "close") -> None:
        self.module = module
        self.name = name
        self.new = new
        self.use = use
        self.closes = closes
        self.is_async = is_async
        self.close_method = close_method

    def program(self, body: str, setup: str = "") -> str:
        """A whole program: server, imports, `body` run in a function (awaited if async)."""
        body = textwrap.indent(textwrap.dedent(body), "    ")
        if self.is_async:
            run = f"import asyncio\nasync def main():\n{body}\n    return None\n" \
                  "asyncio.run(main())\n"
        else:
            run = f"def main():\n{body}\n    return None\nmain()\n"
        return SERVER_SNIPPET + textwrap.dedent(setup) + run + "import gc; gc.collect()\n"


AW = "await "
CLIENTS = {
    "requests": Client("requests", "requests.Session", "requests.Session()", "S.get(URL)", {
        "close": "S = requests.Session()\nS.get(URL)\nS.close()",
        "with": "with requests.Session() as S:\n    S.get(URL)",
    }),
    "urllib3": Client("urllib3", "urllib3.PoolManager", "urllib3.PoolManager()",
                      "S.request('GET', URL)", {
        "clear": "S = urllib3.PoolManager()\nS.request('GET', URL)\nS.clear()",
        "with": "with urllib3.PoolManager() as S:\n    S.request('GET', URL)",
    }, close_method="clear"),
    "urllib3-proxy": Client("urllib3", "urllib3.ProxyManager",
                            "urllib3.ProxyManager('http://127.0.0.1:9')", "None", {
        "clear": "S = urllib3.ProxyManager('http://127.0.0.1:9')\nS.clear()",
        "with": "with urllib3.ProxyManager('http://127.0.0.1:9') as S:\n    pass",
    }, close_method="clear"),
    "httpx": Client("httpx", "httpx.Client", "httpx.Client()", "S.get(URL)", {
        "close": "S = httpx.Client()\nS.get(URL)\nS.close()",
        "with": "with httpx.Client() as S:\n    S.get(URL)",
    }),
    "httpx-async": Client("httpx", "httpx.AsyncClient", "httpx.AsyncClient()",
                          AW + "S.get(URL)", {
        "aclose": "S = httpx.AsyncClient()\nawait S.get(URL)\nawait S.aclose()",
        "async-with": "async with httpx.AsyncClient() as S:\n    await S.get(URL)",
    }, is_async=True, close_method="aclose"),
    "httpx2": Client("httpx2", "httpx2.Client", "httpx2.Client()", "S.get(URL)", {
        "close": "S = httpx2.Client()\nS.get(URL)\nS.close()",
        "with": "with httpx2.Client() as S:\n    S.get(URL)",
    }),
    "httpx2-async": Client("httpx2", "httpx2.AsyncClient", "httpx2.AsyncClient()",
                           AW + "S.get(URL)", {
        "aclose": "S = httpx2.AsyncClient()\nawait S.get(URL)\nawait S.aclose()",
        "async-with": "async with httpx2.AsyncClient() as S:\n    await S.get(URL)",
    }, is_async=True, close_method="aclose"),
    "niquests": Client("niquests", "niquests.Session", "niquests.Session()", "S.get(URL)", {
        "close": "S = niquests.Session()\nS.get(URL)\nS.close()",
        "with": "with niquests.Session() as S:\n    S.get(URL)",
    }),
    "niquests-async": Client("niquests", "niquests.AsyncSession", "niquests.AsyncSession()",
                             AW + "S.get(URL)", {
        "close": "S = niquests.AsyncSession()\nawait S.get(URL)\nawait S.close()",
        "async-with": "async with niquests.AsyncSession() as S:\n    await S.get(URL)",
    }, is_async=True),
    "aiohttp": Client("aiohttp", "aiohttp.ClientSession", "aiohttp.ClientSession()",
                      "async with S.get(URL) as r:\n    await r.read()", {
        "close": "S = aiohttp.ClientSession()\nasync with S.get(URL) as r:\n    await r.read()\n"
                 "await S.close()",
        "async-with": "async with aiohttp.ClientSession() as S:\n"
                      "    async with S.get(URL) as r:\n        await r.read()",
        "detach": "S = aiohttp.ClientSession()\nc = S.connector\nS.detach()\nawait c.close()",
        "connector-closed": "S = aiohttp.ClientSession()\nawait S.connector.close()",
    }, is_async=True),
}


def leak_body(c: Client) -> str:
    return f"S = {c.new}\n{c.use}\n"


def reports(stderr: str, c: Client) -> int:
    return stderr.count(f"leakguard: {c.name} ")


ENABLE = "import leakguard\nleakguard.enable()\n"


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest) -> Client:
    c = CLIENTS[request.param]
    if importlib.util.find_spec(c.module) is None:
        pytest.skip(f"{c.module} is not installed here")
    return c


def test_patch_before_import_reports_gc_leak(client: Client) -> None:
    r = run_python(client.program(leak_body(client), ENABLE + f"import {client.module}\n"))
    assert reports(r.stderr, client) == 1, r.stderr
    assert f"leakguard: {client.name} garbage-collected without close() (" in r.stderr
    assert f"S = {client.new}" in r.stderr, r.stderr  # the creating line is in the stack
    assert r.returncode == 0, r.stderr


def test_patch_after_import(client: Client) -> None:
    r = run_python(client.program(leak_body(client), f"import {client.module}\n" + ENABLE))
    assert reports(r.stderr, client) == 1, r.stderr


def test_patch_twice_is_a_noop(client: Client) -> None:
    setup = (f"import {client.module}\n" + ENABLE + "leakguard.enable()\n"
             "from leakguard import _api\n"
             f"i = _api._STATE.integrations[{client.module!r}]\n"
             f"i.patch({client.module})\ni.patch({client.module})\n")
    r = run_python(client.program(leak_body(client), setup))
    assert reports(r.stderr, client) == 1, r.stderr


def test_unpatch_restores_and_stops_reporting(client: Client) -> None:
    cls = client.name
    setup = (ENABLE + f"import {client.module}\nleakguard.disable()\n"
             f"assert not hasattr(vars({cls}).get('__init__'), '__wrapped__')\n"
             f"assert not hasattr(vars({cls}).get({client.close_method!r}), '__wrapped__')\n")
    r = run_python(client.program(leak_body(client), setup))
    assert r.returncode == 0, r.stderr
    assert "leakguard" not in r.stderr


def test_unpatch_then_patch(client: Client) -> None:
    setup = ENABLE + f"import {client.module}\nleakguard.disable()\nleakguard.enable()\n"
    r = run_python(client.program(leak_body(client), setup))
    assert reports(r.stderr, client) == 1, r.stderr


def test_leak_at_exit_is_reported_once(client: Client) -> None:
    body = leak_body(client) + "KEEP.append(S)\n"
    r = run_python(client.program(body, ENABLE + f"import {client.module}\nKEEP = []\n"))
    assert reports(r.stderr, client) == 1, r.stderr
    assert f"leakguard: {client.name} still open at interpreter exit (" in r.stderr
    assert "leakguard: 1 leaked session (1 still open at exit)" in r.stderr


def test_every_close_path_is_clean(client: Client) -> None:
    for path, body in client.closes.items():
        r = run_python(client.program(body, ENABLE + f"import {client.module}\n"))
        assert r.returncode == 0, (path, r.stderr)
        assert "leakguard" not in r.stderr, (path, r.stderr)


def test_subclass_is_one_session_under_its_own_name(client: Client) -> None:
    cm = client.close_method
    is_coro = client.is_async
    sub = (f"class Sub({client.name}):\n"
           "    def __init__(self, *a, **k):\n"
           "        super().__init__(*a, **k)\n"
           "        self.extra = 1\n"
           + (f"    async def {cm}(self):\n        await super().{cm}()\n" if is_coro else
              f"    def {cm}(self):\n        super().{cm}()\n"))
    args = client.new[client.new.index("("):]
    leak = f"S = Sub{args}\n"
    closed = f"S = Sub{args}\n" + (f"await S.{cm}()\n" if is_coro else f"S.{cm}()\n")
    setup = ENABLE + f"import {client.module}\n" + sub
    r = run_python(client.program(leak + closed, setup))
    assert r.stderr.count("leakguard: __main__.Sub garbage-collected without close()") == 1, \
        r.stderr
    assert "leakguard: 1 leaked session" in r.stderr
