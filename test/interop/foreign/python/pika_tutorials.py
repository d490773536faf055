"""The six classic RabbitMQ tutorials, written with pika as self-checking programs.

usage: pika_tutorials.py PORT SCENARIO...
Scenarios: hello_world, work_queues, publish_subscribe, routing, topics, rpc, direct_reply_to.
Each prints `OK <scenario>` when every check held; otherwise it exits 1 with a FAIL line.
"""

import uuid

import pika
import pika.exceptions

from common import check, check_equal, fail, main, unique, wait_until


def connect(port):
    params = pika.ConnectionParameters(
        host="127.0.0.1",
        port=port,
        credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1,
        socket_timeout=10,
        blocked_connection_timeout=30,
    )
    return pika.BlockingConnection(params)


def pump(connections, condition, what, timeout=15.0):
    """Process I/O on every connection, a little at a time, until `condition()` holds."""

    def step():
        for c in connections:
            c.process_data_events(time_limit=0.02)

    wait_until(condition, what, timeout=timeout, step=step)


def ready_count(channel, queue):
    """Ready messages in a queue, by passive declare (a synchronous round trip)."""
    return channel.queue_declare(queue=queue, passive=True).method.message_count


def get_all(channel, queue, limit=100):
    """Every ready message of a queue, by basic.get until get-empty."""
    bodies = []
    for _ in range(limit):
        method, _props, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body.decode())
    fail(f"queue {queue} still had messages after {limit} gets")


# --------------------------------------------------------------------- 1. hello world


def hello_world(port):
    queue = unique("hello")
    sender = connect(port)
    send_ch = sender.channel()
    declared = send_ch.queue_declare(queue=queue)
    check_equal(declared.method.queue, queue, "declare-ok queue name")
    check_equal(declared.method.message_count, 0, "declare-ok message count")
    send_ch.basic_publish(exchange="", routing_key=queue, body=b"Hello World!")

    receiver = connect(port)
    recv_ch = receiver.channel()
    recv_ch.queue_declare(queue=queue)
    got = []
    recv_ch.basic_consume(
        queue=queue,
        on_message_callback=lambda _ch, method, props, body: got.append((method, props, body)),
        auto_ack=True,
    )
    pump([receiver], lambda: got, "the hello message")
    method, _props, body = got[0]
    check_equal(body, b"Hello World!", "body")
    check_equal(method.exchange, "", "delivery exchange")
    check_equal(method.routing_key, queue, "delivery routing key")
    check_equal(method.redelivered, False, "redelivered")
    after = send_ch.queue_declare(queue=queue, passive=True).method
    check_equal(after.message_count, 0, "messages left after an auto-ack delivery")
    check_equal(after.consumer_count, 1, "consumer count")
    receiver.close()
    send_ch.queue_delete(queue=queue)
    sender.close()


# --------------------------------------------------------------------- 2. work queues


class Worker:
    def __init__(self, name, port, queue):
        self.name = name
        self.conn = connect(port)
        self.ch = self.conn.channel()
        self.ch.queue_declare(queue=queue, durable=True)
        self.ch.basic_qos(prefetch_count=1)
        self.got = []  # (delivery_tag, body, redelivered, delivery_mode)
        self.ch.basic_consume(queue=queue, on_message_callback=self.on_message)

    def on_message(self, _ch, method, props, body):
        self.got.append((method.delivery_tag, body.decode(), method.redelivered, props.delivery_mode))

    def bodies(self):
        return [g[1] for g in self.got]

    def ack_last(self):
        self.ch.basic_ack(delivery_tag=self.got[-1][0])

    def sync(self):
        # A synchronous round trip: anything the broker sent this worker before is now processed.
        self.ch.basic_qos(prefetch_count=1)


