"""Sends tasks to a Celery worker through the broker and checks the results (rpc:// backend).

usage: celery_client.py  (CELERY_BROKER_URL and WARREN_CELERY_QUEUE as for the worker)
Prints `OK celery` when every result is right; otherwise exits 1 with a FAIL line.
"""

import sys

from common import CheckFailed, check, check_equal, fail
from celery_tasks import add, app, boom, echo

TIMEOUT = 40


def run():
    # The first task also waits for the worker to come up.
    result = add.delay(2, 3)
    check_equal(result.get(timeout=TIMEOUT), 5, "add(2, 3)")
    check_equal(result.state, "SUCCESS", "task state")

    pending = [add.delay(i, 10 * i) for i in range(8)]
    check_equal([r.get(timeout=TIMEOUT) for r in pending], [11 * i for i in range(8)], "add(i, 10i)")

    nested = {"list": [1, 2.5, "three", None, True], "text": "caf\u00e9 \u2713"}
    check_equal(
        echo.apply_async(args=[nested], kwargs={"k": "v"}).get(timeout=TIMEOUT),
        {"value": nested, "kwargs": {"k": "v"}},
        "echo with nested JSON",
    )

    failing = boom.delay("expected failure")
    try:
        failing.get(timeout=TIMEOUT)
        fail("a task that raised returned a result")
    except ValueError as e:
        check_equal(str(e), "expected failure", "exception text from the worker")
    check_equal(failing.state, "FAILURE", "state of the failed task")
    check(failing.failed(), "failed() of the failed task")


if __name__ == "__main__":
    try:
        run()
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        app.close()
    print("OK celery")
