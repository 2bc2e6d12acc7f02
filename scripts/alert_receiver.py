"""A webhook receiver for Alertmanager that records every notification (development and
tests: `make up OBS=1`, tests/e2e/test_obs_alerts.py).

POST /<receiver>  an Alertmanager webhook payload; appended, with the path, to
                  <dir>/notifications.jsonl
GET  /notifications  every notification recorded so far, as a JSON list
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def serve(host: str, port: int, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "notifications.jsonl"
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            try:
                payload: Any = json.loads(self.rfile.read(length))
            except json.JSONDecodeError:
                self.send_response(400)
                self.end_headers()
                return
            record = {"receiver_path": self.path, "payload": payload}
            with lock, log.open("a") as f:
                f.write(json.dumps(record) + "\n")
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            if self.path != "/notifications":
                self.send_response(404)
                self.end_headers()
                return
            with lock:
                lines = log.read_text().splitlines() if log.exists() else []
            body = json.dumps([json.loads(line) for line in lines]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # one line per notification is in the file already

    ThreadingHTTPServer((host, port), Handler).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    serve(args.host, args.port, args.dir)


if __name__ == "__main__":
    main()
