"""Token expiry with a real client: stomp.py connects with a JWT, gets ERROR `token expired`
when the token's `exp` (plus the broker's 30 s leeway) passes, sees the connection close, and
reconnects on the same `stomp.Connection` with a fresh token, as docs/protocol.md tells
clients to."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import stomp

from conftest import WAIT_S, Client, Collector

SECRET = "python-token-secret-0123456789abcdef"
# The broker's clock-skew allowance (auth::JWT_LEEWAY_SECS).
LEEWAY_S = 30


def hs256_token(sub: str, exp: int) -> str:
    """A compact HS256 JWT, made with the standard library."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"sub": sub, "exp": exp}).encode())
    signature = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def test_stomp_py_reconnects_with_a_fresh_token_after_token_expired(broker_factory):
    broker = broker_factory("--jwt-secret", SECRET)
    conn = stomp.Connection12([broker.address], heartbeats=(0, 0), reconnect_attempts_max=1)
    listener = Collector()
    conn.set_listener("collector", listener)
    client = Client(conn, listener)

    # Past `exp` already, but inside the leeway for 2 more seconds: accepted, then expires.
    expiring = hs256_token("tess", int(time.time()) + 2 - LEEWAY_S)
    conn.connect(passcode=expiring, wait=True)
    assert listener.connected_frame.headers["user-name"] == "tess"
    topic = f"/topic/token-{uuid.uuid4().hex[:8]}"
    client.subscribe(topic, "s1")

    error = listener.error(timeout=2 + WAIT_S)
    assert error.headers["message"] == "token expired", error.headers
    assert listener.disconnected.wait(WAIT_S), "the broker did not close the expired session"

    # The client's recipe: a fresh token, the same connection object, subscriptions renewed.
    listener.connected.clear()
    listener.disconnected.clear()
    fresh = hs256_token("tess", int(time.time()) + 3600)
    conn.connect(passcode=fresh, wait=True)
    assert listener.connected_frame.headers["user-name"] == "tess"
    client.subscribe(topic, "s1")
    client.send(topic, "after the fresh token")
    assert listener.message().body == "after the fresh token"
    client.close()
