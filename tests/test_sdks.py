"""The OpenAI and Anthropic SDKs (built on httpx2) against a local server answering their API.

Run by `nox -s sdks` (the SDKs pull pydantic and need Python 3.10+); skipped where they are
not installed.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import run_python

KEY = "sk-test-DO-NOT-PRINT-4f2a9c"

# Answers POST /v1/chat/completions (OpenAI) and /v1/messages (Anthropic), plain or streamed
# (server-sent events); keep-alive HTTP/1.1, as the real APIs.
SDK_SERVER = '''
import http.server, json, os, threading
KEY = os.environ["SDK_KEY"]
MSGS = [{"role": "user", "content": "hello"}]
_CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                      "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
_CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m",
          "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
_MSG = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
_EVENTS = [
    ("message_start", {"type": "message_start",
                       "message": {**_MSG, "content": [], "stop_reason": None}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "hi"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 1},
                       "delta": {"stop_reason": "end_turn", "stop_sequence": None}}),
    ("message_stop", {"type": "message_stop"}),
]
class _H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        sent = self.headers.get("Authorization") or self.headers.get("x-api-key") or ""
        assert KEY in sent  # the SDK really sends the key
        anthropic = self.path.endswith("/messages")
        if body.get("stream"):
            if anthropic:
                text = "".join(f"event: {e}\\ndata: {json.dumps(d)}\\n\\n" for e, d in _EVENTS)
            else:
                text = f"data: {json.dumps(_CHUNK)}\\n\\ndata: [DONE]\\n\\n"
            payload, kind = text.encode(), "text/event-stream"
        else:
            payload = json.dumps(_MSG if anthropic else _CHAT).encode()
            kind = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
    def log_message(self, *a): pass
_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _H)
threading.Thread(target=_srv.serve_forever, daemon=True).start()
URL = "http://127.0.0.1:%d/" % _srv.server_address[1]
'''


class Sdk:
    """How one SDK's client is made and called, as source snippets (C: the client)."""

    def __init__(self, module: str, sync: str, aio: str, base: str, call: str,
                 key_variable: str) -> None:
        self.module = module
        self.sync = f"{module}.{sync}(api_key=KEY, base_url={base}, max_retries=0)"
        self.aio = f"{module}.{aio}(api_key=KEY, base_url={base}, max_retries=0)"
        self.call = call
        self.key_variable = key_variable


SDKS = {
    "openai": Sdk("openai", "OpenAI", "AsyncOpenAI", "URL + 'v1'",
                  "C.chat.completions.create(model='m', messages=MSGS)", "OPENAI_API_KEY"),
    "anthropic": Sdk("anthropic", "Anthropic", "AsyncAnthropic", "URL",
                     "C.messages.create(model='m', max_tokens=5, messages=MSGS)",
                     "ANTHROPIC_API_KEY"),
}


@pytest.fixture(params=sorted(SDKS))
def sdk(request: pytest.FixtureRequest) -> Sdk:
    pytest.importorskip(request.param)
    return SDKS[request.param]


def run(sdk: Sdk, body: str, tmp_path: Path, **env: str) -> tuple[str, int, str]:
    """Run `body` (after the server and the SDK's import) with leakguard on; stderr, status."""
    code = SDK_SERVER + f"import asyncio, gc, {sdk.module}\n" + textwrap.dedent(body)
    report = tmp_path / "leaks.jsonl"
    r = run_python(code, env={"LEAKGUARD": "1", "LEAKGUARD_REPORT": str(report),
                              "SDK_KEY": KEY, sdk.key_variable: KEY, **env})
    written = report.read_text() if report.exists() else ""
    for text in (r.stdout, r.stderr, written):
        assert KEY not in text and KEY[8:] not in text  # never the key, nor most of it
    return r.stderr, r.returncode, written


def test_clients_used_and_closed_are_silent(sdk: Sdk, tmp_path: Path) -> None:
    body = f"""
    C = {sdk.sync}
    {sdk.call}
    C.close()
    with {sdk.sync} as C:
        {sdk.call}
    async def main():
        C = {sdk.aio}
        await {sdk.call}
        await C.close()
        async with {sdk.aio} as C:
            await {sdk.call}
    asyncio.run(main())
    gc.collect()
    import leakguard
    assert leakguard.open_sessions() == []
    print("done")
    """
    stderr, status, written = run(sdk, body, tmp_path, LEAKGUARD_LOG="debug")
    assert status == 0, stderr
    assert "leakguard: " in stderr  # debug logging saw the clients made and closed ...
    assert "garbage-collected" not in stderr and "still open" not in stderr, stderr
    assert written == ""  # ... and nothing leaked


