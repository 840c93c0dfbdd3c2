"""The bare limit of tests/benchmarks/bench_serving.py: granian's RSGI, no
framework, answering the two endpoints it loads with the same SQL as the
rendered backend and the same JSON bytes.

    BARE_DSN=... granian --interface rsgi --workers 2 harness.bare_serving:app

GET /api/health/: `SELECT 1` (what giga/views.py database_status() sends
the public once the migrations are known applied). GET /api/auth/me/: knox's lookup (the token's first 15
characters), its SHA-512 digest compared in constant time, the expiry, then
the user's row; the body UsuarioSerializer would write. Each worker keeps
BARE_CONNECTIONS (4: the threads of the shipped image) connections open.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
from datetime import UTC, datetime

import psycopg

HEALTH = b'{"status":"ok"}'
UNAUTHORIZED = b'{"detail":"Invalid token."}'
JSON = [("content-type", "application/json")]
TOKEN = re.compile(r"Token ([0-9a-f]{64})")
USER_SQL = ('SELECT id, username, email, email_verified, is_staff, date_joined, is_active '
            'FROM personas_usuario WHERE id = %s')


class App:
    def __init__(self) -> None:
        self.connections: asyncio.Queue | None = None
        self.lock: asyncio.Lock | None = None

    async def _connections(self) -> asyncio.Queue:
        if self.connections is None:
            self.lock = self.lock or asyncio.Lock()
            async with self.lock:
                if self.connections is None:
                    queue: asyncio.Queue = asyncio.Queue()
                    for _ in range(int(os.environ.get("BARE_CONNECTIONS", "4"))):
                        queue.put_nowait(await psycopg.AsyncConnection.connect(os.environ["BARE_DSN"],
                                                                               autocommit=True))
                    self.connections = queue
        return self.connections

    async def __rsgi__(self, scope, proto) -> None:
        pool = await self._connections()
        conn = await pool.get()
        try:
            if scope.path == "/api/health/":
                await (await conn.execute("SELECT 1")).fetchone()
                proto.response_bytes(200, JSON, HEALTH)
            elif scope.path == "/api/auth/me/":
                status, body = await me(conn, scope.headers.get("authorization") or "")
                proto.response_bytes(status, JSON, body)
            else:
                proto.response_bytes(404, JSON, b'{"detail":"Not found."}')
        finally:
            pool.put_nowait(conn)


async def me(conn, header: str) -> tuple[int, bytes]:
    match = TOKEN.fullmatch(header)
    if not match:
        return 401, UNAUTHORIZED
    token = match.group(1)
    digest = hashlib.sha512(token.encode()).hexdigest()
    rows = await (await conn.execute("SELECT digest, user_id, expiry FROM knox_authtoken WHERE token_key = %s",
                                     (token[:15],))).fetchall()
    for stored, user_id, expiry in rows:
        if hmac.compare_digest(digest, stored) and (expiry is None or expiry > datetime.now(UTC)):
            row = await (await conn.execute(USER_SQL, (user_id,))).fetchone()
            if row is None or not row[6]:
                return 401, UNAUTHORIZED
            joined = row[5].astimezone(UTC).isoformat().replace("+00:00", "Z")
            return 200, json.dumps({"id": row[0], "username": row[1], "email": row[2], "email_verified": row[3],
                                    "is_staff": row[4], "date_joined": joined},
                                   ensure_ascii=False, separators=(",", ":")).encode()
    return 401, UNAUTHORIZED


app = App()
