"""Error paths, returns, confirms, transactions, broker-side consumer cancel and heartbeats as
pika sees them, each checked against RabbitMQ's reply codes and the start of its reply texts.

usage: pika_errors.py PORT SCENARIO...
Each scenario prints `OK <scenario>` when every check held; otherwise it exits 1 with a FAIL line.
"""

import re

import pika
import pika.exceptions

from common import check, check_equal, fail, main, unique, wait_until


def params(port, username="guest", password="guest", vhost="/"):
    return pika.ConnectionParameters(
        host="127.0.0.1",
        port=port,
        virtual_host=vhost,
        credentials=pika.PlainCredentials(username, password),
        connection_attempts=1,
        socket_timeout=10,
    )


def connect(port):
    return pika.BlockingConnection(params(port))


def expect_channel_close(action, code, text_prefix, what):
    """Run `action`, which must make the broker close the channel with `code`."""
    try:
        action()
    except pika.exceptions.ChannelClosedByBroker as e:
        check_equal(e.reply_code, code, f"{what}: reply code")
        check(
            e.reply_text.startswith(text_prefix),
            f"{what}: reply text {e.reply_text!r} should start with {text_prefix!r}",
        )
        return e.reply_text
    fail(f"{what}: expected channel.close {code}, but the call succeeded")


def still_works(conn, what):
    """The connection still serves a fresh channel: declare, publish, get."""
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.basic_publish(exchange="", routing_key=q, body=b"still here")
    method, _props, body = ch.basic_get(queue=q, auto_ack=True)
    check(method is not None, f"{what}: basic.get found nothing on a new channel")
    check_equal(body, b"still here", f"{what}: body on a new channel")
    ch.close()


# --------------------------------------------------------------------- channel errors


def not_found(port):
    conn = connect(port)
    ch = conn.channel()
    missing = unique("missing")
    text = expect_channel_close(
        lambda: ch.queue_declare(queue=missing, passive=True),
        404,
        "NOT_FOUND - no queue",
        "passive declare of a missing queue",
    )
    check(f"'{missing}'" in text, f"404 text {text!r} should name the queue")
    check(ch.is_closed, "the channel should be closed after the 404")
    ch2 = conn.channel()
    expect_channel_close(
        lambda: ch2.exchange_declare(exchange=unique("missing-ex"), passive=True),
        404,
        "NOT_FOUND - no exchange",
        "passive declare of a missing exchange",
    )
    ch3 = conn.channel()
    expect_channel_close(
        lambda: ch3.basic_publish(exchange=unique("missing-ex"), routing_key="k", body=b"x")
        or ch3.queue_declare(queue="", exclusive=True),
        404,
        "NOT_FOUND - no exchange",
        "publish to a missing exchange",
    )
    still_works(conn, "after 404s")
    conn.close()


def precondition_failed(port):
    conn = connect(port)
    q = unique("durable-q")
    ch = conn.channel()
    ch.queue_declare(queue=q, durable=True, auto_delete=True)
    text = expect_channel_close(
        lambda: ch.queue_declare(queue=q, durable=False, auto_delete=True),
        406,
        "PRECONDITION_FAILED - inequivalent arg 'durable'",
        "redeclare with a different durable flag",
    )
    check(f"'{q}'" in text, f"406 text {text!r} should name the queue")
    ch2 = conn.channel()
    ex = unique("ex")
    ch2.exchange_declare(exchange=ex, exchange_type="direct", auto_delete=True)
    ch2.queue_bind(queue=q, exchange=ex, routing_key="k")
    expect_channel_close(
        lambda: ch2.exchange_declare(exchange=ex, exchange_type="fanout", auto_delete=True),
        406,
        "PRECONDITION_FAILED - inequivalent arg 'type'",
        "redeclare an exchange with a different type",
    )
    ch3 = conn.channel()
    ch3.confirm_delivery()
    ch3.basic_publish(exchange="", routing_key=q, body=b"one")
    method, _p, _b = ch3.basic_get(queue=q, auto_ack=False)
    check(method is not None, "basic.get of the message just published")
    expect_channel_close(
        lambda: ch3.basic_ack(delivery_tag=method.delivery_tag + 100)
        or ch3.queue_declare(queue=q, passive=True),
        406,
        "PRECONDITION_FAILED - unknown delivery tag",
        "ack of an unknown delivery tag",
    )
    # The channel that held the message is gone: the message is ready again.
    ch4 = conn.channel()
    check_equal(ch4.queue_declare(queue=q, passive=True).method.message_count, 1, "requeued")
    ch4.queue_delete(queue=q)
    ch4.exchange_delete(exchange=ex)
    conn.close()


