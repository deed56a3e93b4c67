"""/user/queue: every subscribed session of a user receives messages sent to /user/<name>/queue,
under the subscribed destination; another user's /user destination is off limits."""


def test_user_queue_reaches_every_session_of_the_user(connect, unique):
    inbox = f"/user/queue/inbox-{unique}"
    sessions = [connect("alice"), connect("alice")]
    for i, s in enumerate(sessions):
        s.subscribe(inbox, f"s{i}")
    stranger = connect("carol")
    stranger.subscribe(inbox, "s1")  # carol's own inbox, not alice's

    connect("bob").send(f"/user/alice/queue/inbox-{unique}", "hi alice")
    for s in sessions:
        message = s.listener.message()
        assert message.body == "hi alice"
        assert message.headers["destination"] == inbox
    stranger.listener.no_message(0.3)


def test_user_queue_without_subscriber_is_dropped(connect, unique):
    connect("bob").send(f"/user/dave/queue/inbox-{unique}", "into the void")
    dave = connect("dave")
    dave.subscribe(f"/user/queue/inbox-{unique}", "s1")
    dave.listener.no_message(0.3)


def test_subscribing_to_another_users_destination_is_denied(connect, unique):
    mallory = connect("mallory")
    mallory.conn.subscribe(f"/user/alice/queue/inbox-{unique}", "s1", receipt="r-deny")
    error = mallory.listener.error()
    assert error.headers["message"] == "access denied"
