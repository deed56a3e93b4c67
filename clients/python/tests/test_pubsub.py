"""Routing: /topic fan-out (with wildcards), /queue competing consumers, /temp-queue replies, and
the headers a MESSAGE carries."""

import queue
import time
import uuid


def test_topic_delivers_to_every_subscriber(connect, unique):
    dest = f"/topic/fanout-{unique}"
    subscribers = [connect("sub1"), connect("sub2")]
    for i, sub in enumerate(subscribers):
        sub.subscribe(dest, f"s{i}")
    publisher = connect("pub")
    publisher.send(dest, "to everyone")
    for sub in subscribers:
        assert sub.listener.message().body == "to everyone"


def test_topic_keeps_nothing_for_absent_subscribers(connect, unique):
    dest = f"/topic/absent-{unique}"
    publisher = connect("pub")
    publisher.send(dest, "nobody listens")
    late = connect("late")
    late.subscribe(dest, "s1")
    late.listener.no_message(0.5)


def test_topic_wildcards_match_rabbitmq_style(connect, unique):
    one, many = connect("one"), connect("many")
    one.subscribe(f"/topic/chat-{unique}.*", "s1")
    many.subscribe(f"/topic/chat-{unique}.#", "s1")
    publisher = connect("pub")
    publisher.send(f"/topic/chat-{unique}.room1", "one segment")
    publisher.send(f"/topic/chat-{unique}.room1.thread", "two segments")
    assert one.listener.message().body == "one segment"
    one.listener.no_message(0.3)
    assert [many.listener.message().body for _ in range(2)] == ["one segment", "two segments"]


def test_message_headers_follow_the_contract(connect, unique):
    dest = f"/queue/headers-{unique}"
    consumer = connect("consumer")
    consumer.subscribe(dest, "sub-7", ack="client-individual")
    producer = connect("producer")
    txn = f"tx-{unique}"
    producer.conn.begin(txn)
    producer.conn.send(dest, "payload", content_type="text/plain", headers={"x-app": "kept"}, transaction=txn)
    producer.sync(producer.conn.commit, txn)
    message = consumer.listener.message()
    h = message.headers
    assert h["destination"] == dest
    assert h["subscription"] == "sub-7"
    assert h["message-id"]
    assert h["ack"]
    assert h["content-type"] == "text/plain"
    assert h["content-length"] == str(len(b"payload"))
    assert h["x-app"] == "kept"
    assert "transaction" not in h
    assert "receipt" not in h
    assert "redelivered" not in h


def test_repeated_headers_reach_stomp_py_with_the_first_as_the_value(connect, broker, unique):
    # stomp.py keeps the first of repeated headers, as STOMP 1.2 says; the broker forwards every
    # entry in order (issue 17), so the first must still lead. stomp.py cannot send a header
    # twice: the publisher is a raw socket.
    import socket

    dest = f"/topic/repeat-{unique}"
    subscriber = connect("sub")
    subscriber.subscribe(dest, "s1")
    with socket.create_connection(broker.address, timeout=5) as sock:
        sock.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:pub\n\n\x00")
        frame = f"SEND\ndestination:{dest}\nx-tag:first\nx-tag:second\nreceipt:r\n\nbody\x00"
        sock.sendall(frame.encode())
        received = b""
        while b"receipt-id:r" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"closed before the receipt: {received!r}"
            received += chunk
    message = subscriber.listener.message()
    assert message.body == "body"
    assert message.headers["x-tag"] == "first"


def test_message_ids_are_unique(connect, unique):
    dest = f"/topic/ids-{unique}"
    sub = connect("sub")
    sub.subscribe(dest, "s1")
    pub = connect("pub")
    for i in range(5):
        pub.conn.send(dest, str(i))
    ids = {sub.listener.message().headers["message-id"] for _ in range(5)}
    assert len(ids) == 5


def test_queue_holds_messages_until_a_consumer_subscribes(connect, unique):
    dest = f"/queue/held-{unique}"
    producer = connect("producer")
    producer.send(dest, "waiting")
    consumer = connect("consumer")
    consumer.subscribe(dest, "s1")
    assert consumer.listener.message().body == "waiting"


def test_queue_delivers_each_message_to_exactly_one_consumer(connect, unique):
    dest = f"/queue/compete-{unique}"
    consumers = [connect("c1"), connect("c2")]
    for c in consumers:
        c.subscribe(dest, "s1")
    producer = connect("producer")
    for i in range(10):
        producer.conn.send(dest, f"m{i}")
    producer.send(dest, "m10")  # receipt: everything before it was routed
    got = drain(consumers, total=11)
    bodies = sorted(got[0] + got[1], key=lambda b: int(b[1:]))
    assert bodies == [f"m{i}" for i in range(11)]
    assert got[0] and got[1], f"round-robin should use both consumers: {got}"


def drain(clients, total: int, timeout: float = 5.0) -> list[list[str]]:
    """Bodies received by each client until `total` arrived overall (bounded)."""
    got: list[list[str]] = [[] for _ in clients]
    deadline = time.monotonic() + timeout
    while sum(map(len, got)) < total:
        assert time.monotonic() < deadline, f"only {sum(map(len, got))} of {total} messages: {got}"
        for idx, c in enumerate(clients):
            try:
                got[idx].append(c.listener.messages.get(timeout=0.05).body)
            except queue.Empty:
                pass
    return got


def test_temp_queue_reply_comes_back_to_the_requester(connect, unique):
    service_dest = f"/queue/service-{unique}"
    service = connect("service")
    service.subscribe(service_dest, "svc")
    requester = connect("requester")
    requester.send(service_dest, "ping", headers={"reply-to": "/temp-queue/answers"})
    request = service.listener.message()
    reply_to = request.headers["reply-to"]
    assert reply_to.startswith("/reply-queue/"), request.headers
    service.send(reply_to, "pong")
    reply = requester.listener.message()
    assert reply.body == "pong"
    assert reply.headers["destination"] == "/temp-queue/answers"
    assert reply.headers["subscription"] == "/temp-queue/answers"


def test_unsubscribe_stops_delivery(connect, unique):
    dest = f"/topic/unsub-{unique}"
    sub = connect("sub")
    sub.subscribe(dest, "s1")
    sub.sync(sub.conn.unsubscribe, "s1")
    connect("pub").send(dest, f"after {uuid.uuid4()}")
    sub.listener.no_message(0.5)
