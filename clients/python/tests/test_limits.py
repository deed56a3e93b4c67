"""Limits and refusals that need their own broker flags or a raw socket: a full queue, the
CONNECT timeout, no common protocol version, frames before CONNECT, STOMP 1.0 clients."""

import socket
import time

import stomp

from conftest import WAIT_S, Collector


def read_until_closed(sock: socket.socket, timeout: float = WAIT_S) -> bytes:
    """Everything the broker sends until it closes the socket (bounded)."""
    sock.settimeout(timeout)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"broker did not close the socket within {timeout}s; got {received[:300]!r}")


def error_message(data: bytes) -> str:
    assert b"ERROR\n" in data, data[:300]
    frame = data[data.index(b"ERROR\n") :]
    for line in frame.split(b"\n\n", 1)[0].split(b"\n")[1:]:
        if line.startswith(b"message:"):
            return line[len(b"message:") :].decode()
    raise AssertionError(f"ERROR without message header: {frame[:300]!r}")


def test_send_to_a_full_queue_is_an_error(broker_factory, connect, unique):
    small = broker_factory("--queue-max-messages", "2")
    producer = connect("producer", target=small)
    dest = f"/queue/full-{unique}"
    producer.send(dest, "1")
    producer.send(dest, "2")
    producer.conn.send(dest, "3", receipt="r-full")
    error = producer.listener.error()
    assert error.headers["message"] == "queue full"
    assert error.headers.get("receipt-id") == "r-full"
    # What was accepted before is kept.
    consumer = connect("consumer", target=small)
    consumer.subscribe(dest, "s1")
    assert [consumer.listener.message().body for _ in range(2)] == ["1", "2"]


def test_no_connect_within_the_timeout_closes_with_error(broker_factory):
    quick = broker_factory("--connect-timeout", "300ms")
    with socket.create_connection(quick.address, timeout=WAIT_S) as sock:
        data = read_until_closed(sock)
    assert error_message(data) == "connect timeout"


def test_no_common_version_is_refused(broker):
    with socket.create_connection(broker.address, timeout=WAIT_S) as sock:
        sock.sendall(b"CONNECT\naccept-version:2.0,3.1\nhost:localhost\n\n\x00")
        data = read_until_closed(sock)
    assert error_message(data) == "unsupported protocol version"
    headers = data[data.index(b"ERROR\n") :].split(b"\n\n", 1)[0]
    assert b"\nversion:" in headers and b"1.2" in headers, headers


def test_frame_before_connect_is_refused(broker):
    with socket.create_connection(broker.address, timeout=WAIT_S) as sock:
        sock.sendall(b"SEND\ndestination:/queue/x\n\nearly\x00")
        data = read_until_closed(sock)
    assert error_message(data) == "not connected"


def test_stomp10_client_round_trips(broker, unique):
    conn = stomp.Connection10([broker.address])
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect("old-timer", "unused", wait=False)
    try:
        assert listener.connected.wait(WAIT_S), "no CONNECTED for a 1.0 client"
        assert listener.connected_frame.headers.get("version", "1.0") == "1.0"
        dest = f"/queue/v10-{unique}"
        conn.subscribe(dest, id="s1", ack="client", receipt="r-sub")
        listener.wait_receipt("r-sub")
        conn.send(dest, "hello 1.0", receipt="r-send")
        listener.wait_receipt("r-send")
        message = listener.message()
        assert message.body == "hello 1.0"
        conn.ack(message.headers["message-id"], receipt="r-ack")  # 1.0 acks by message-id
        listener.wait_receipt("r-ack")
        assert listener.errors.empty()
    finally:
        conn.disconnect()
        listener.disconnected.wait(1.0)
        conn.transport.disconnect_socket()
