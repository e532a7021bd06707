"""Readiness means the supervisor's own child answers, never whatever holds the port."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from embedded.stack import _answers_as
from embedded.supervisor import ChildFailedError, ChildSpec, Supervisor
from tests.support.ports import free_port


@pytest.fixture
def impostor() -> Iterator[int]:
    """Another program answering health checks, as the one that held 8080 in the issue."""

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def test_someone_else_answering_is_not_ready(tmp_path: Path, impostor: int) -> None:
    supervisor = Supervisor(tmp_path)
    spec = ChildSpec(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        ready=_answers_as(f"http://127.0.0.1:{impostor}/healthz", impostor, "instance"),
        ready_timeout=3.0,
    )
    try:
        with pytest.raises(ChildFailedError, match="not ready"):
            await supervisor.start(spec)
    finally:
        await supervisor.stop_all()


SERVE_OWN_ID = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
        self.wfile.write(json.dumps({"instance": os.environ["METALGATE_INSTANCE_ID"]}).encode())
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


async def test_own_child_answering_with_its_instance_id_is_ready(tmp_path: Path) -> None:
    port = free_port()
    supervisor = Supervisor(tmp_path)
    spec = ChildSpec(
        "server",
        [sys.executable, "-c", SERVE_OWN_ID, str(port)],
        ready=_answers_as(f"http://127.0.0.1:{port}/", port, "instance"),
        ready_timeout=20.0,
    )
    try:
        child = await supervisor.start(spec)
        assert child.listens_on(port)
    finally:
        await supervisor.stop_all()
