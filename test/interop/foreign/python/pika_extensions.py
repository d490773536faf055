"""RabbitMQ's queue extensions as pika sees them: TTL and dead-lettering with the x-death header,
length limits with publisher-confirm nacks, priority queues and single active consumer.

usage: pika_extensions.py PORT SCENARIO...
Each scenario prints `OK <scenario>` when every check held; otherwise it exits 1 with a FAIL line.
The same program runs against RabbitMQ (port 5672) to show the checks are RabbitMQ's behaviour.
"""

import datetime

import pika
import pika.exceptions

from common import check, check_equal, fail, main, unique, wait_until

TTL_MS = 100


def connect(port):
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            host="127.0.0.1",
            port=port,
            credentials=pika.PlainCredentials("guest", "guest"),
            connection_attempts=1,
            socket_timeout=10,
        )
    )


def ready(ch, queue):
    return ch.queue_declare(queue=queue, passive=True).method.message_count


def wait_ready(conn, ch, queue, n, what):
    wait_until(
        lambda: ready(ch, queue) == n,
        f"{n} ready in {what}",
        step=lambda: conn.process_data_events(time_limit=0.02),
    )


def dead_letter_setup(ch, prefix, **queue_args):
    """A fanout dead-letter exchange with a queue behind it, and a queue that dead-letters to it."""
    dlx, dlq, q = unique(f"{prefix}-dlx"), unique(f"{prefix}-dlq"), unique(prefix)
    ch.exchange_declare(exchange=dlx, exchange_type="fanout", auto_delete=True)
    ch.queue_declare(queue=dlq, auto_delete=True)
    ch.queue_bind(queue=dlq, exchange=dlx)
    ch.queue_declare(queue=q, arguments={"x-dead-letter-exchange": dlx, **queue_args})
    return q, dlq


def check_death(headers, queue, reason, what, count=1):
    deaths = headers.get("x-death")
    check(isinstance(deaths, list) and len(deaths) == 1, f"{what}: one x-death entry, got {deaths!r}")
    d = deaths[0]
    # pika decodes a long-long ('l', as RabbitMQ writes count) as its own int subclass.
    check(isinstance(d.get("count"), int), f"{what}: x-death count is an integer: {d.get('count')!r}")
    check_equal(int(d["count"]), count, f"{what}: x-death count")
    check_equal(d.get("reason"), reason, f"{what}: x-death reason")
    check_equal(d.get("queue"), queue, f"{what}: x-death queue")
    check_equal(d.get("exchange"), "", f"{what}: x-death exchange")
    check_equal(d.get("routing-keys"), [queue], f"{what}: x-death routing-keys")
    check(isinstance(d.get("time"), datetime.datetime), f"{what}: x-death time is a timestamp")
    check_equal(headers.get("x-first-death-reason"), reason, f"{what}: x-first-death-reason")
    check_equal(headers.get("x-first-death-queue"), queue, f"{what}: x-first-death-queue")
    check_equal(headers.get("x-first-death-exchange"), "", f"{what}: x-first-death-exchange")
    return d


def ttl_dead_letter(port):
    conn = connect(port)
    ch = conn.channel()
    q, dlq = dead_letter_setup(ch, "ttl", **{"x-message-ttl": TTL_MS})
    try:
        props = pika.BasicProperties(headers={"app": "kept"}, message_id="m-1")
        ch.basic_publish(exchange="", routing_key=q, body=b"expires", properties=props)
        # A per-message expiration below the queue's TTL wins; it is recorded, then removed.
        ch.basic_publish(
            exchange="",
            routing_key=q,
            body=b"expires sooner",
            properties=pika.BasicProperties(expiration="20"),
        )
        wait_ready(conn, ch, dlq, 2, "the dead-letter queue")
        check_equal(ready(ch, q), 0, "messages left in the TTL queue")
        got = {}
        for _ in range(2):
            method, p, body = ch.basic_get(queue=dlq, auto_ack=True)
            check(method is not None, "basic.get from the dead-letter queue")
            got[body] = (method, p)
        method, p = got[b"expires"]
        check_equal(p.headers.get("app"), "kept", "the message's own header")
        check_equal(p.message_id, "m-1", "message_id")
        check_equal(method.routing_key, q, "dead-lettered with the original routing key")
        check_death(p.headers, q, "expired", "queue TTL")
        method, p = got[b"expires sooner"]
        d = check_death(p.headers, q, "expired", "message TTL")
        check_equal(d.get("original-expiration"), "20", "x-death original-expiration")
        check_equal(p.expiration, None, "expiration property of the dead-lettered message")
    finally:
        ch.queue_delete(queue=q)
        conn.close()


