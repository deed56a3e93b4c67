"""Chat presence over stomp.py: several devices fold into one status (first join / last leave),
contacts hear of changes on /user/queue/presence, presence.query answers the asking session,
and a session that dies silently goes offline when its TTL lapses (real time, short TTL)."""

import socket
import time

import pytest

from conftest import WAIT_S, start_broker

# The short TTL of the expiry tests; the sweeper looks every TTL/6.
TTL_S = 2.0
# How late past the TTL the offline event may come on a loaded machine (sweep period + delivery).
LATE_S = 1.5


def contacts(chat, unique, target=None):
    """bob watches presence; alice (one session, left open) shares a conversation with him.
    bob connects after the conversation exists, so alice's own "online" (announced when she
    connected, to whoever is her contact by the time it is applied) is never in his inbox."""
    alice = chat(f"alice-{unique}", target=target)
    alice.create("DIRECT", [f"bob-{unique}"])
    bob = chat(f"bob-{unique}", target=target)
    return alice, bob


def query(session, *users):
    session.call("presence.query", {"userIds": list(users)})
    return {e["userId"]: e for e in session.events("presence", len(users))}


def test_two_devices_fold_into_one_status(chat, unique):
    alice, bob = contacts(chat, unique)
    alice_phone = chat(alice.login)
    bob.none("presence", 0.3)  # already online: no second "online"

    status = query(bob, alice.login, f"nobody-{unique}")
    assert status[alice.login]["status"] == "online"
    assert status[alice.login]["lastSeen"]
    assert status[f"nobody-{unique}"] == {"userId": f"nobody-{unique}", "status": "offline", "lastSeen": None}

    alice_phone.close()  # one device leaves: still online
    bob.none("presence", 0.5)
    assert query(bob, alice.login)[alice.login]["status"] == "online"

    alice.close()  # the last one leaves: offline at once
    event = bob.event("presence", 2.0)
    assert (event["userId"], event["status"]) == (alice.login, "offline")
    assert event["lastSeen"]
    assert query(bob, alice.login)[alice.login]["status"] == "offline"

    chat(alice.login, queues=())  # first join again
    event = bob.event("presence")
    assert (event["userId"], event["status"]) == (alice.login, "online")


def test_presence_query_answers_only_the_asking_session(chat, unique):
    alice, bob = contacts(chat, unique)
    bob_phone = chat(bob.login)
    query(bob, alice.login)
    bob_phone.none("presence", 0.3)


def test_strangers_hear_nothing(chat, unique):
    alice, bob = contacts(chat, unique)
    stranger = chat(f"stranger-{unique}")
    alice.close()
    assert bob.event("presence")["status"] == "offline"
    stranger.none("presence", 0.3)


def test_presence_query_hides_strangers(chat, unique):
    """presence.query answers for the asker's contacts (and the asker); anyone else reads as a
    user never seen, online or not, as presence events go to contacts only."""
    alice, bob = contacts(chat, unique)
    carol = chat(f"carol-{unique}")  # online, shares no conversation with bob
    status = query(bob, alice.login, carol.login, bob.login)
    assert status[alice.login]["status"] == "online"
    assert status[bob.login]["status"] == "online"
    assert status[carol.login] == {"userId": carol.login, "status": "offline", "lastSeen": None}


def test_socket_closed_without_disconnect_goes_offline_at_once(chat, unique):
    alice, bob = contacts(chat, unique)
    started = time.monotonic()
    alice.client.drop()  # TCP close, no DISCONNECT: the broker sees EOF
    event = bob.event("presence", 2.0)
    assert (event["userId"], event["status"]) == (alice.login, "offline")
    assert time.monotonic() - started < 2.0, "a closed socket should not wait for the 30 s TTL"


# --- real-time TTL expiry on a broker with a short TTL ---


@pytest.fixture(scope="module")
def ttl_broker(tmp_path_factory):
    # The broker asks nothing of silent clients (a client offering heart-beat 0,0 is never timed
    # out), so only the presence TTL can notice them; a client offering 500 ms beats sends them.
    b = start_broker(
        tmp_path_factory.mktemp("ttl-broker"),
        "--presence-ttl", f"{int(TTL_S * 1000)}ms", "--heartbeat", "0,500", "--heartbeat-grace", "4",
    )
    yield b
    b.stop()


