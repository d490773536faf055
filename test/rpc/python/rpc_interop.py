"""Self-checking pika programs for the RPC interop tests.

  rpc_interop.py client PORT NAMESPACE   calls the TypeScript `calc` service; prints OK lines
  rpc_interop.py server PORT NAMESPACE   serves `pycalc` 1.0.0 until SIGTERM; prints READY

Both implement docs/rpc-wire-format.md through warren_rpc.py; any mismatch exits 1 with FAIL.
"""

import math
import signal
import sys
from datetime import datetime, timezone

from warren_rpc import UNDEFINED, Client, RpcError, Server


class CheckFailed(Exception):
    pass


def check_equal(actual, expected, what):
    if actual != expected or type(actual) is not type(expected):
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def expect_error(fn, status, what):
    try:
        fn()
    except RpcError as e:
        check_equal(e.status, status, f"{what}: status")
        return e.body
    raise CheckFailed(f"{what}: expected status {status}, got a result")


def client(port, ns):
    c = Client(port, ns, client_id="python-client")
    calc = c.locate("calc")
    check_equal(calc["version"], "1.2.0", "announced version")

    check_equal(c.call(calc, "add", {"a": 2, "b": 40}), 42, "add")
    print("OK add", flush=True)

    value = {
        "bytes": bytes([0, 1, 2, 255]),
        "when": datetime(2024, 2, 29, 12, 0, 0, 123000, tzinfo=timezone.utc),
        "big": -(2**100) + 7,
        "small": 7,
        "neg_zero": -0.0,
        "inf": math.inf,
        "list": [1, UNDEFINED, "three", None],
        "dollar": {"$bin": "not bytes"},
        "set": {1, 2, 3},
        "map": {1: "one", 2: "two"},
        "nested": {"a": [{"b": {"c": "déjà vu 😀"}}]},
    }
    back = c.call(calc, "echo", value)
    for k, v in value.items():
        check_equal(back[k], v, f"echo {k}")
    if math.copysign(1, back["neg_zero"]) > 0:
        raise CheckFailed("echo neg_zero lost its sign")
    check_equal(c.call(calc, "ping", None), "pong", "ping (no argument)")
    print("OK types", flush=True)

    body = expect_error(lambda: c.call(calc, "add", {"a": 1, "b": "two"}), 3, "invalid argument")
    check_equal(body["issues"][0]["path"], ["b"], "the issue names the field")
    check_equal(body["reason"], "INVALID_ARGUMENTS", "reason")
    check_equal(body["executed"], "no", "executed")
    expect_error(lambda: c.call(calc, "nope", {}), 12, "unknown method")
    body = expect_error(lambda: c.call(calc, "div", {"a": 1, "b": 0}), 3, "handler error")
    check_equal(body["reason"], "DIVIDE_BY_ZERO", "handler error reason")
    check_equal(body["details"], {"a": 1, "b": 0}, "handler error details")
    print("OK errors", flush=True)

    # At-most-once: a retry of the same sequence number is answered, not executed again.
    check_equal(c.call(calc, "bump", {"key": "py"}, at_most_once=True, seq=1), 1, "bump seq 1")
    check_equal(c.call(calc, "bump", {"key": "py"}, at_most_once=True, seq=1), 1, "bump seq 1 again")
    check_equal(c.call(calc, "bump", {"key": "py"}, at_most_once=True, seq=2), 2, "bump seq 2")
    stale = dict(calc, epoch="1-00000000")
    body = expect_error(lambda: c.call(stale, "bump", {"key": "py"}, at_most_once=True, seq=3), 10, "stale epoch")
    check_equal(body["reason"], "STALE_EPOCH", "stale epoch reason")
    check_equal(body["rebind"], True, "stale epoch rebind")
    print("OK at-most-once", flush=True)
    c.close()


class Flags:
    stop = False


def server(port, ns):
    counts = {}

    def bump(args):
        counts[args["key"]] = counts.get(args["key"], 0) + 1
        return counts[args["key"]]

    def fail(_args):
        raise RpcError(9, {"message": "python says no", "reason": "PY_FAIL", "executed": "no"})

    def crash(_args):
        raise ValueError("bad input")

    s = Server(port, ns, "pycalc", "1.0.0", {
        "add": lambda a: a["a"] + a["b"],
        "echo": lambda v: v,
        "fail": fail,
        "crash": crash,
        "bump": bump,
        "executed": lambda _a: s.executed,
    }, instance="py-1")

    def on_term(_signum, _frame):
        s.stopping = True

    signal.signal(signal.SIGTERM, on_term)
    print("READY", flush=True)
    s.serve()
    print("STOPPED", flush=True)


def main():
    role, port, ns = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    signal.alarm(120)
    try:
        {"client": client, "server": server}[role](port, ns)
    except CheckFailed as e:
        print(f"FAIL {role}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