def reject_dead_letter(port):
    conn = connect(port)
    ch = conn.channel()
    q, dlq = dead_letter_setup(ch, "reject")
    try:
        ch.basic_publish(exchange="", routing_key=q, body=b"unwanted")
        method, _p, _b = ch.basic_get(queue=q, auto_ack=False)
        check(method is not None, "basic.get of the message to reject")
        ch.basic_reject(delivery_tag=method.delivery_tag, requeue=False)
        wait_ready(conn, ch, dlq, 1, "the dead-letter queue")
        method, p, body = ch.basic_get(queue=dlq, auto_ack=True)
        check_equal(body, b"unwanted", "dead-lettered body")
        check_death(p.headers, q, "rejected", "reject")
    finally:
        ch.queue_delete(queue=q)
        conn.close()


def max_length(port):
    conn = connect(port)
    ch = conn.channel()
    ch.confirm_delivery()
    head = unique("drop-head")
    ch.queue_declare(queue=head, arguments={"x-max-length": 2})
    rejecting, dlq = dead_letter_setup(
        ch, "reject-dlx", **{"x-max-length": 1, "x-overflow": "reject-publish-dlx"}
    )
    try:
        for b in (b"1", b"2", b"3"):
            ch.basic_publish(exchange="", routing_key=head, body=b)
        kept = [ch.basic_get(queue=head, auto_ack=True)[2] for _ in range(2)]
        check_equal(kept, [b"2", b"3"], "drop-head keeps the newest")
        ch.basic_publish(exchange="", routing_key=rejecting, body=b"fits")
        try:
            ch.basic_publish(exchange="", routing_key=rejecting, body=b"does not fit")
            fail("a publish over x-max-length with reject-publish-dlx was confirmed")
        except pika.exceptions.NackError:
            pass  # basic.nack from the broker: what a refused publish gets
        check(ch.is_open, "the channel stays open after a nack")
        check_equal(ready(ch, rejecting), 1, "messages in the full queue")
        wait_ready(conn, ch, dlq, 1, "the dead-letter queue")
        _m, p, body = ch.basic_get(queue=dlq, auto_ack=True)
        check_equal(body, b"does not fit", "the rejected publish was dead-lettered")
        check_death(p.headers, rejecting, "maxlen", "reject-publish-dlx")
    finally:
        ch.queue_delete(queue=head)
        ch.queue_delete(queue=rejecting)
        conn.close()


def priorities(port):
    conn = connect(port)
    ch = conn.channel()
    q = unique("prio")
    ch.queue_declare(queue=q, arguments={"x-max-priority": 10})
    try:
        for body, prio in ((b"low", 1), (b"none", None), (b"high", 9), (b"mid", 5), (b"top", 200)):
            ch.basic_publish(
                exchange="", routing_key=q, body=body, properties=pika.BasicProperties(priority=prio)
            )
        order = [ch.basic_get(queue=q, auto_ack=True)[2] for _ in range(5)]
        # 200 is above x-max-priority: it counts as 10.
        check_equal(order, [b"top", b"high", b"mid", b"low", b"none"], "delivery order")
    finally:
        ch.queue_delete(queue=q)
        conn.close()


def single_active_consumer(port):
    conn = connect(port)
    ch_a, ch_b = conn.channel(), conn.channel()
    q = unique("sac")
    ch_a.queue_declare(queue=q, arguments={"x-single-active-consumer": True})
    got = {"a": [], "b": []}
    tag_a = ch_a.basic_consume(q, lambda _c, _m, _p, body: got["a"].append(body), auto_ack=True)
    ch_b.basic_consume(q, lambda _c, _m, _p, body: got["b"].append(body), auto_ack=True)
    try:
        for i in range(4):
            ch_a.basic_publish(exchange="", routing_key=q, body=f"m{i}".encode())
        wait_until(
            lambda: len(got["a"]) + len(got["b"]) == 4,
            "4 deliveries",
            step=lambda: conn.process_data_events(time_limit=0.02),
        )
        check_equal(got, {"a": [b"m0", b"m1", b"m2", b"m3"], "b": []}, "only the active consumer")
        ch_a.basic_cancel(tag_a)
        for i in range(4, 6):
            ch_a.basic_publish(exchange="", routing_key=q, body=f"m{i}".encode())
        wait_until(
            lambda: len(got["b"]) == 2,
            "deliveries to the next consumer",
            step=lambda: conn.process_data_events(time_limit=0.02),
        )
        check_equal(got["b"], [b"m4", b"m5"], "after fail-over")
    finally:
        ch_b.queue_delete(queue=q)
        conn.close()


if __name__ == "__main__":
    main(
        {
            "ttl_dead_letter": ttl_dead_letter,
            "reject_dead_letter": reject_dead_letter,
            "max_length": max_length,
            "priorities": priorities,
            "single_active_consumer": single_active_consumer,
        }
    )
