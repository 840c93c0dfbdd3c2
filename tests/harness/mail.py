"""A real SMTP server in this process (aiosmtpd), for the rendered backend to
send its mail to: EMAIL_URL=<inbox.url>."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

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
