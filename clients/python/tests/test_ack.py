"""Acknowledgement modes on /queue: auto, client (cumulative), client-individual, NACK, and
redelivery of what a session left unacknowledged."""


def test_auto_ack_messages_are_not_redelivered(connect, unique):
    dest = f"/queue/auto-{unique}"
    first = connect("c1")
    first.subscribe(dest, "s1", ack="auto")
    producer = connect("producer")
    producer.send(dest, "once")
    assert first.listener.message().body == "once"
    first.drop()

    second = connect("c2")
    second.subscribe(dest, "s1", ack="auto")
    producer.send(dest, "marker")
    assert second.listener.message().body == "marker"
    second.listener.no_message(0.3)


def test_client_individual_unacked_is_redelivered_after_disconnect(connect, unique):
    dest = f"/queue/ci-redeliver-{unique}"
    first = connect("c1")
    first.subscribe(dest, "s1", ack="client-individual")
    producer = connect("producer")
    producer.send(dest, "m1")
    producer.send(dest, "m2")
    m1, m2 = first.listener.message(), first.listener.message()
    assert (m1.body, m2.body) == ("m1", "m2")
    first.sync(first.conn.ack, m2.headers["ack"])  # individual: m1 stays pending
    first.conn.disconnect()  # graceful DISCONNECT still requeues what was not acknowledged
    assert first.listener.disconnected.wait(5)

    second = connect("c2")
    second.subscribe(dest, "s1", ack="client-individual")
    again = second.listener.message()
    assert again.body == "m1"
    assert again.headers["redelivered"] == "true"
    assert again.headers["message-id"] == m1.headers["message-id"]
    second.listener.no_message(0.3)


def test_client_individual_unacked_is_redelivered_after_connection_drop(connect, unique):
    dest = f"/queue/ci-drop-{unique}"
    first = connect("c1")
    first.subscribe(dest, "s1", ack="client-individual")
    connect("producer").send(dest, "lost?")
    original = first.listener.message()
    first.drop()

    second = connect("c2")
    second.subscribe(dest, "s1", ack="client-individual")
    again = second.listener.message()
    assert again.body == "lost?"
    assert again.headers["redelivered"] == "true"
    assert again.headers["message-id"] == original.headers["message-id"]
    second.sync(second.conn.ack, again.headers["ack"])


def test_client_ack_is_cumulative(connect, unique):
    dest = f"/queue/cumulative-{unique}"
    first = connect("c1")
    first.subscribe(dest, "s1", ack="client")
    producer = connect("producer")
    for body in ("a", "b", "c"):
        producer.send(dest, body)
    a, b, c = (first.listener.message() for _ in range(3))
    assert [a.body, b.body, c.body] == ["a", "b", "c"]
    first.sync(first.conn.ack, b.headers["ack"])  # acknowledges a and b, not c
    first.drop()

    second = connect("c2")
    second.subscribe(dest, "s1", ack="client")
    again = second.listener.message()
    assert again.body == "c"
    assert again.headers["redelivered"] == "true"
    second.listener.no_message(0.3)


def test_nack_requeues_with_redelivered_header(connect, unique):
    dest = f"/queue/nack-{unique}"
    consumer = connect("c1")
    consumer.subscribe(dest, "s1", ack="client-individual")
    connect("producer").send(dest, "try again")
    first = consumer.listener.message()
    assert "redelivered" not in first.headers
    consumer.sync(consumer.conn.nack, first.headers["ack"])
    again = consumer.listener.message()
    assert again.body == "try again"
    assert again.headers["redelivered"] == "true"
    assert again.headers["message-id"] == first.headers["message-id"]
    consumer.sync(consumer.conn.ack, again.headers["ack"])
    consumer.listener.no_message(0.3)


def test_ack_of_unknown_id_is_an_error(connect, unique):
    consumer = connect("c1")
    consumer.subscribe(f"/queue/unknown-ack-{unique}", "s1", ack="client-individual")
    consumer.conn.ack("no-such-ack-id", receipt="r-bad-ack")
    error = consumer.listener.error()
    assert error.headers["message"] == "unknown ack id"
    assert error.headers.get("receipt-id") == "r-bad-ack"


def test_prefetch_count_limits_unacknowledged_deliveries(connect, unique):
    dest = f"/queue/prefetch-{unique}"
    consumer = connect("c1")
    consumer.subscribe(dest, "s1", ack="client-individual", headers={"prefetch-count": "1"})
    producer = connect("producer")
    producer.send(dest, "p1")
    producer.send(dest, "p2")
    p1 = consumer.listener.message()
    assert p1.body == "p1"
    consumer.listener.no_message(0.4)  # window full until p1 is acknowledged
    consumer.sync(consumer.conn.ack, p1.headers["ack"])
    assert consumer.listener.message().body == "p2"
