"""stomp.py over TLS (issue 12): `set_ssl` with the test CA against --stomp-tls-listen, a client
certificate as the user (docs/security/tls.md), and an untrusted certificate refused.

The test PKI comes from scripts/test-certs.sh (openssl), written once per session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import stomp

from conftest import REPO, WAIT_S, Client, Collector

JWT_SECRET = "python-tls-secret-0123456789abcdef"


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    subprocess.run([str(REPO / "scripts" / "test-certs.sh"), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture
def tls_broker(broker_factory, certs):
    """A broker with STOMP over TLS, checking passcodes (JWT) and accepting client certificates
    of the test CA."""
    return broker_factory(
        "--stomp-tls-listen", "127.0.0.1:0",
        "--tls-cert", str(certs / "server.pem"),
        "--tls-key", str(certs / "server-key.pem"),
        "--tls-client-ca", str(certs / "ca.pem"),
        "--jwt-secret", JWT_SECRET,
    )


def tls_connect(broker, certs: Path, login: str | None = None, passcode: str | None = None, *, client: str | None = None):
    """A stomp.py 1.2 connection over SSL verifying the server against the test CA, presenting
    `client-<client>.pem` when given; returns the Client once CONNECT was sent (not answered)."""
    host_port = ("localhost", broker.tls_port)
    conn = stomp.Connection12([host_port], heartbeats=(0, 0), reconnect_attempts_max=1)
    ssl_args = {"ca_certs": str(certs / "ca.pem")}
    if client:
        ssl_args |= {"cert_file": str(certs / f"client-{client}.pem"), "key_file": str(certs / f"client-{client}-key.pem")}
    conn.set_ssl(for_hosts=[host_port], **ssl_args)
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect(login, passcode, wait=False)
    return Client(conn, listener)


def test_stomp_py_over_ssl_with_a_client_certificate(tls_broker, certs):
    # alice: a client certificate and no passcode, although the broker checks passcodes.
    alice = tls_connect(tls_broker, certs, client="alice")
    # bob over TLS without a certificate: his login and a token, as over plain TCP.
    bob = tls_connect(tls_broker, certs, "bob", _token("bob"))
    try:
        assert alice.listener.connected.wait(WAIT_S), f"no CONNECTED over TLS:\n{tls_broker.log_tail()}"
        assert alice.listener.connected_frame.headers["user-name"] == "alice"
        assert bob.listener.connected.wait(WAIT_S), f"no CONNECTED over TLS:\n{tls_broker.log_tail()}"
        dest = f"/topic/tls-{uuid.uuid4().hex[:8]}"
        alice.subscribe(dest, "s1")
        bob.send(dest, "over TLS", **{"user-id": "mallory"})
        message = alice.listener.message()
        assert message.body == "over TLS"
        assert message.headers["user-id"] == "bob"
        alice.send(dest, "from a certificate")
        message = alice.listener.message()
        assert message.body == "from a certificate"
        assert message.headers["user-id"] == "alice"
    finally:
        bob.close()
        alice.close()


def test_a_login_naming_someone_else_than_the_certificate_is_refused(tls_broker, certs):
    client = tls_connect(tls_broker, certs, "bob", "anything", client="alice")
    try:
        error = client.listener.error()
        assert error.headers["message"] == "authentication failed"
        assert "client certificate" in error.body
        assert not client.listener.connected.is_set()
    finally:
        client.close()


def test_an_untrusted_client_certificate_is_refused(tls_broker, certs):
    try:
        client = tls_connect(tls_broker, certs, client="mallory")
    except (stomp.exception.ConnectFailedException, stomp.exception.NotConnectedException, OSError):
        # Refused during the handshake; with TLS 1.3 the server checks the client certificate
        # after the client's side of the handshake is done, so the broker's alert may instead
        # close the socket while stomp.py writes CONNECT (which exception then depends on when:
        # ssl.SSLError, or OSError EBADF once stomp.py has closed the socket it read the alert
        # on). The TLS handshake itself succeeded, so the broker was up and listening.
        return
    try:
        # TLS 1.3: the alert arrives after the client's handshake; no CONNECTED ever does.
        assert client.listener.disconnected.wait(WAIT_S), "connection with an untrusted certificate stayed open"
        assert not client.listener.connected.is_set()
    finally:
        client.close()


def _token(sub: str) -> str:
    """An HS256 JWT for `sub`, valid for an hour, built with the standard library only."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": sub, "exp": int(time.time()) + 3600}).encode())
    signature = hmac.new(JWT_SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(signature)}"
