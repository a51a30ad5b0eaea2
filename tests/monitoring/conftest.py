"""Monitoring fixtures: a model in production with a reference profile, and a webhook receiver."""

from __future__ import annotations

import pytest

from tests.monitoring.traffic import make_monitored


@pytest.fixture
def monitored(data_scientist):
    """`loans` 1.0.0 in production with a reference profile (tests/monitoring/traffic.py)."""
    return make_monitored(data_scientist)


@pytest.fixture
def receiver():
    """A real HTTP server on loopback that refuses the first two deliveries (503), then
    accepts: (url, [(status, headers, body), ...])."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = 503 if len(received) < 2 else 200
            received.append((status, dict(self.headers), body))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/alerts", received
    server.shutdown()
    server.server_close()
