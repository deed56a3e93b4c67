"""BEGIN/COMMIT/ABORT: transactional SENDs and ACKs take effect only on COMMIT, in order."""


def test_commit_releases_transactional_sends_in_order(connect, unique):
    dest = f"/queue/tx-commit-{unique}"
    consumer = connect("consumer")
    consumer.subscribe(dest, "s1")
    producer = connect("producer")
    tx = f"tx-{unique}"
    producer.conn.begin(tx)
    producer.conn.send(dest, "t1", transaction=tx)
    producer.conn.send(dest, "t2", transaction=tx)
    producer.send(dest, "outside")  # receipt: the broker has seen everything above
    assert consumer.listener.message().body == "outside"
    consumer.listener.no_message(0.3)
    producer.sync(producer.conn.commit, tx)
    assert [consumer.listener.message().body for _ in range(2)] == ["t1", "t2"]


def test_abort_discards_transactional_sends(connect, unique):
    dest = f"/queue/tx-abort-{unique}"
    consumer = connect("consumer")
    consumer.subscribe(dest, "s1")
    producer = connect("producer")
    tx = f"tx-{unique}"
    producer.conn.begin(tx)
    producer.conn.send(dest, "discarded", transaction=tx)
    producer.sync(producer.conn.abort, tx)
    producer.send(dest, "marker")
    assert consumer.listener.message().body == "marker"
    consumer.listener.no_message(0.3)


def test_aborted_ack_leaves_message_unacknowledged(connect, unique):
    dest = f"/queue/tx-ack-{unique}"
    first = connect("c1")
    first.subscribe(dest, "s1", ack="client-individual")
    connect("producer").send(dest, "keep me")
    message = first.listener.message()
    tx = f"tx-{unique}"
    first.conn.begin(tx)
    first.conn.ack(message.headers["ack"], transaction=tx)
    first.sync(first.conn.abort, tx)
    first.drop()

    second = connect("c2")
    second.subscribe(dest, "s1", ack="client-individual")
    again = second.listener.message()
    assert again.body == "keep me"
    assert again.headers["redelivered"] == "true"


def test_committed_ack_is_final(connect, unique):
    dest = f"/queue/tx-ack-commit-{unique}"
    first = connect("c1")
    first.subscribe(dest, "s1", ack="client-individual")
    producer = connect("producer")
    producer.send(dest, "done")
    message = first.listener.message()
    tx = f"tx-{unique}"
    first.conn.begin(tx)
    first.conn.ack(message.headers["ack"], transaction=tx)
    first.sync(first.conn.commit, tx)
    first.drop()

    second = connect("c2")
    second.subscribe(dest, "s1", ack="client-individual")
    producer.send(dest, "marker")
    assert second.listener.message().body == "marker"
    second.listener.no_message(0.3)


def test_commit_of_unknown_transaction_is_an_error(connect):
    client = connect("alice")
    client.conn.commit("never-begun", receipt="r-commit")
    error = client.listener.error()
    assert error.headers["message"] == "unknown transaction"


def test_duplicate_begin_is_an_error(connect, unique):
    client = connect("alice")
    tx = f"tx-{unique}"
    client.conn.begin(tx)
    client.conn.begin(tx)
    assert client.listener.error().headers["message"] == "duplicate transaction"
