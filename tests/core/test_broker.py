"""The Celery broker connection survives Redis going away while a task is unacknowledged.

On a Redis server of the test's own (it is killed), through the app's configured broker
transport, the steps Celery 5.7.0's consumer takes when the broker connection is lost
(`Consumer.on_connection_error_after_connected`): collect the connection, then close it.
"""

from __future__ import annotations

import socket

import pytest
from kombu import Exchange, Queue

from assistant.celery import app


def publish_and_take(connection, queue: Queue, body: dict):
    """Publish one task message and take it, unacknowledged, as the worker's consumer does."""
    with connection.Producer() as producer:
        producer.publish(
            body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
        )
    taken = []
    connection.Consumer(queue, callbacks=[lambda body, message: taken.append(message)]).consume()
    connection.drain_events(timeout=5)
    [message] = taken
    return message


def test_the_broker_connection_is_closed_cleanly_after_redis_died_under_an_unacknowledged_task(
    redis_server,
):
    queue = Queue("llm", Exchange("llm"), "llm")
    connection = app.connection_for_read(redis_server.url)
    # The task consumer (acks late: the message stays unacknowledged while the task runs).
    assert publish_and_take(connection, queue, {"task": 1}).payload == {"task": 1}
    # It waits on BRPOP for the next task, as the worker's consumer does between tasks...
    with pytest.raises(socket.timeout):
        connection.drain_events(timeout=0.1)
    # ...and a channel with a fanout queue that is deleted on close (gossip, control).
    broadcast = connection.channel()
    fanout = Queue("broadcast", Exchange("broadcast", type="fanout"), auto_delete=True)
    connection.Consumer(fanout, channel=broadcast, no_ack=True).consume()

    redis_server.kill()
    connection.collect(socket_timeout=2)
    # kombu's own Redis transport raised AttributeError ('NoneType' object has no attribute
    # 'hostname') here, which Celery takes for an unrecoverable error: the worker exited.
    connection.close()

    redis_server.start()
    # The worker's next connection takes the next task.
    again = app.connection_for_read(redis_server.url)
    assert publish_and_take(again, queue, {"task": 2}).payload == {"task": 2}
    again.close()
