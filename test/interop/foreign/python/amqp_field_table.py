"""py-amqp (the library under Celery/kombu): every field-table type it can send and all 14 basic
properties survive a trip through the broker with the same values and the same types.

usage: amqp_field_table.py PORT field_table
Prints `OK field_table` when every check held; otherwise exits 1 listing every mismatch.

What py-amqp 5.x encodes, and so what this covers: bool ('t'), int as 32-bit 'I' or 64-bit 'L',
float as double 'd', Decimal 'D', str as long string 'S', bytes as 'S' too (read back as bytes
only when not valid UTF-8, so the bytes sent here are not), datetime as timestamp 'T', list/tuple
as array 'A', dict as table 'F', None as void 'V'. It never sends 'b', 'B', 'U', 'u', 'i', 'l',
'f', 's' or 'x' in tables. Infinity and NaN are left out: RabbitMQ cannot hold them (541).
"""

import math
import os
import socket
from datetime import datetime
from decimal import Decimal

import amqp

from common import check, check_equal, fail, main, unique

STAMP = datetime(2024, 2, 29, 23, 59, 58)

HEADERS = {
    "bool-true": True,
    "bool-false": False,
    "int-zero": 0,
    "int-one": 1,
    "int-minus-one": -1,
    "int32-max": 2147483647,
    "int32-min-plus-one": -2147483647,
    "int32-min": -2147483648,  # py-amqp sends this one as 'L'
    "int64-just-past-int32": 2147483648,
    "int64-max": 9223372036854775807,
    "int64-min": -9223372036854775808,
    "double": 3.141592653589793,
    "double-negative-huge": -1.5e300,
    "double-tiny": 5e-324,
    "double-negative-zero": -0.0,
    "decimal-pi": Decimal("3.14"),
    "decimal-negative": Decimal("-0.001"),
    "decimal-integer": Decimal("12345"),
    "string": "plain ascii",
    "string-empty": "",
    "string-unicode": "h\u00e9llo w\u00f6rld \u2713 \U0001f407",
    "string-long": "x" * 5000,
    "bytes-not-utf8": b"\x00\xff\xfe\x80binary\xc3",
    "timestamp": STAMP,
    "array": [1, "two", 3.5, True, None, [4, [5]], {"k": "v"}, Decimal("1.5"), STAMP, -2**40],
    "array-empty": [],
    "table": {"a": {"b": {"c": 1, "d": "deep"}}, "empty": {}, "list": ["x", 2]},
    "table-empty": {},
    "void": None,
    "key with spaces and \u00fcnicode": "ok",
}

PROPERTIES = {
    "content_type": "application/x-warren-test",
    "content_encoding": "identity",
    "application_headers": HEADERS,
    "delivery_mode": 2,
    "priority": 7,
    "correlation_id": "corr-\u00e9-42",
    "reply_to": "reply-queue",
    "expiration": "600000",
    "message_id": "msg-0001",
    "timestamp": 1_700_000_000,
    "type": "test.kind",
    "user_id": "guest",  # must be the authenticated user
    "app_id": "warren-interop",
    "cluster_id": "cluster-7",
}


def differences(sent, got, path):
    """Every place where `got` differs from `sent` in value or type (floats by bit pattern)."""
    if type(sent) is not type(got):
        return [f"{path}: sent {sent!r} ({type(sent).__name__}), got {got!r} ({type(got).__name__})"]
    if isinstance(sent, dict):
        out = []
        if list(sent) != list(got):
            out.append(f"{path}: keys sent {list(sent)!r}, got {list(got)!r}")
        for k in sent:
            if k in got:
                out += differences(sent[k], got[k], f"{path}[{k!r}]")
        return out
    if isinstance(sent, (list, tuple)):
        if len(sent) != len(got):
            return [f"{path}: sent {len(sent)} items, got {len(got)}: {got!r}"]
        out = []
        for i, (s, g) in enumerate(zip(sent, got)):
            out += differences(s, g, f"{path}[{i}]")
        return out
    if isinstance(sent, float):
        same = (math.isnan(sent) and math.isnan(got)) or (
            sent == got and math.copysign(1, sent) == math.copysign(1, got)
        )
        return [] if same else [f"{path}: sent {sent!r}, got {got!r}"]
    if isinstance(sent, Decimal):
        return [] if sent.as_tuple() == got.as_tuple() else [f"{path}: sent {sent!r}, got {got!r}"]
    return [] if sent == got else [f"{path}: sent {sent!r}, got {got!r}"]


def check_message(msg, body, queue, how):
    problems = differences(PROPERTIES, dict(msg.properties), f"{how} properties")
    problems += differences(body, bytes(msg.body), f"{how} body")
    info = msg.delivery_info
    if info.get("exchange") != "" or info.get("routing_key") != queue:
        problems.append(f"{how}: delivered from {info!r}, expected exchange '' key {queue!r}")
    # The broker must relay the header as sent: re-encoding what arrived gives the same bytes.
    sent_wire = amqp.Message(body, **PROPERTIES)._serialize_properties()
    got_wire = amqp.Message(body, **msg.properties)._serialize_properties()
    if sent_wire != got_wire:
        problems.append(f"{how}: property bytes differ:\n  sent {sent_wire.hex()}\n  got  {got_wire.hex()}")
    if problems:
        fail("\n".join(problems))


def field_table(port):
    conn = amqp.Connection(host=f"127.0.0.1:{port}", userid="guest", password="guest",
                           virtual_host="/", connect_timeout=10)
    conn.connect()
    ch = conn.channel()
    queue = unique("fields")
    ch.queue_declare(queue=queue, durable=False, exclusive=True, auto_delete=False)
    ch.confirm_select()

    small = bytes(range(256))
    big = os.urandom(300_000)  # larger than frame_max: split over several body frames
    for body in (small, big, small):
        ch.basic_publish(amqp.Message(body, **PROPERTIES), exchange="", routing_key=queue)

    # basic.get
    got = ch.basic_get(queue=queue, no_ack=False)
    check(got is not None, "basic.get returned nothing")
    check_message(got, small, queue, "basic.get")
    check_equal(got.delivery_info.get("message_count"), 2, "get-ok message_count")
    ch.basic_ack(got.delivery_tag)

    # basic.consume
    received = []
    tag = ch.basic_consume(queue=queue, callback=received.append, no_ack=False)
    for _ in range(200):
        if len(received) == 2:
            break
        try:
            conn.drain_events(timeout=10)
        except socket.timeout:
            fail(f"timed out waiting for deliveries; got {len(received)} of 2")
    check_equal(len(received), 2, "deliveries to the consumer")
    check_message(received[0], big, queue, "basic.deliver (300 kB body)")
    check_message(received[1], small, queue, "basic.deliver")
    for m in received:
        ch.basic_ack(m.delivery_tag)
    ch.basic_cancel(tag)
    declared = ch.queue_declare(queue=queue, passive=True)
    check_equal(declared.message_count, 0, "ready messages after acks")
    ch.queue_delete(queue=queue)
    conn.close()


if __name__ == "__main__":
    main({"field_table": field_table})
