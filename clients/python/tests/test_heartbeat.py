"""Heart-beat negotiation: both sides beating at 200 ms keep an idle connection alive, and a
client that promised beats but goes silent is closed with `heart-beat timeout`."""

import socket
import time

import pytest

IDLE_S = 2.0


@pytest.fixture(scope="module")
def fast_beat_broker(tmp_path_factory):
    from conftest import start_broker

    b = start_broker(tmp_path_factory.mktemp("hb"), "--heartbeat", "200,200")
    yield b
    b.stop()


def test_idle_connection_survives_with_heartbeats(connect, fast_beat_broker, unique):
    # Tolerance 2x like stompjs and the broker's default grace: a loaded 2-core CI box can delay
    # a 200 ms beat by tens of milliseconds, and stomp.py's default 1.5x would flake.
    client = connect("alice", target=fast_beat_broker, heartbeats=(200, 200), heart_beat_receive_scale=2.0)
    sx, sy = (int(v) for v in client.listener.connected_frame.headers["heart-beat"].split(","))
    assert sx > 0 and sy > 0, "broker configured with --heartbeat 200,200 must offer both directions"
    time.sleep(IDLE_S)
    assert client.conn.is_connected()
    assert not client.listener.disconnected.is_set()
    assert client.listener.heartbeat_timeouts == 0
    # 200 ms beats over 2 s: allow for scheduling jitter, but some must have arrived.
    assert client.listener.heartbeats >= 3, f"only {client.listener.heartbeats} heart-beats from the broker"
    dest = f"/topic/hb-{unique}"
    client.subscribe(dest, "s1")
    client.send(dest, "still here")
    assert client.listener.message().body == "still here"


def test_silent_client_is_closed_with_heartbeat_timeout(fast_beat_broker):
    # Raw socket: stomp.py would send the heart-beats we promise here.
    with socket.create_connection(fast_beat_broker.address, timeout=5) as sock:
        sock.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:alice\nheart-beat:200,0\n\n\x00")
        received = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        assert received.startswith(b"CONNECTED\n"), received[:200]
        assert b"\nERROR\n" in received or b"\x00ERROR\n" in received, received
        error = received[received.index(b"ERROR\n") :]
        assert b"\nmessage:heart-beat timeout\n" in error, error


@pytest.fixture(scope="module")
def slow_offer_broker(tmp_path_factory):
    from conftest import start_broker

    # Spring's and many operators' 10 s: before issue 17's fix it overrode a client's faster ask.
    b = start_broker(tmp_path_factory.mktemp("hb-slow"), "--heartbeat", "10000,10000")
    yield b
    b.stop()


def test_a_one_second_ask_is_honoured_under_a_slower_offer(connect, slow_offer_broker):
    client = connect("alice", target=slow_offer_broker, heartbeats=(1000, 1000), heart_beat_receive_scale=2.0)
    assert client.listener.connected_frame.headers["heart-beat"] == "1000,1000"
    # stomp.py schedules from the CONNECTED header: beats both ways every second, so 3.5 s
    # brings about three; at the offer's 10 s it would bring none.
    time.sleep(3.5)
    assert client.conn.is_connected()
    assert client.listener.heartbeat_timeouts == 0
    assert client.listener.heartbeats >= 2, f"only {client.listener.heartbeats} heart-beats from the broker"
