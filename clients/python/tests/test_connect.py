"""CONNECT/CONNECTED negotiation and DISCONNECT with a receipt, with stomp.py 1.2 and 1.1."""

import re
import uuid


def test_connected_frame_carries_contract_headers(connect):
    client = connect("alice")
    headers = client.listener.connected_frame.headers
    assert headers["version"] == "1.2"
    assert headers["user-name"] == "alice"
    assert re.fullmatch(r"stompbox/\S+", headers["server"]), headers
    assert headers["session"]
    assert re.fullmatch(r"\d+,\d+", headers["heart-beat"]), headers


def test_sessions_get_distinct_ids(connect):
    first = connect("alice").listener.connected_frame.headers["session"]
    second = connect("alice").listener.connected_frame.headers["session"]
    assert first != second


def test_disconnect_with_receipt_gets_receipt_then_close(connect):
    client = connect("alice")
    receipt = f"bye-{uuid.uuid4().hex[:8]}"
    client.conn.disconnect(receipt=receipt)  # Connection12 waits for the socket to close
    client.listener.wait_receipt(receipt)
    assert client.listener.disconnected.wait(5), "broker did not close after the DISCONNECT receipt"


def test_stomp11_connection_negotiates_1_1(connect, unique):
    client = connect("alice", version="1.1")
    assert client.listener.connected_frame.headers["version"] == "1.1"
    dest = f"/queue/v11-{unique}"
    client.subscribe(dest, "s1", ack="client")
    client.send(dest, "hello 1.1")
    message = client.listener.message()
    assert message.body == "hello 1.1"
    assert message.headers["subscription"] == "s1"
    # 1.1 acknowledges by message-id plus subscription.
    client.sync(client.conn.ack, message.headers["message-id"], "s1")
    assert client.listener.errors.empty()


def test_stomp11_disconnect_with_receipt(connect):
    client = connect("alice", version="1.1")
    receipt = f"bye-{uuid.uuid4().hex[:8]}"
    client.conn.disconnect(receipt=receipt)
    client.listener.wait_receipt(receipt)
