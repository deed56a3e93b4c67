"""ERROR frames reach stomp.py's on_error with the contract's `message`, then the broker closes."""


def test_send_to_unknown_destination_is_an_error(connect, unique):
    client = connect("alice")
    client.conn.send(f"/bogus/{unique}", "nowhere", receipt="r-bogus")
    error = client.listener.error()
    assert error.headers["message"] == "unknown destination"
    assert error.headers.get("receipt-id") == "r-bogus"
    assert error.headers.get("content-type", "").startswith("text/plain")
    assert "/queue/" in error.body and "/topic/" in error.body, error.body
    assert client.listener.disconnected.wait(5), "broker should close after ERROR"


def test_subscribe_to_unknown_destination_is_an_error(connect, unique):
    client = connect("alice")
    client.conn.subscribe(f"/nowhere/{unique}", "s1")
    assert client.listener.error().headers["message"] == "unknown destination"


def test_empty_destination_name_is_an_error(connect):
    client = connect("alice")
    client.conn.send("/queue/", "empty")
    # The contract forbids empty names but does not say which of these two it reports.
    assert client.listener.error().headers["message"] in {"unknown destination", "invalid header destination"}


def test_duplicate_subscription_id_is_an_error(connect, unique):
    client = connect("alice")
    client.subscribe(f"/topic/a-{unique}", "same")
    client.conn.subscribe(f"/topic/b-{unique}", "same")
    assert client.listener.error().headers["message"] == "duplicate subscription id"


def test_accepted_messages_survive_the_error(connect, unique):
    dest = f"/queue/before-error-{unique}"
    client = connect("alice")
    client.conn.send(dest, "accepted first")
    client.conn.send(f"/bogus/{unique}", "then rejected")
    client.listener.error()
    consumer = connect("bob")
    consumer.subscribe(dest, "s1")
    assert consumer.listener.message().body == "accepted first"
