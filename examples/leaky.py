"""A small program that leaks HTTP sessions and a streamed response.

Run it with leakguard switched on:

    LEAKGUARD=1 python examples/leaky.py

It starts its own HTTP server on 127.0.0.1, so it needs no network.
"""

from __future__ import annotations

import asyncio
import gc
import http.server
import threading

import aiohttp
import requests


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the pools really hold the connections

    def do_GET(self) -> None:
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a leaked connection reset as the program exits: not this example's subject


def serve() -> str:
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


def fetch(url: str) -> int:
    session = requests.Session()  # never closed: leaks its keep-alive connection
    return session.get(url).status_code


CACHE: dict[str, requests.Session] = {}


def cached_session(url: str) -> requests.Session:
    # a session kept in a module-level cache stays open until the process exits
    return CACHE.setdefault(url, requests.Session())


def first_status(url: str) -> int:
    with requests.Session() as session:  # the session is closed...
        response = session.get(url, stream=True)  # ...but this response is never read or closed
        return response.status_code


async def fetch_async(url: str) -> int:
    session = aiohttp.ClientSession()  # never closed
    async with session.get(url) as response:
        await response.read()
        return response.status


def main() -> None:
    url = serve()
    print("GET", url, "->", fetch(url))
    print("GET", url, "->", cached_session(url).get(url).status_code)
    print("GET", url, "->", asyncio.run(fetch_async(url)))
    print("GET", url, "->", first_status(url))
    with requests.Session() as ok:  # closed properly: no report
        ok.get(url)
    gc.collect()


if __name__ == "__main__":
    main()
