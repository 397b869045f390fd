"""A real HTTP server on loopback for tests: records requests and answers from a script of statuses."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HttpStub:
    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple[int, object]] = []  # answers to give, in order; then the default
        self.default: tuple[int, object] = (200, {"errorCode": "0", "success": True})
        self.routes: dict[str, tuple[int, object]] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                path = self.path.split("?", 1)[0]
                status, doc = stub.script.pop(0) if stub.script else stub.routes.get(path, stub.default)
                data = json.dumps(doc, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def json_bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests if r["body"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
