"""Shared helpers of the self-checking client programs: failure reporting and bounded waits.

Every program exits 0 only when all its checks pass; any mismatch exits 1 with a line starting
with FAIL that says what was expected and what arrived. A watchdog alarm bounds the whole run.
"""

import os
import signal
import sys
import time
import uuid


class CheckFailed(Exception):
    """A check did not hold; the message says what was expected and what was seen."""


def fail(message):
    raise CheckFailed(message)


def check(condition, message):
    if not condition:
        fail(message)


def check_equal(actual, expected, what):
    if actual != expected or type(actual) is not type(expected):
        fail(f"{what}: expected {expected!r} ({type(expected).__name__}), "
             f"got {actual!r} ({type(actual).__name__})")


def unique(prefix):
    """A name no earlier run left behind (the same program also runs against RabbitMQ)."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def wait_until(condition, what, timeout=15.0, step=None):
    """Call `step` (which blocks for a short while on I/O) until `condition()` holds."""
    deadline = time.monotonic() + timeout
    for _ in range(100_000):
        if condition():
            return
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout:.0f}s waiting for {what}")
        if step is not None:
            step()
        else:
            time.sleep(0.01)
    fail(f"gave up waiting for {what}")


def _on_alarm(_signum, _frame):
    raise CheckFailed("watchdog: the program ran past its time limit")


def main(scenarios, argv=None, time_limit=50):
    """Run `scenarios[name](port)` for `prog PORT NAME...`; print `OK NAME` for each that passes."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        names = ", ".join(sorted(scenarios))
        print(f"usage: {sys.argv[0]} PORT SCENARIO... (scenarios: {names})", file=sys.stderr)
        sys.exit(2)
    port = int(argv[0])
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(time_limit)
    for name in argv[1:]:
        if name not in scenarios:
            print(f"FAIL: unknown scenario {name!r}", file=sys.stderr)
            sys.exit(2)
        try:
            scenarios[name](port)
        except CheckFailed as e:
            print(f"FAIL {name}: {e}", file=sys.stderr)
            sys.exit(1)
        except Exception as e:  # an unexpected client exception is a failure too
            print(f"FAIL {name}: unexpected {type(e).__name__}: {e!r}", file=sys.stderr)
            raise
        print(f"OK {name}", flush=True)
    signal.alarm(0)