def test_client_dropped_in_a_function_is_closed_by_the_sdk(sdk: Sdk, tmp_path: Path) -> None:
    # the SDKs close their own httpx2 client in __del__ (the async one by scheduling aclose()
    # on the running loop): nothing leaks, nothing is reported
    body = f"""
    def ask():
        C = {sdk.sync}
        {sdk.call}
    ask()
    async def main():
        C = {sdk.aio}
        await {sdk.call}
        del C
        gc.collect()
        await asyncio.sleep(0.05)
    asyncio.run(main())
    gc.collect()
    """
    stderr, status, _ = run(sdk, body, tmp_path)
    assert status == 0, stderr
    assert "leakguard" not in stderr, stderr


def test_async_client_dropped_after_its_loop_is_reported(sdk: Sdk, tmp_path: Path) -> None:
    # with no running loop its __del__ cannot schedule aclose(): the connection stays open
    body = f"""
    async def main():
        C = {sdk.aio}
        await {sdk.call}
        return C
    C = asyncio.run(main())
    del C
    gc.collect()
    """
    stderr, status, written = run(sdk, body, tmp_path)
    assert status == 0, stderr
    assert stderr.count("AsyncHttpxClientWrapper garbage-collected without close() "
                        "(1 open connection to http://127.0.0.1:") == 1, stderr
    assert f"\n    C = {sdk.aio}\n" in stderr  # the user's line, in the stack
    assert json.loads(written)["event"] == "gc"


def test_client_held_until_exit_is_reported_at_the_users_line(sdk: Sdk, tmp_path: Path) -> None:
    body = f"""
    CLIENTS = []
    def main():
        C = {sdk.sync}
        {sdk.call}
        CLIENTS.append(C)
    main()
    """
    stderr, status, written = run(sdk, body, tmp_path)
    code = SDK_SERVER + f"import asyncio, gc, {sdk.module}\n" + textwrap.dedent(body)
    line = code.splitlines().index(f"    C = {sdk.sync}") + 1
    assert status == 0, stderr
    assert stderr.count("SyncHttpxClientWrapper still open at interpreter exit "
                        "(1 open connection to http://127.0.0.1:") == 1, stderr
    assert f'app.py", line {line}, in main\n    C = {sdk.sync}' in stderr, stderr
    assert f"  1 x {sdk.module}._base_client.SyncHttpxClientWrapper created at " \
           f"app.py:{line} in main" in stderr, stderr
    record = json.loads(written)
    assert record["event"] == "exit" and record["origins"][0].startswith("http://127.0.0.1:")


def test_streamed_completion_never_closed_is_a_leaked_response(sdk: Sdk, tmp_path: Path) -> None:
    body = f"""
    C = {sdk.sync}
    def ask():
        stream = {sdk.call[:-1]}, stream=True)
    ask()
    gc.collect()
    with {sdk.call[:-1]}, stream=True) as ok:
        for event in ok:
            pass
    C.close()
    """
    stderr, status, written = run(sdk, body, tmp_path)
    assert status == 0, stderr
    assert stderr.count("leakguard: httpx2.Response garbage-collected without close() "
                        "(holding a connection to http://127.0.0.1:") == 1, stderr
    assert "stream = C." in stderr, stderr  # the line that made the request
    assert "leakguard: 1 leaked response" in stderr, stderr
    assert json.loads(written)["kind"] == "response"