def resource_locked(port):
    owner = connect(port)
    och = owner.channel()
    q = och.queue_declare(queue=unique("exclusive"), exclusive=True).method.queue
    other = connect(port)
    for what, action in (
        ("passive declare", lambda ch: ch.queue_declare(queue=q, passive=True)),
        ("declare", lambda ch: ch.queue_declare(queue=q, exclusive=True)),
        ("consume", lambda ch: ch.basic_consume(queue=q, on_message_callback=lambda *a: None)),
        ("get", lambda ch: ch.basic_get(queue=q)),
        ("bind", lambda ch: ch.queue_bind(queue=q, exchange="amq.direct", routing_key="k")),
        ("purge", lambda ch: ch.queue_purge(queue=q)),
        ("delete", lambda ch: ch.queue_delete(queue=q)),
    ):
        ch = other.channel()
        expect_channel_close(
            lambda: action(ch),
            405,
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue",
            f"{what} of an exclusive queue from another connection",
        )
    # The owner is unaffected, on any of its channels.
    och2 = owner.channel()
    check_equal(och2.queue_declare(queue=q, passive=True).method.queue, q, "owner's 2nd channel")
    och.basic_publish(exchange="", routing_key=q, body=b"mine")
    method, _p, body = och.basic_get(queue=q, auto_ack=True)
    check(method is not None and body == b"mine", "owner's get from its exclusive queue")
    still_works(other, "after 405s")
    other.close()
    owner.close()


def access_refused(port):
    conn = connect(port)
    ch = conn.channel()
    expect_channel_close(
        lambda: ch.queue_declare(queue="amq.foo"),
        403,
        "ACCESS_REFUSED",
        "declare of queue 'amq.foo'",
    )
    ch2 = conn.channel()
    expect_channel_close(
        lambda: ch2.exchange_declare(exchange="amq.foo", exchange_type="direct"),
        403,
        "ACCESS_REFUSED",
        "declare of exchange 'amq.foo'",
    )
    ch3 = conn.channel()
    expect_channel_close(
        lambda: ch3.exchange_delete(exchange="amq.direct"),
        403,
        "ACCESS_REFUSED",
        "delete of exchange 'amq.direct'",
    )
    # Redeclaring a built-in exchange with its own properties is allowed.
    ch4 = conn.channel()
    ch4.exchange_declare(exchange="amq.topic", exchange_type="topic", durable=True)
    ch4.exchange_declare(exchange="amq.direct", passive=True)
    still_works(conn, "after 403s")
    conn.close()


def channel_error_isolation(port):
    conn = connect(port)
    q = unique("survivor")
    busy = conn.channel()
    busy.queue_declare(queue=q, auto_delete=False)
    busy.basic_qos(prefetch_count=10)
    got = []
    busy.basic_consume(
        queue=q, on_message_callback=lambda _c, m, _p, body: got.append(body), auto_ack=True
    )
    doomed = conn.channel()
    expect_channel_close(
        lambda: doomed.queue_declare(queue=unique("nope"), passive=True),
        404,
        "NOT_FOUND",
        "error on one channel",
    )
    check(doomed.is_closed, "the failed channel is closed")
    check(busy.is_open, "another channel stays open")
    check(conn.is_open, "the connection stays open")
    # The consumer on the other channel still receives.
    pub = conn.channel()
    for i in range(5):
        pub.basic_publish(exchange="", routing_key=q, body=f"m{i}".encode())
    wait_until(
        lambda: len(got) == 5,
        "deliveries to the surviving channel",
        step=lambda: conn.process_data_events(time_limit=0.02),
    )
    check_equal(got, [f"m{i}".encode() for i in range(5)], "bodies on the surviving channel")
    # Several failures in a row, then the connection is still usable.
    for i in range(3):
        bad = conn.channel()
        expect_channel_close(
            lambda: bad.queue_declare(queue=unique("nope"), passive=True),
            404,
            "NOT_FOUND",
            f"repeated channel error {i}",
        )
    still_works(conn, "after several channel errors")
    pub.queue_delete(queue=q)
    conn.close()


# --------------------------------------------------------------------- returns, confirms, tx


