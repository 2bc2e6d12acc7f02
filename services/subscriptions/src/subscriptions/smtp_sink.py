"""A local SMTP sink (aiosmtpd) for `make up` and the tests: accepts every message, keeps
it in memory and, with `--dir`, writes it as an .eml file.

    python -m subscriptions.smtp_sink --port 1025 --dir /tmp/bos-mail
"""

from __future__ import annotations

import argparse
import email
import email.policy
import signal
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw: bytes = envelope.original_content or envelope.content
        self.sink._store(raw, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, directory: str | None = None):
        self.host = host
        self.port = port
        self.directory = Path(directory) if directory else None
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def _store(self, raw: bytes, rcpt: list[str]) -> None:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
            n = len(self.messages)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / f"{time.time_ns()}-{n}.eml").write_bytes(raw)

    def start(self) -> SmtpSink:
        if self.port == 0:
            import socket

            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def find(self, to: str | None = None, kind: str | None = None) -> list[EmailMessage]:
        with self._lock:
            found = list(self.messages)
        return [
            m
            for m in found
            if (to is None or to in str(m["To"]))
            and (kind is None or m["X-BOS-Notification"] == kind)
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink for BOS notifications")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", default=None, help="write each message as an .eml file")
    args = parser.parse_args()
    sink = SmtpSink(args.host, args.port, args.dir).start()
    print(f"smtp sink on {sink.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sink.stop()


if __name__ == "__main__":
    main()
