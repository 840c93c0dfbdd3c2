"""A real SMTP server in this process (aiosmtpd), for the rendered backend to
send its mail to: EMAIL_URL=<inbox.url>; and Mailpit's read API over what it
received, for the project's own Playwright journeys (front/e2e), which read
the dev stack's Mailpit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .net import free_port


class Inbox:
    """What the server received: (recipients, message), in order."""

    def __init__(self, port: int, delay: float = 0):
        self.port = port
        self.delay = delay
        self.url = f"smtp://127.0.0.1:{port}"
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._arrived = threading.Condition()
        self._taken: set[int] = set()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        await asyncio.sleep(self.delay)  # a slow server: the sender waits this long per message
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._arrived:
            self.messages.append((list(envelope.rcpt_tos), message))
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, recipient: str, subject: str = "", timeout: float = 15) -> EmailMessage:
        """The first message to `recipient` whose subject contains `subject`
        and that no earlier call returned; waits for it."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for index, (recipients, message) in enumerate(self.messages):
                    if recipient in recipients and subject in str(message["Subject"]) \
                            and index not in self._taken:
                        self._taken.add(index)
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail to {recipient} about {subject!r} within {timeout}s; "
                                         f"got {[(r, str(m['Subject'])) for r, m in self.messages]}")
                self._arrived.wait(left)

    def received(self, recipient: str, count: int, since: int = 0, timeout: float = 15) \
            -> list[tuple[list[str], EmailMessage]]:
        """The messages from the `since`-th on to a recipient matching the
        regular expression `recipient`, once there are `count` of them; waits
        for them (the backend's task worker sends a mail after the request
        that asked for it has been answered)."""
        def mine() -> list[tuple[list[str], EmailMessage]]:
            return [(recipients, message) for recipients, message in self.messages[since:]
                    if any(re.fullmatch(recipient, r) for r in recipients)]

        with self._arrived:
            if not self._arrived.wait_for(lambda: len(mine()) >= count, timeout):
                raise AssertionError(f"{count} mails to {recipient} expected within {timeout}s; "
                                     f"got {[(r, str(m['Subject'])) for r, m in mine()]}")
            return mine()

    def link(self, message: EmailMessage, base: str) -> str:
        """The one URL under `base` in `message`'s plain-text body."""
        body = message.get_body(("plain",)).get_content()
        links = re.findall(rf"{re.escape(base)}/\S+", body)
        assert len(links) == 1, body
        return links[0]


@contextlib.contextmanager
def smtp_server(delay: float = 0):
    """Yields an Inbox listening on 127.0.0.1 until the block ends; each
    message takes `delay` seconds to be accepted."""
    from aiosmtpd.controller import Controller

    inbox = Inbox(free_port(), delay)
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@contextlib.contextmanager
def mailpit_api(inbox: Inbox):
    """The part of Mailpit's API that front/e2e reads, over `inbox`'s messages:
    GET /api/v1/messages (newest first: ID, To, Subject) and
    GET /api/v1/message/<ID> (with the plain-text body as Text). Yields its URL."""

    def address(mailbox) -> dict:
        return {"Name": mailbox.display_name, "Address": mailbox.addr_spec}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            messages = [message for _, message in inbox.messages]
            if self.path.split("?")[0] == "/api/v1/messages":
                listed = [{"ID": str(index), "To": [address(a) for a in message["To"].addresses],
                           "Subject": str(message["Subject"])}
                          for index, message in reversed(list(enumerate(messages)))]
                return self.answer(200, {"total": len(listed), "messages": listed})
            found = re.fullmatch(r"/api/v1/message/(\d+)", self.path)
            if found and int(found.group(1)) < len(messages):
                message = messages[int(found.group(1))]
                return self.answer(200, {"ID": found.group(1), "Subject": str(message["Subject"]),
                                         "To": [address(a) for a in message["To"].addresses],
                                         "Text": message.get_body(("plain",)).get_content()})
            return self.answer(404, {"error": "not found"})

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