@pytest.mark.parametrize("then", ["dropped", "dropped in a cycle", "kept"])
def test_stream_stopped_early_is_judged_by_what_the_sdk_really_does(
        sdk: Sdk, then: str, tmp_path: Path) -> None:
    # the SDKs' stream generators close the response in a `finally`: as the stream is
    # dropped (Anthropic's), or when the collector frees it (OpenAI's: the stream and its
    # generator are a cycle), also in a cycle of the program's. A pool of one connection
    # shows the truth: the next request gets the connection back, or times out
    body = f"""
    THEN = {then!r}
    import httpx2, sys
    HTTP = httpx2.Client(limits=httpx2.Limits(max_connections=1),
                         timeout=httpx2.Timeout(5, pool=0.5))
    C = {sdk.sync[:-1]}, http_client=HTTP)
    KEEP = []
    class Box:
        def __init__(self, stream):
            self.stream, self.me = stream, self
    def ask():
        stream = {sdk.call[:-1]}, stream=True)
        for event in stream:
            break  # stopped early: the rest of the body is never read
        if THEN == "dropped in a cycle":
            Box(stream)
        elif THEN == "kept":
            KEEP.append(stream)
    ask()
    gc.collect()
    try:
        {sdk.call}
        print("next request: ok", file=sys.stderr)
    except Exception as e:
        print("next request:", type(e).__name__, file=sys.stderr)
    if THEN != "kept":
        C.close()
    """
    stderr, status, _ = run(sdk, body, tmp_path)
    assert status == 0, stderr
    if then == "kept":  # the connection stays out of the pool until exit: reported there
        assert stderr.startswith("next request: APITimeoutError\n"), stderr
        assert stderr.count("leakguard: httpx2.Response still open at interpreter exit "
                            "(holding a connection to http://127.0.0.1:") == 1, stderr
        assert "stream = C." in stderr, stderr  # the line that made the request
    else:  # closed by the SDK's generator as it went: nothing held, nothing reported
        assert stderr == "next request: ok\n", stderr


@pytest.mark.parametrize("then", ["dropped", "dropped in a cycle", "kept"])
def test_async_stream_stopped_early_is_judged_by_what_the_sdk_really_does(
        sdk: Sdk, then: str, tmp_path: Path) -> None:
    # async: the loop's hook runs the dropped stream generator's aclose() a little later
    # (the response, brought back for it, is judged when it really dies)
    body = f"""
    THEN = {then!r}
    import httpx2, sys
    KEEP = []
    class Box:
        def __init__(self, stream):
            self.stream, self.me = stream, self
    async def main():
        HTTP = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=1),
                                  timeout=httpx2.Timeout(5, pool=0.5))
        C = {sdk.aio[:-1]}, http_client=HTTP)
        async def ask():
            stream = await {sdk.call[:-1]}, stream=True)
            async for event in stream:
                break  # stopped early: the rest of the body is never read
            if THEN == "dropped in a cycle":
                Box(stream)
            elif THEN == "kept":
                KEEP.append(stream)
        await ask()
        for _ in range(3):  # collections, and loop turns for the generators' aclose()
            gc.collect()
            for _ in range(20):
                await asyncio.sleep(0)
        try:
            await {sdk.call}
            print("next request: ok", file=sys.stderr)
        except Exception as e:
            print("next request:", type(e).__name__, file=sys.stderr)
        if THEN == "kept":
            KEEP.append(C)
        else:
            await C.close()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(main())  # kept: the loop stays, with the stream, until exit
    """
    stderr, status, _ = run(sdk, body, tmp_path)
    assert status == 0, stderr
    if then == "kept":
        assert stderr.startswith("next request: APITimeoutError\n"), stderr
        assert stderr.count("leakguard: httpx2.Response still open at interpreter exit "
                            "(holding a connection to http://127.0.0.1:") == 1, stderr
        assert "stream = await C." in stderr, stderr
    else:
        assert stderr == "next request: ok\n", stderr


def test_aiohttp_transport_client_is_one_session(sdk: Sdk, tmp_path: Path) -> None:
    # DefaultAioHttpClient: an httpx2 client whose transport makes its own aiohttp session;
    # that session is the client's (closed by its aclose()): one client held until exit is
    # one report, with the aiohttp connection counted; closed, nothing
    pytest.importorskip("aiohttp")
    body = f"""
    KEEP = []
    async def main():
        async with {sdk.aio[:-1]}, http_client={sdk.module}.DefaultAioHttpClient()) as C:
            await {sdk.call}
        C = {sdk.aio[:-1]}, http_client={sdk.module}.DefaultAioHttpClient())
        await {sdk.call}
        KEEP.append(C)
    asyncio.run(main())
    """
    stderr, status, written = run(sdk, body, tmp_path)
    assert status == 0, stderr
    assert "aiohttp.ClientSession" not in stderr, stderr
    assert stderr.count("AioHttpClient still open at interpreter exit (1 open connection to "
                        "http://127.0.0.1:") == 1, stderr
    assert "leakguard: 1 leaked session (1 still open at exit)" in stderr, stderr
    assert [json.loads(line)["event"] for line in written.splitlines()] == ["exit"]