def work_queues(port):
    queue = unique("task_queue")
    producer = connect(port)
    pch = producer.channel()
    pch.queue_declare(queue=queue, durable=True)
    pch.confirm_delivery()
    persistent = pika.BasicProperties(delivery_mode=2)

    def send(body):
        pch.basic_publish(exchange="", routing_key=queue, body=body.encode(), properties=persistent)

    a = Worker("A", port, queue)
    b = Worker("B", port, queue)
    workers = [a, b]
    conns = [a.conn, b.conn]

    # Fair dispatch: with prefetch 1, two tasks go one to each worker.
    send("task 1")
    send("task 2")
    pump(conns, lambda: len(a.got) + len(b.got) == 2, "tasks 1 and 2")
    for w in workers:
        w.sync()
        check_equal(len(w.got), 1, f"tasks held by worker {w.name} with prefetch=1")
        check_equal(w.got[0][3], 2, f"delivery_mode seen by worker {w.name}")
    check_equal(sorted(a.bodies() + b.bodies()), ["task 1", "task 2"], "first two tasks")

    # Both workers are busy: further tasks wait in the queue.
    for i in range(3, 9):
        send(f"task {i}")
    for w in workers:
        w.sync()
        check_equal(len(w.got), 1, f"deliveries to busy worker {w.name}")
    check_equal(ready_count(pch, queue), 6, "ready tasks while both workers are busy")

    # B stays busy; A acks each task and gets the next one, in order, until the queue is empty.
    for expected in range(3, 9):
        a.ack_last()
        pump(conns, lambda n=len(a.got): len(a.got) == n + 1, f"task {expected} at worker A")
        check_equal(a.bodies()[-1], f"task {expected}", "next task at the free worker")
    a.ack_last()
    b.sync()
    check_equal(len(b.got), 1, "deliveries to worker B while it held an unacked task")
    b.ack_last()
    a.sync()
    b.sync()
    check_equal(ready_count(pch, queue), 0, "ready tasks after all were acked")

    # A worker dies with an unacked task: it goes to the other worker, flagged redelivered.
    send("task 9")
    pump(conns, lambda: len(a.got) + len(b.got) == 9, "task 9")
    dying, survivor = (a, b) if a.bodies()[-1] == "task 9" else (b, a)
    dying.conn.close()
    before = len(survivor.got)
    pump([survivor.conn], lambda: len(survivor.got) == before + 1, "the redelivered task 9")
    tag, body, redelivered, _mode = survivor.got[-1]
    check_equal(body, "task 9", "redelivered task body")
    check_equal(redelivered, True, "redelivered flag after the first worker died")
    survivor.ch.basic_ack(delivery_tag=tag)
    survivor.conn.close()
    # Every task was acked exactly once, so nothing comes back when the workers are gone.
    check_equal(ready_count(pch, queue), 0, "ready tasks after both workers left")
    pch.queue_delete(queue=queue)
    producer.close()


# --------------------------------------------------------------------- 3. publish/subscribe


def publish_subscribe(port):
    exchange = unique("logs")
    emitter = connect(port)
    ech = emitter.channel()
    ech.exchange_declare(exchange=exchange, exchange_type="fanout")
    ech.confirm_delivery()

    subscribers = []
    for i in range(2):
        conn = connect(port)
        ch = conn.channel()
        result = ch.queue_declare(queue="", exclusive=True)
        qname = result.method.queue
        check(qname.startswith("amq.gen-"), f"server-named queue {qname!r} should start with amq.gen-")
        ch.queue_bind(exchange=exchange, queue=qname)
        got = []
        ch.basic_consume(
            queue=qname,
            on_message_callback=lambda _c, _m, _p, body, got=got: got.append(body.decode()),
            auto_ack=True,
        )
        subscribers.append((conn, qname, got))
    check(subscribers[0][1] != subscribers[1][1], "two server-named queues got the same name")

    # A fanout exchange ignores the routing key.
    logs = ["info: one", "warning: two", "error: three"]
    for n, line in enumerate(logs):
        ech.basic_publish(exchange=exchange, routing_key=f"ignored.{n}", body=line.encode())
    conns = [s[0] for s in subscribers]
    pump(conns, lambda: all(len(s[2]) >= len(logs) for s in subscribers), "every log at both")
    for conn, _q, got in subscribers:
        conn.process_data_events(time_limit=0)
        check_equal(got, logs, "logs received by a subscriber")

    # An exclusive queue disappears with its connection; the other subscriber still gets logs.
    gone_conn, gone_queue, _ = subscribers[0]
    gone_conn.close()
    probe = emitter.channel()
    try:
        probe.queue_declare(queue=gone_queue, passive=True)
        fail(f"exclusive queue {gone_queue} still exists after its connection closed")
    except pika.exceptions.ChannelClosedByBroker as e:
        check_equal(e.reply_code, 404, "passive declare of a deleted exclusive queue")
    conn, _q, got = subscribers[1]
    ech.basic_publish(exchange=exchange, routing_key="", body=b"after")
    pump([conn], lambda: len(got) == len(logs) + 1, "the log sent after one subscriber left")
    check_equal(got[-1], "after", "last log")
    conn.close()
    ech.exchange_delete(exchange=exchange)
    emitter.close()


# --------------------------------------------------------------------- 4. routing


def routing(port):
    exchange = unique("direct_logs")
    conn = connect(port)
    ch = conn.channel()
    ch.exchange_declare(exchange=exchange, exchange_type="direct")
    errors_only = ch.queue_declare(queue="", exclusive=True).method.queue
    everything = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(exchange=exchange, queue=errors_only, routing_key="error")
    for severity in ("info", "warning", "error"):
        ch.queue_bind(exchange=exchange, queue=everything, routing_key=severity)

    # Confirms make routing complete before the gets below.
    ch.confirm_delivery()
    for severity in ("info", "warning", "error", "debug", "ERROR"):
        ch.basic_publish(exchange=exchange, routing_key=severity, body=f"{severity} msg".encode())
    check_equal(get_all(ch, errors_only), ["error msg"], "queue bound to 'error'")
    check_equal(
        get_all(ch, everything),
        ["info msg", "warning msg", "error msg"],
        "queue bound to info, warning, error",
    )
    # Unbinding stops the flow.
    ch.queue_unbind(exchange=exchange, queue=everything, routing_key="info")
    ch.basic_publish(exchange=exchange, routing_key="info", body=b"info again")
    ch.basic_publish(exchange=exchange, routing_key="error", body=b"error again")
    check_equal(get_all(ch, everything), ["error again"], "after unbinding 'info'")
    check_equal(get_all(ch, errors_only), ["error again"], "'error' queue after the unbind")
    ch.exchange_delete(exchange=exchange)
    conn.close()