def mandatory_return(port):
    conn = connect(port)
    ch = conn.channel()
    ex = unique("returns")
    ch.exchange_declare(exchange=ex, exchange_type="direct", auto_delete=True)
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(queue=q, exchange=ex, routing_key="routed")
    ch.confirm_delivery()
    props = pika.BasicProperties(content_type="text/plain", headers={"n": 1})
    # pika raises UnroutableError only when basic.return arrives before the publish's basic.ack.
    try:
        ch.basic_publish(exchange=ex, routing_key="nowhere", body=b"lost", properties=props, mandatory=True)
        fail("mandatory publish to an unroutable key was confirmed without a basic.return first")
    except pika.exceptions.UnroutableError as e:
        check_equal(len(e.messages), 1, "returned messages")
        returned = e.messages[0]
        check_equal(returned.method.reply_code, 312, "basic.return reply code")
        check_equal(returned.method.reply_text, "NO_ROUTE", "basic.return reply text")
        check_equal(returned.method.exchange, ex, "basic.return exchange")
        check_equal(returned.method.routing_key, "nowhere", "basic.return routing key")
        check_equal(returned.body, b"lost", "returned body")
        check_equal(returned.properties.content_type, "text/plain", "returned content type")
        check_equal(returned.properties.headers, {"n": 1}, "returned headers")
    # A routable mandatory publish is confirmed and not returned.
    ch.basic_publish(exchange=ex, routing_key="routed", body=b"kept", mandatory=True)
    # Without mandatory, an unroutable publish is simply confirmed (and dropped).
    ch.basic_publish(exchange=ex, routing_key="nowhere", body=b"dropped")
    method, _p, body = ch.basic_get(queue=q, auto_ack=True)
    check(method is not None and body == b"kept", "the routable mandatory message arrived")
    check_equal(ch.queue_declare(queue=q, passive=True).method.message_count, 0, "queue after get")
    # Outside confirm mode, the return goes to the on_return callback.
    ch2 = conn.channel()
    returns = []
    ch2.add_on_return_callback(lambda _c, m, p, body: returns.append((m.reply_code, body)))
    ch2.basic_publish(exchange=ex, routing_key="nowhere", body=b"again", mandatory=True)
    wait_until(
        lambda: returns,
        "basic.return outside confirm mode",
        step=lambda: conn.process_data_events(time_limit=0.02),
    )
    check_equal(returns, [(312, b"again")], "returns outside confirm mode")
    conn.close()


def publisher_confirms(port):
    conn = connect(port)
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.confirm_delivery()
    for i in range(50):
        # basic_publish blocks until the broker acks; a nack or close would raise.
        ch.basic_publish(
            exchange="",
            routing_key=q,
            body=f"c{i}".encode(),
            properties=pika.BasicProperties(delivery_mode=2),
        )
    check_equal(ch.queue_declare(queue=q, passive=True).method.message_count, 50, "confirmed")
    # Confirms on an unroutable, non-mandatory publish too.
    ch.basic_publish(exchange="amq.direct", routing_key=unique("nobody"), body=b"x")
    # A confirm-mode channel cannot switch to tx.
    expect_channel_close(
        lambda: ch.tx_select(),
        406,
        "PRECONDITION_FAILED",
        "tx.select on a confirm channel",
    )
    still_works(conn, "after confirms")
    conn.close()


def transactions(port):
    conn = connect(port)
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    observer = conn.channel()

    def ready():
        return observer.queue_declare(queue=q, passive=True).method.message_count

    ch.tx_select()
    ch.basic_publish(exchange="", routing_key=q, body=b"rolled back 1")
    ch.basic_publish(exchange="", routing_key=q, body=b"rolled back 2")
    check_equal(ready(), 0, "ready messages before commit")
    ch.tx_rollback()
    check_equal(ready(), 0, "ready messages after rollback")
    ch.basic_publish(exchange="", routing_key=q, body=b"committed 1")
    ch.basic_publish(exchange="", routing_key=q, body=b"committed 2")
    ch.tx_commit()
    check_equal(ready(), 2, "ready messages after commit")

    # Acks are transactional too: a rolled-back ack leaves the message unacked.
    method, _p, body = ch.basic_get(queue=q, auto_ack=False)
    check_equal(body, b"committed 1", "first committed message")
    ch.basic_ack(delivery_tag=method.delivery_tag)
    ch.tx_rollback()
    check_equal(ready(), 1, "ready messages after a rolled-back ack")
    ch.basic_ack(delivery_tag=method.delivery_tag)
    ch.tx_commit()
    method2, _p, body2 = ch.basic_get(queue=q, auto_ack=False)
    check_equal(body2, b"committed 2", "second committed message")
    ch.basic_ack(delivery_tag=method2.delivery_tag)
    ch.tx_commit()
    # Closing the channel requeues unacked messages; both acks were committed, so none come back.
    ch.close()
    check_equal(ready(), 0, "ready messages after closing the tx channel")

    # A rolled-back ack followed by channel close: the message comes back, redelivered.
    ch2 = conn.channel()
    ch2.tx_select()
    ch2.basic_publish(exchange="", routing_key=q, body=b"third")
    ch2.tx_commit()
    method3, _p, _b = ch2.basic_get(queue=q, auto_ack=False)
    ch2.basic_ack(delivery_tag=method3.delivery_tag)
    ch2.tx_rollback()
    ch2.close()
    check_equal(ready(), 1, "message whose ack was rolled back, after its channel closed")
    again, _p, body = observer.basic_get(queue=q, auto_ack=True)
    check_equal(body, b"third", "redelivered body")
    check_equal(again.redelivered, True, "redelivered flag")
    # tx.commit on a channel that never did tx.select: 406.
    ch3 = conn.channel()
    expect_channel_close(
        lambda: ch3.tx_commit(), 406, "PRECONDITION_FAILED", "tx.commit without tx.select"
    )
    conn.close()


