"""warren/rpc over plain AMQP with pika, written from docs/rpc-wire-format.md alone.

`encode`/`decode` are section 4 (body encoding); `Client` finds a service through the registry
(section 2) and calls it (sections 3, 5, 7); `Server` announces itself, answers queries and serves
calls, with the at-most-once table of section 5.
"""

import base64
import json
import math
import os
import time
import uuid
from datetime import datetime, timezone

import pika

CONTENT_TYPE = "application/vnd.warren.rpc+json"
EXPIRES = {"x-expires": 60000}


class Undefined:
    """JavaScript's undefined inside an array ({"$undef": 1})."""

    def __eq__(self, other):
        return isinstance(other, Undefined)

    def __repr__(self):
        return "UNDEFINED"


UNDEFINED = Undefined()


# ------------------------------------------------------------------ section 4: values

def _to_json(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2**53 else {"$bigint": str(v)}
    if isinstance(v, float):
        if math.isnan(v):
            return {"$num": "NaN"}
        if math.isinf(v):
            return {"$num": "Infinity" if v > 0 else "-Infinity"}
        if v == 0 and math.copysign(1, v) < 0:
            return {"$num": "-0"}
        return v
    if isinstance(v, (bytes, bytearray)):
        return {"$bin": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, datetime):
        return {"$date": round(v.timestamp() * 1000)}
    if isinstance(v, Undefined):
        return {"$undef": 1}
    if isinstance(v, (set, frozenset)):
        return {"$set": [_to_json(x) for x in v]}
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            out = {k: _to_json(x) for k, x in v.items()}
            if len(out) == 1 and next(iter(out)).startswith("$"):
                return {"$obj": out}
            return out
        return {"$map": [[_to_json(k), _to_json(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        return [_to_json(x) for x in v]
    raise TypeError(f"cannot encode {type(v).__name__}")


def encode(v):
    """A value as a request or reply body; None (no value) is an empty body."""
    if v is None:
        return b""
    return json.dumps(_to_json(v), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _revive(v):
    if isinstance(v, list):
        return [_revive(x) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (tag, x), = v.items()
        if tag.startswith("$"):
            if tag in ("$bin", "$buf"):
                return base64.b64decode(x)
            if tag == "$date":
                return None if x is None else datetime.fromtimestamp(x / 1000, tz=timezone.utc)
            if tag == "$bigint":
                return int(x)
            if tag == "$num":
                return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}[x]
            if tag == "$undef":
                return UNDEFINED
            if tag == "$map":
                return {_hashable(_revive(k)): _revive(x2) for k, x2 in x}
            if tag == "$set":
                return {_hashable(_revive(i)) for i in x}
            if tag == "$obj":
                return {k: _revive(x2) for k, x2 in x.items()}
            if tag == "$ref":
                return {"remote_ref": x}
            raise ValueError(f"unknown tag {tag}")
    return {k: _revive(x) for k, x in v.items()}


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


def decode(body):
    if not body:
        return None
    return _revive(json.loads(body.decode("utf-8")))


class RpcError(Exception):
    def __init__(self, status, body):
        super().__init__(f"status {status}: {body.get('message') if isinstance(body, dict) else body}")
        self.status = status
        self.body = body if isinstance(body, dict) else {}


def conversation_id():
    return f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------ client

class Client:
    def __init__(self, port, namespace, client_id=None):
        self.ns = namespace
        self.conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
        self.ch = self.conn.channel()
        self.client_id = client_id or f"py-{uuid.uuid4().hex[:12]}"
        self.conversation = conversation_id()
        self.seq = 0
        self.replies = {}
        self.announcements = {}
        self.ch.exchange_declare(namespace, "topic", durable=False)
        self.registry_q = self.ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.ch.basic_consume(self.registry_q, self._on_announce, auto_ack=True)
        self.ch.basic_consume("amq.rabbitmq.reply-to", self._on_reply, auto_ack=True)

    def _on_announce(self, _ch, _m, props, body):
        a = json.loads(body)
        if (props.headers or {}).get("x-rpc-op") == "withdraw":
            self.announcements.pop((a["service"], a["instance"]), None)
        else:
            self.announcements[(a["service"], a["instance"])] = a

    def _on_reply(self, _ch, _m, props, body):
        self.replies[props.correlation_id] = (props, body)

    def locate(self, service, timeout=10.0):
        """Section 2: bind to announce.<service>, query, wait for an announcement."""
        self.ch.queue_bind(self.registry_q, self.ns, f"announce.{service}")
        self.ch.basic_publish(self.ns, f"query.{service}", b"", pika.BasicProperties(
            reply_to=self.registry_q, headers={"x-rpc-op": "query", "x-rpc-service": service}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [a for (s, _), a in self.announcements.items() if s == service]
            if found:
                return found[0]
            self.conn.process_data_events(time_limit=0.05)
        raise RpcError(14, {"message": f"cannot locate {service}"})

    def send(self, queue, service, method, args, extra=None, correlation_id=None, timeout_ms=10000):
        cid = correlation_id or uuid.uuid4().hex
        headers = {
            "x-rpc-v": 1, "x-rpc-service": service, "x-rpc-method": method,
            "x-rpc-timeout": timeout_ms, "x-rpc-client": self.client_id,
            "x-rpc-conversation": self.conversation, "x-rpc-attempt": 1,
        }
        headers.update(extra or {})
        self.ch.basic_publish("", queue, encode(args), pika.BasicProperties(
            content_type=CONTENT_TYPE, correlation_id=cid, reply_to="amq.rabbitmq.reply-to",
            expiration=str(timeout_ms), headers=headers))
        return cid

    def wait(self, cid, timeout=10.0):
        deadline = time.monotonic() + timeout
        while cid not in self.replies:
            if time.monotonic() > deadline:
                raise RpcError(4, {"message": "no reply"})
            self.conn.process_data_events(time_limit=0.05)
        props, body = self.replies.pop(cid)
        status = (props.headers or {}).get("x-rpc-status")
        if status != 0:
            raise RpcError(status, decode(body))
        return decode(body), props

    def call(self, announcement, method, args, at_most_once=False, seq=None):
        """Section 3: at-least-once to the service queue; at-most-once to the instance queue."""
        a = announcement
        if not at_most_once:
            return self.wait(self.send(a["queue"], a["service"], method, args))[0]
        if seq is None:
            self.seq += 1
            seq = self.seq
        extra = {"x-rpc-seq": seq, "x-rpc-floor": seq - 1, "x-rpc-epoch": a["epoch"]}
        return self.wait(self.send(a["instanceQueue"], a["service"], method, args, extra))[0]

    def close(self):
        self.conn.close()


# ------------------------------------------------------------------ server

class Server:
    """Serves `methods` (name -> function(args) -> result) as `service`@`version`."""

    def __init__(self, port, namespace, service, version, methods, instance=None, lease=3000):
        self.ns, self.service, self.version, self.methods = namespace, service, version, methods
        self.instance = instance or f"py-{os.getpid()}"
        self.epoch = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.queue = f"{namespace}.svc.{service}@{version}"
        self.instance_queue = f"{namespace}.inst.{service}@{version}.{self.instance}"
        self.table = {}  # client id -> {"conversation", "floor", "calls": {seq: (status, body)}}
        self.executed = 0
        self.stopping = False
        self.conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
        self.ch = self.conn.channel()
        self.ch.exchange_declare(namespace, "topic", durable=False)
        self.ch.queue_declare(self.queue, arguments=EXPIRES)
        self.ch.queue_declare(self.instance_queue, arguments=EXPIRES)
        self.ch.queue_bind(self.instance_queue, namespace, f"query.{service}")
        self.ch.queue_bind(self.instance_queue, namespace, f"cancel.{service}")
        self.ch.basic_qos(prefetch_count=16)
        self.ch.basic_consume(self.queue, self._on_request)
        self.ch.basic_consume(self.instance_queue, self._on_request, exclusive=True)

    def announcement(self):
        return json.dumps({
            "service": self.service, "version": self.version, "instance": self.instance,
            "epoch": self.epoch, "queue": self.queue, "instanceQueue": self.instance_queue,
            "lease": self.lease, "retention": 60000, "methods": sorted(self.methods),
        }).encode()

    def announce(self, op="announce", to=None):
        props = pika.BasicProperties(content_type="application/json",
                                     headers={"x-rpc-op": op, "x-rpc-v": 1})
        if to is None:
            self.ch.basic_publish(self.ns, f"announce.{self.service}", self.announcement(), props)
        else:
            self.ch.basic_publish("", to, self.announcement(), props)

    def _tick(self):
        if self.stopping:
            self.ch.stop_consuming()
            return
        self.announce()
        self.conn.call_later(self.lease / 3000, self._tick)

    def _reply(self, props, status, body):
        if props.reply_to is None:
            return
        self.ch.basic_publish("", props.reply_to, body, pika.BasicProperties(
            content_type=CONTENT_TYPE, correlation_id=props.correlation_id,
            headers={"x-rpc-status": status, "x-rpc-instance": self.instance}))

    def _error(self, status, message, **extra):
        return status, encode(dict({"message": message}, **extra))

    def _on_request(self, ch, m, props, body):
        h = props.headers or {}
        op = h.get("x-rpc-op", "call")
        if op == "query":
            if props.reply_to:
                self.announce(to=props.reply_to)
        elif op == "call":
            self._reply(props, *self._call(h, body))
        ch.basic_ack(m.delivery_tag)

    def _call(self, h, body):
        epoch = h.get("x-rpc-epoch")
        if epoch is not None and epoch != self.epoch:
            return self._error(10, "stale epoch", reason="STALE_EPOCH", rebind=True, executed="unknown")
        method = h.get("x-rpc-method")
        if method not in self.methods:
            return self._error(12, f"no method {method}", reason="UNKNOWN_METHOD", executed="no")
        seq = h.get("x-rpc-seq")
        if seq is None:
            return self._execute(method, body)
        # Section 5: the at-most-once table.
        client, conv = h.get("x-rpc-client", ""), h.get("x-rpc-conversation", "")
        row = self.table.get(client)
        if row is not None and row["conversation"] != conv:
            if int(conv.split("-")[0]) < int(row["conversation"].split("-")[0]):
                return self._error(10, "stale conversation", reason="STALE_CONVERSATION", executed="no")
            row = None
        if row is None:
            row = self.table[client] = {"conversation": conv, "floor": 0, "calls": {}}
        row["floor"] = max(row["floor"], h.get("x-rpc-floor", 0))
        for s in [s for s in row["calls"] if s <= row["floor"] and s != seq]:
            del row["calls"][s]
        if seq in row["calls"]:
            return row["calls"][seq]
        reply = self._execute(method, body)
        row["calls"][seq] = reply
        return reply

    def _execute(self, method, body):
        self.executed += 1
        try:
            return 0, encode(self.methods[method](decode(body)))
        except RpcError as e:
            return e.status, encode(e.body)
        except Exception as e:  # any other failure is UNKNOWN, as the document says
            return self._error(2, f"{type(e).__name__}: {e}", reason="HANDLER_FAILED", executed="yes")

    def serve(self):
        self._tick()
        self.ch.start_consuming()
        self.announce("withdraw")
        self.conn.close()
