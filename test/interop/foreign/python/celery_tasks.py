"""A Celery app for the interop test: the worker runs it with `-A celery_tasks`.

The broker URL comes from CELERY_BROKER_URL and the task queue from WARREN_CELERY_QUEUE, so one
worker cannot pick up another run's tasks. Results travel back over AMQP (the rpc:// backend).
"""

import os

from celery import Celery

app = Celery("warren_interop", broker=os.environ["CELERY_BROKER_URL"], backend="rpc://")
app.conf.update(
    task_default_queue=os.environ.get("WARREN_CELERY_QUEUE", "warren-interop"),
    broker_connection_retry=False,
    broker_connection_retry_on_startup=False,
    broker_connection_max_retries=0,
    worker_hijack_root_logger=False,
    task_acks_late=True,
    result_persistent=False,
    accept_content=["json"],
    task_serializer="json",
    result_serializer="json",
)


@app.task(name="warren.add")
def add(x, y):
    return x + y


@app.task(name="warren.echo")
def echo(value, **kwargs):
    return {"value": value, "kwargs": kwargs}


@app.task(name="warren.boom")
def boom(message):
    raise ValueError(message)
