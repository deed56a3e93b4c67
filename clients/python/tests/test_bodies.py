"""Payloads: a 1 MiB body, binary bytes with NULs (content-length framing) and header values
that need STOMP escaping, all round-tripping unchanged."""

import time


def test_one_mebibyte_body_round_trips(connect, unique):
    dest = f"/queue/big-{unique}"
    consumer = connect("consumer")
    consumer.subscribe(dest, "s1")
    body = "".join(chr(ord("a") + i % 26) for i in range(1024 * 1024))
    started = time.monotonic()
    connect("producer").send(dest, body)
    message = consumer.listener.message(timeout=20)
    assert len(message.body) == len(body)
    assert message.body == body
    assert message.headers["content-length"] == str(len(body))
    assert time.monotonic() - started < 20


def test_binary_body_with_nul_bytes_round_trips(connect, unique):
    dest = f"/topic/binary-{unique}"
    consumer = connect("consumer", auto_decode=False)
    consumer.subscribe(dest, "s1")
    body = bytes(range(256)) * 4 + b"\x00\x00tail\x00"
    connect("producer").send(dest, body, content_type="application/octet-stream")
    message = consumer.listener.message()
    assert message.body == body
    assert message.headers["content-length"] == str(len(body))
    assert message.headers["content-type"] == "application/octet-stream"


def test_header_values_with_colons_and_newlines_round_trip(connect, unique):
    dest = f"/queue/escape-{unique}"
    consumer = connect("consumer")
    consumer.subscribe(dest, "s1")
    values = {
        "x-colon": "a:b:c",
        "x-newline": "line1\nline2",
        "x-backslash": "C:\\path\\file",
        "x-carriage": "before\rafter",
        "x-mixed": "k:v\n\\end",
    }
    connect("producer").send(dest, "escaped", headers=dict(values))
    message = consumer.listener.message()
    for name, value in values.items():
        assert message.headers[name] == value, name


def test_stomp11_header_escaping_round_trips(connect, unique):
    dest = f"/queue/escape11-{unique}"
    consumer = connect("consumer", version="1.1")
    consumer.subscribe(dest, "s1")
    values = {"x-colon": "a:b", "x-newline": "one\ntwo", "x-backslash": "back\\slash"}
    connect("producer", version="1.1").send(dest, "escaped", headers=dict(values))
    message = consumer.listener.message()
    for name, value in values.items():
        assert message.headers[name] == value, name


def test_utf8_body_and_headers_round_trip(connect, unique):
    dest = f"/topic/utf8-{unique}"
    consumer = connect("consumer")
    consumer.subscribe(dest, "s1")
    connect("producer").send(dest, "héllo wörld ✓ 日本", headers={"x-name": "Zoë ✓"})
    message = consumer.listener.message()
    assert message.body == "héllo wörld ✓ 日本"
    assert message.headers["x-name"] == "Zoë ✓"
