"""A local endpoint that speaks Sentry's envelope protocol, for the SDKs the
generated backend and frontend load when SENTRY_DSN is set: it takes
POST /api/<project>/envelope/, reads the envelope (a JSON header line, then
items: a JSON item header, then its payload, `length` bytes or one line) and
keeps every item, so a test sees exactly what would have left the machine."""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def parse_envelope(body: bytes) -> list[tuple[dict, bytes]]:
    """The (item header, payload) pairs of an envelope."""
    _, _, rest = body.partition(b"\n")  # the envelope's own header
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[:header["length"]], rest[header["length"]:]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return items


class Envelopes:
    def __init__(self, port: int):
        self.dsn = f"http://publickey@127.0.0.1:{port}/1"
        self.raw: list[bytes] = []  # every body, decompressed: what a leak would be in
        self.items: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(payload) for header, payload in self.items if header.get("type") == "event"]

    def wait_for_event(self, predicate, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            time.sleep(0.2)
        raise AssertionError(f"no such event within {timeout}s; received: {self.events()}")


@contextlib.contextmanager
def envelope_endpoint(host: str = "127.0.0.1"):
    """Yields Envelopes (its .dsn points here) while the endpoint runs."""
    received: list[Envelopes] = []

    class Handler(BaseHTTPRequestHandler):
        def body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":  # Node's SDK streams it
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()  # the empty trailer
            return b"".join(chunks)

        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.body()
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding:
                self.send_error(415, f"unsupported Content-Encoding {encoding}")
                return
            envelopes = received[0]
            with envelopes.lock:
                envelopes.raw.append(body)
                envelopes.items.extend(parse_envelope(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    received.append(Envelopes(server.server_address[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received[0]
    finally:
        server.shutdown()
        server.server_close()
