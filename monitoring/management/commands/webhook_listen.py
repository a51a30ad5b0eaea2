"""A webhook receiver for trying alerts out: prints each delivery and whether its signature
holds. Add a webhook in the admin pointing at it (http://127.0.0.1:9000/) with the same secret;
the app must allow loopback with WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32 (bin/run does in
development).

    python manage.py webhook_listen --port 9000 --secret demo-secret
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import BaseCommand

from monitoring import webhook_targets
from monitoring.notifications import sign


class Command(BaseCommand):
    help = "Receive alert webhooks on 127.0.0.1 and check their HMAC-SHA256 signatures."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9000)
        parser.add_argument("--secret", required=True)

    def handle(self, *args, port, secret, **options):
        out = self.stdout

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                timestamp = self.headers.get("X-Mgov-Timestamp", "")
                expected = sign(secret, timestamp, body)
                valid = hmac.compare_digest(expected, self.headers.get("X-Mgov-Signature", ""))
                # A signed delivery replayed later is refused: 5 minutes of clock skew at most.
                fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
                valid = valid and fresh
                self.send_response(200 if valid else 401)
                self.end_headers()
                try:
                    alert = json.loads(body)["alert"]
                    summary = f"#{alert['id']} {alert['model']}: {alert['title']}"
                except (ValueError, KeyError):
                    summary = body[:200]
                out.write(f"{self.headers.get('X-Mgov-Event')} delivery "
                          f"{self.headers.get('X-Mgov-Delivery')} — signature "
                          f"{'valid' if valid else 'INVALID'} — {summary}")

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        out.write(f"Listening on http://127.0.0.1:{port}/ (Ctrl-C stops).")
        if webhook_targets.refusal(ipaddress.ip_address("127.0.0.1")):
            out.write("WEBHOOK_ALLOWED_NETWORKS does not allow 127.0.0.1 here: unless the app's "
                      "setting does (bin/run allows it in development), it refuses this "
                      "receiver.")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
