"""Webhooks reach public addresses only, so no one who manages them can make the server call
its own loopback, the LAN or the cloud metadata service (SSRF): refused when a webhook is saved
(service and admin), again when it is sent (after resolving the name, connecting to the very
address checked), and never redirected. WEBHOOK_ALLOWED_NETWORKS lets a local receiver in."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import shutil
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from core.errors import ApplicationError
from core.models import AuditEvent
from monitoring import services as monitoring_services
from monitoring import tasks, webhook_targets
from monitoring.models import AlertDelivery, Webhook
from tests.e2e.conftest import free_port
from tests.helpers import Unchanged
from tests.monitoring.traffic import log_window
from tests.processes import ROOT

ALLOW = "allow it with WEBHOOK_ALLOWED_NETWORKS"
REFUSED = [
    ("http://127.0.0.1:9000/", ["127.0.0.1 is a loopback address", ALLOW]),
    ("http://localhost:9000/", ["localhost resolves to ", "a loopback address", ALLOW]),
    ("https://10.0.0.5/hook", ["10.0.0.5 is a private address", ALLOW]),
    ("http://169.254.169.254/latest/meta-data/", ["169.254.169.254 is a link-local address"]),
    ("http://[::1]:9000/", ["::1 is a loopback address", ALLOW]),
    ("http://[::ffff:127.0.0.1]:9000/", ["::ffff:127.0.0.1 is a loopback address"]),
    ("http://[fe80::1]/", ["fe80::1 is a link-local address"]),
    ("http://224.0.0.1/", ["224.0.0.1 is a multicast address"]),
    ("http://0.0.0.0:9000/", ["0.0.0.0 is an unspecified address"]),
    ("http://100.64.0.1/", ["100.64.0.1 is not a public address"]),
    ("ftp://hooks.example/alerts", ["an http:// or https:// address"]),
    ("file:///etc/passwd", ["an http:// or https:// address"]),
    ("gopher://hooks.example/", ["an http:// or https:// address"]),
    ("https://user:pass@hooks.example/", ["no user name or password"]),
    ("https:///alerts", ["the address has no host"]),
]


@pytest.fixture(autouse=True)
def nothing_allowed(settings):
    """Whatever the developer's environment says: the default, nothing inside is allowed."""
    settings.WEBHOOK_ALLOWED_NETWORKS = []


@pytest.fixture
def serve():
    """serve(status, headers={}, tls=None) -> (url, hits): a real HTTP(S) server on loopback
    answering every request with that status; hits are (method, path, headers, body)."""
    servers = []

    def start(status, headers=None, tls=None):
        hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hits.append((self.command, self.path, dict(self.headers), body))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()

            do_GET = do_POST  # a followed 302 would come back as a GET

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}/hook", hits

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- when saved -------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "said"), REFUSED)
def test_a_webhook_into_the_network_or_not_http_is_refused_and_nothing_saved(admin_user, url,
                                                                             said):
    with Unchanged(allow_actions=()), pytest.raises(ApplicationError) as refused:
        monitoring_services.webhook_save(actor=admin_user, name="in", url=url, secret="s")
    assert refused.value.field == "url"
    assert all(part in refused.value.message for part in said), refused.value.message


def test_changing_a_webhook_to_an_inside_address_is_refused(admin_user):
    hook = monitoring_services.webhook_save(actor=admin_user, name="out", url="https://hooks.example/a",
                                 secret="s")
    with Unchanged(allow_actions=()), pytest.raises(ApplicationError, match="metadata|link"):
        monitoring_services.webhook_save(actor=admin_user, webhook=hook,
                              url="http://169.254.169.254/latest/meta-data/")
    hook.refresh_from_db()
    assert hook.url == "https://hooks.example/a"