# --------------------------------------------------------------------- 5. topics


TOPIC_CASES = [
    # routing key, [queues it reaches among Q1 '*.orange.*', Q2 '*.*.rabbit' + 'lazy.#', Q3 '#']
    ("quick.orange.rabbit", ["Q1", "Q2", "Q3"]),
    ("lazy.orange.elephant", ["Q1", "Q2", "Q3"]),
    ("quick.orange.fox", ["Q1", "Q3"]),
    ("lazy.brown.fox", ["Q2", "Q3"]),
    ("lazy.pink.rabbit", ["Q2", "Q3"]),  # matches both Q2 bindings, delivered once
    ("quick.brown.fox", ["Q3"]),
    ("orange", ["Q3"]),
    ("quick.orange.male.rabbit", ["Q3"]),
    ("lazy.orange.male.rabbit", ["Q2", "Q3"]),
    ("lazy", ["Q2", "Q3"]),  # '#' matches zero words
    (".orange.", ["Q1", "Q3"]),  # empty words match '*'
    ("", ["Q3"]),
]


def topics(port):
    exchange = unique("topic_logs")
    conn = connect(port)
    ch = conn.channel()
    ch.exchange_declare(exchange=exchange, exchange_type="topic")
    queues = {}
    for label, keys in (("Q1", ["*.orange.*"]), ("Q2", ["*.*.rabbit", "lazy.#"]), ("Q3", ["#"])):
        queues[label] = ch.queue_declare(queue="", exclusive=True).method.queue
        for key in keys:
            ch.queue_bind(exchange=exchange, queue=queues[label], routing_key=key)
    ch.confirm_delivery()
    for key, _ in TOPIC_CASES:
        ch.basic_publish(exchange=exchange, routing_key=key, body=key.encode())
    for label, qname in queues.items():
        expected = [key for key, reached in TOPIC_CASES if label in reached]
        check_equal(get_all(ch, qname), expected, f"routing keys that reached {label}")
    ch.exchange_delete(exchange=exchange)
    conn.close()


# --------------------------------------------------------------------- 6. RPC


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


class RpcServer:
    def __init__(self, port, queue):
        self.conn = connect(port)
        self.ch = self.conn.channel()
        self.ch.queue_declare(queue=queue)
        self.ch.basic_qos(prefetch_count=1)
        self.reply_tos = []
        self.ch.basic_consume(queue=queue, on_message_callback=self.on_request)

    def on_request(self, ch, method, props, body):
        self.reply_tos.append(props.reply_to)
        ch.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(fib(int(body))).encode(),
        )
        ch.basic_ack(delivery_tag=method.delivery_tag)


def rpc_round(port, reply_queue_kind):
    rpc_queue = unique("rpc_queue")
    server = RpcServer(port, rpc_queue)
    client = connect(port)
    ch = client.channel()
    if reply_queue_kind == "exclusive":
        reply_to = ch.queue_declare(queue="", exclusive=True).method.queue
    else:
        reply_to = "amq.rabbitmq.reply-to"
    responses = {}
    stray = []

    def on_response(_ch, _method, props, body):
        if props.correlation_id in requests:
            responses[props.correlation_id] = int(body)
        else:
            stray.append((props.correlation_id, body))

    ch.basic_consume(queue=reply_to, on_message_callback=on_response, auto_ack=True)
    requests = {}
    for n in (0, 1, 10, 30):
        corr = str(uuid.uuid4())
        requests[corr] = n
        ch.basic_publish(
            exchange="",
            routing_key=rpc_queue,
            properties=pika.BasicProperties(reply_to=reply_to, correlation_id=corr),
            body=str(n).encode(),
        )
    pump([server.conn, client], lambda: len(responses) == len(requests), "every RPC response")
    for corr, n in requests.items():
        check_equal(responses[corr], fib(n), f"fib({n}) for correlation id {corr}")
    check_equal(stray, [], "responses with an unknown correlation id")
    check_equal(len(server.reply_tos), len(requests), "requests seen by the server")
    for seen in server.reply_tos:
        if reply_queue_kind == "exclusive":
            check_equal(seen, reply_to, "reply_to seen by the server")
        else:
            check(
                seen.startswith("amq.rabbitmq.reply-to."),
                f"direct reply-to should be rewritten to a per-channel address, got {seen!r}",
            )
    server.ch.queue_delete(queue=rpc_queue)
    server.conn.close()
    client.close()


def rpc(port):
    rpc_round(port, "exclusive")


def direct_reply_to(port):
    rpc_round(port, "direct")


if __name__ == "__main__":
    main(
        {
            "hello_world": hello_world,
            "work_queues": work_queues,
            "publish_subscribe": publish_subscribe,
            "routing": routing,
            "topics": topics,
            "rpc": rpc,
            "direct_reply_to": direct_reply_to,
        }
    )