class SilentSession:
    """A raw TCP STOMP session that CONNECTs with heart-beat 0,0 and then says nothing while its
    socket stays open: a client that froze or lost its network without a FIN."""

    def __init__(self, broker, login):
        self.sock = socket.create_connection(broker.address, timeout=WAIT_S)
        self.sock.sendall(
            f"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:{login}\npasscode:x\nheart-beat:0,0\n\n\0".encode()
        )
        data = b""
        while b"\0" not in data:
            chunk = self.sock.recv(4096)
            assert chunk, "broker closed the silent session before CONNECTED"
            data += chunk
        assert data.startswith(b"CONNECTED\n"), data

    def beat(self):
        self.sock.sendall(b"\n")

    def close(self):
        self.sock.close()


@pytest.fixture
def silent(ttl_broker):
    opened = []

    def make(login):
        s = SilentSession(ttl_broker, login)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def test_silent_session_goes_offline_when_its_ttl_lapses(chat, silent, ttl_broker, unique):
    alice, bob = contacts(chat, unique, target=ttl_broker)
    alice.close()
    assert bob.event("presence")["status"] == "offline"

    connected = time.monotonic()
    frozen = silent(alice.login)
    assert bob.event("presence")["status"] == "online"

    event = bob.event("presence", TTL_S + LATE_S + 1)
    elapsed = time.monotonic() - connected
    assert (event["userId"], event["status"]) == (alice.login, "offline")
    assert TTL_S - 0.3 <= elapsed <= TTL_S + LATE_S, f"offline after {elapsed:.2f}s with a {TTL_S}s TTL"
    assert query(bob, alice.login)[alice.login]["status"] == "offline"

    frozen.beat()  # its socket was open all along: the next sign of life brings her back
    assert bob.event("presence")["status"] == "online"
    frozen.close()
    assert bob.event("presence")["status"] == "offline"
    bob.none("presence", 0.5)  # exactly one offline per leave


def test_heart_beats_keep_a_device_present_while_a_silent_one_lapses(chat, silent, ttl_broker, unique):
    alice, bob = contacts(chat, unique, target=ttl_broker)
    alice.close()
    assert bob.event("presence")["status"] == "offline"

    beating = chat(alice.login, target=ttl_broker, queues=(), heartbeats=(500, 0))
    assert bob.event("presence")["status"] == "online"
    silent(alice.login)  # a second device that then freezes
    bob.none("presence", TTL_S + LATE_S)  # the frozen one lapsed; the beating one holds her online
    assert query(bob, alice.login)[alice.login]["status"] == "online"

    beating.close()
    event = bob.event("presence", 2.0)
    assert (event["userId"], event["status"]) == (alice.login, "offline")


def test_users_named_like_the_presence_index_keys_are_users_like_any_other(chat, unique):
    """`due` and `seen` are also the names of the cluster's presence index keys in Redis
    (`sbx:p:due`, `sbx:p:seen`): a user called so must still go offline when gone (the key of a
    user's sessions is `sbx:p:u:<user>` so that it cannot be the index). Fails on a cluster
    whose user keys were `sbx:p:<user>`: `due` stayed online after leaving."""
    watcher = chat(f"watcher-{unique}")
    for name in ("due", "seen"):
        watcher.create("DIRECT", [name])
    due, seen = chat("due"), chat("seen")
    came = {e["userId"]: e["status"] for e in watcher.events("presence", 2)}
    assert came == {"due": "online", "seen": "online"}
    assert {u: e["status"] for u, e in query(watcher, "due", "seen").items()} == came

    due.close()
    event = watcher.event("presence", WAIT_S)
    assert (event["userId"], event["status"]) == ("due", "offline")
    assert {u: e["status"] for u, e in query(watcher, "due", "seen").items()} == {"due": "offline", "seen": "online"}
    seen.close()
