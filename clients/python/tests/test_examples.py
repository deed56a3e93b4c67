"""The Rust examples (`examples/src/bin/`) against a live broker: the publisher's messages reach
the subscriber, which ACKs each one, and Ctrl-C stops it cleanly."""

import os
import queue
import signal
import subprocess
import threading

import pytest

from conftest import broker_binary

TIMEOUT_S = 15


def example_binary(name: str):
    path = broker_binary().parent / name
    if not path.exists():
        pytest.skip(f"{path} not built; `cargo build -p examples` (scripts/test.sh does)")
    return path


def test_publisher_reaches_subscriber_which_acks_everything(broker, connect, unique):
    dest = f"/queue/example-{unique}"
    env = {**os.environ, "STOMP_ADDR": f"{broker.host}:{broker.port}"}
    subscriber = subprocess.Popen(
        [example_binary("subscriber"), dest],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in subscriber.stdout], daemon=True).start()

    def expect(fragment: str) -> None:
        seen = []
        while True:
            try:
                line = lines.get(timeout=TIMEOUT_S)
            except queue.Empty:
                raise AssertionError(f"subscriber never printed {fragment!r}; saw {seen}") from None
            seen.append(line)
            if fragment in line:
                return

    try:
        expect(f"subscribed to {dest}")
        published = subprocess.run(
            [example_binary("publisher"), dest, "5"], env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
        assert published.returncode == 0, published.stderr
        assert f"published 5 messages to {dest}" in published.stdout
        expect("message 5 of 5")
    finally:
        subscriber.send_signal(signal.SIGINT)
        try:
            subscriber.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            subscriber.kill()
            subscriber.wait()
    assert subscriber.returncode == 0

    # Every message was ACKed: nothing is left to redeliver on the queue.
    consumer = connect("checker")
    consumer.subscribe(dest, "s1", ack="client-individual")
    consumer.listener.no_message(0.5)