def test_the_allowed_networks_let_those_addresses_in_and_no_others(admin_user, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32", "10.1.0.0/16"]
    for url in ("http://127.0.0.1:9000/", "http://localhost:9000/",
                "http://[::ffff:127.0.0.1]:9000/", "https://10.1.2.3/hook"):
        monitoring_services.webhook_save(actor=admin_user, name=url, url=url, secret="s")
    for url in ("http://127.0.0.2/", "https://10.0.0.5/hook", "http://[::1]:9000/"):
        with Unchanged(allow_actions=()), pytest.raises(ApplicationError):
            monitoring_services.webhook_save(actor=admin_user, name=url, url=url, secret="s")
    assert Webhook.objects.count() == 4


@pytest.mark.parametrize(("url", "said"), REFUSED)
def test_the_admin_shows_a_refused_url_as_a_form_error(client, admin_user, url, said):
    client.force_login(admin_user)
    with Unchanged(allow_actions=()):
        page = client.post("/admin/monitoring/webhook/add/", {
            "name": "in", "url": url, "secret": "s", "min_severity": "warning",
            "enabled": "on"})
    assert page.status_code == 200
    errors = page.context["adminform"].form.errors["url"]
    # Django's own URL check turns some away first ("Enter a valid URL."); ours, the rest.
    assert errors == ["Enter a valid URL."] or all(p in errors[0] for p in said), errors


def test_a_webhook_refused_since_it_was_saved_can_still_be_switched_off(client, admin_user,
                                                                        settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    hook = monitoring_services.webhook_save(actor=admin_user, name="local", url="http://127.0.0.1:9000/",
                                 secret="s")
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    client.force_login(admin_user)
    page = client.post(f"/admin/monitoring/webhook/{hook.pk}/change/", {
        "name": "local", "url": "http://127.0.0.1:9000/", "secret": "",
        "min_severity": "warning"})
    assert page.status_code == 302, page.context["adminform"].form.errors
    hook.refresh_from_db()
    assert hook.enabled is False


# --- when sent --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_webhook_allowed_when_saved_is_refused_when_sent_once_no_longer_allowed(
    monitored, admin_user, receiver, settings, host
):
    url, received = receiver
    settings.ALERT_DELIVERY_BACKOFF_SECONDS = [0]
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    monitoring_services.webhook_save(actor=admin_user, name="local", url=url.replace("127.0.0.1", host),
                          secret="s")
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    (run,) = monitoring_services.monitoring_pass(model=monitored.model, now=now)  # sends on commit
    assert run.status == "alerting"
    delivery = AlertDelivery.objects.get(channel="webhook")
    said = ("127.0.0.1 is" if host == "127.0.0.1" else "localhost resolves to 127.0.0.1,")
    assert delivery.last_error == f"{said} a loopback address; {ALLOW}"
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    tasks.deliveries_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert AuditEvent.objects.get(action="alert.delivery_failed").reason == delivery.last_error
    assert received == []  # the receiver never heard of it


@pytest.mark.django_db(transaction=True)
def test_a_redirect_is_not_followed(monitored, admin_user, serve, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.ALERT_DELIVERY_BACKOFF_SECONDS = [60]
    inside, inside_hits = serve(200)
    outside, outside_hits = serve(302, {"Location": inside})
    monitoring_services.webhook_save(actor=admin_user, name="moved", url=outside, secret="s")
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    delivery = AlertDelivery.objects.get(channel="webhook")
    assert [(method, path) for method, path, _, _ in outside_hits] == [("POST", "/hook")]
    assert inside_hits == []
    assert (delivery.status, delivery.response_status) == ("retrying", 302)
    assert delivery.last_error == (f"the receiver answered 302, a redirect to {inside}: "
                                   "redirects are not followed")


@pytest.mark.django_db(transaction=True)
def test_the_allowed_loopback_receiver_gets_the_signed_alert(monitored, admin_user, serve,
                                                             settings):
    url, hits = serve(204)
    with pytest.raises(ApplicationError, match="127.0.0.1 is a loopback address"):
        monitoring_services.webhook_save(actor=admin_user, name="local", url=url, secret="s3cret")
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    monitoring_services.webhook_save(actor=admin_user, name="local", url=url + "?team=risk",
                          secret="s3cret")
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    delivery = AlertDelivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.response_status, delivery.last_error) == ("sent", 204, "")
    ((method, path, headers, body),) = hits
    assert (method, path, headers["Host"]) == ("POST", "/hook?team=risk", urlsplit(url).netloc)
    signed = hmac.new(b"s3cret", headers["X-Mgov-Timestamp"].encode() + b"." + body,
                      hashlib.sha256).hexdigest()
    assert headers["X-Mgov-Signature"] == f"sha256={signed}"
    assert headers["X-Mgov-Delivery"] == str(delivery.pk)


@pytest.mark.django_db(transaction=True)
def test_the_demo_listener_gets_a_valid_delivery_once_the_app_allows_loopback(
    monitored, admin_user, settings
):
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k != "WEBHOOK_ALLOWED_NETWORKS"}
    listener = subprocess.Popen(
        [sys.executable, "manage.py", "webhook_listen", "--port", str(port), "--secret",
         "demo-secret"], cwd=ROOT, env={**environment, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().startswith(f"Listening on http://127.0.0.1:{port}/")
        assert "does not allow 127.0.0.1 here" in listener.stdout.readline()
        settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # what bin/run sets
        monitoring_services.webhook_save(actor=admin_user, name="demo", url=f"http://127.0.0.1:{port}/",
                              secret="demo-secret")
        now = timezone.now()
        log_window(monitored, end=now, seed=1, shift_tenure=1.0)
        monitoring_services.monitoring_pass(model=monitored.model, now=now)
        delivery = AlertDelivery.objects.get(channel="webhook")
        assert (delivery.status, delivery.response_status) == ("sent", 200)
        assert (f"alert.opened delivery {delivery.pk} — signature valid"
                in listener.stdout.readline())
    finally:
        listener.terminate()
        listener.wait(timeout=30)
        listener.stdout.close()


def _post(target):
    connection = webhook_targets.connection(target, timeout=10)
    try:
        connection.request("POST", target.path, body=b"{}")
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_connection_goes_to_the_checked_address_with_the_host_name_in_host(serve):
    """hooks.example resolves nowhere (RFC 2606): reaching the server proves that the socket
    went to the address checked, with no second lookup."""
    url, hits = serve(200)
    port = urlsplit(url).port
    target = webhook_targets.Target(https=False, host="hooks.example", port=port, path="/hook",
                                    addresses=(ipaddress.ip_address("127.0.0.1"),))
    assert _post(target) == 200
    assert hits[0][2]["Host"] == f"hooks.example:{port}"


def test_https_checks_the_host_names_certificate_at_the_checked_address(serve, tmp_path,
                                                                       monkeypatch):
    openssl = shutil.which("openssl") or pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=hooks.example", "-addext", "subjectAltName=DNS:hooks.example",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    names = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    tls.sni_callback = lambda _socket, name, _context: names.append(name)
    url, hits = serve(200, tls=tls)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust this certificate, and no other

    def target(host):
        return webhook_targets.Target(https=True, host=host, port=urlsplit(url).port,
                                      path="/hook",
                                      addresses=(ipaddress.ip_address("127.0.0.1"),))

    assert _post(target("hooks.example")) == 200
    assert names == ["hooks.example"]
    assert hits[0][2]["Host"] == f"hooks.example:{urlsplit(url).port}"
    with pytest.raises(ssl.SSLCertVerificationError, match="hooks.example|mismatch"):
        _post(target("other.example"))
    assert len(hits) == 1