def consumer_cancel_notify(port):
    conn = connect(port)
    ch = conn.channel()
    q = ch.queue_declare(queue=unique("doomed"), auto_delete=False).method.queue
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch.basic_consume(queue=q, on_message_callback=lambda *a: None)
    # Another connection deletes the queue: the broker cancels the consumer (basic.cancel).
    other = connect(port)
    other.channel().queue_delete(queue=q)
    other.close()
    wait_until(
        lambda: cancelled,
        "basic.cancel from the broker",
        step=lambda: conn.process_data_events(time_limit=0.02),
    )
    check_equal(cancelled, [tag], "cancelled consumer tags")
    check(ch.is_open, "the channel stays open after a broker-side cancel")
    still_works(conn, "after a consumer was cancelled")
    conn.close()


def heartbeats(port):
    p = pika.ConnectionParameters(
        host="127.0.0.1",
        port=port,
        credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1,
        socket_timeout=10,
        heartbeat=2,
    )
    conn = pika.BlockingConnection(p)
    checker = conn._impl._heartbeat_checker  # pika keeps no public counter of heartbeats
    check(checker is not None, "pika did not negotiate heartbeats")
    check_equal(conn._impl.params.heartbeat, 2, "negotiated heartbeat")
    # Idle, apart from heartbeats both ways, until the broker has sent some.
    wait_until(
        lambda: checker._heartbeat_frames_received >= 2,
        "two heartbeats from the broker",
        timeout=20,
        step=lambda: conn.process_data_events(time_limit=0.1),
    )
    check(conn.is_open, "the broker closed an idle connection that sent heartbeats")
    still_works(conn, "after idling on heartbeats")
    conn.close()


# --------------------------------------------------------------------- connection errors


def expect_connection_refused(p, code, text_prefix, acceptable, what):
    """Opening a connection with `p` must fail with the broker's connection.close `code`."""
    try:
        conn = pika.BlockingConnection(p)
    except acceptable as e:
        reply_code = getattr(e, "reply_code", None)
        reply_text = getattr(e, "reply_text", None)
        if reply_code is None:
            # pika's Probable*Error carries the broker's close as text:
            # "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - ...'".
            found = re.search(r"ConnectionClosedByBroker: \((\d+)\) '(.*)'", str(e))
            check(found is not None, f"{what}: no connection.close from the broker in {e!r}")
            reply_code, reply_text = int(found.group(1)), found.group(2)
        check_equal(reply_code, code, f"{what}: reply code")
        check(
            reply_text.startswith(text_prefix),
            f"{what}: reply text {reply_text!r} should start with {text_prefix!r}",
        )
        return type(e).__name__
    conn.close()
    fail(f"{what}: the connection opened")


def wrong_password(port):
    name = expect_connection_refused(
        params(port, password="definitely-wrong"),
        403,
        "ACCESS_REFUSED - Login was refused",
        (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ConnectionClosedByBroker),
        "wrong password",
    )
    print(f"wrong password raised {name}")
    expect_connection_refused(
        params(port, username=unique("nobody")),
        403,
        "ACCESS_REFUSED - Login was refused",
        (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ConnectionClosedByBroker),
        "unknown user",
    )
    # A good login right after still works.
    conn = connect(port)
    still_works(conn, "after refused logins")
    conn.close()


def unknown_vhost(port):
    vhost = unique("no-such-vhost")
    name = expect_connection_refused(
        params(port, vhost=vhost),
        530,
        f"NOT_ALLOWED - vhost {vhost} not found",
        (pika.exceptions.ProbableAccessDeniedError, pika.exceptions.ConnectionClosedByBroker),
        "unknown vhost",
    )
    print(f"unknown vhost raised {name}")


if __name__ == "__main__":
    main(
        {
            "not_found": not_found,
            "precondition_failed": precondition_failed,
            "resource_locked": resource_locked,
            "access_refused": access_refused,
            "channel_error_isolation": channel_error_isolation,
            "mandatory_return": mandatory_return,
            "publisher_confirms": publisher_confirms,
            "transactions": transactions,
            "consumer_cancel_notify": consumer_cancel_notify,
            "heartbeats": heartbeats,
            "wrong_password": wrong_password,
            "unknown_vhost": unknown_vhost,
        }
    )
