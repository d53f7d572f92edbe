"""kombu's Redis transport, made to survive closing a channel after its connection is gone.

When Redis goes away, Celery's consumer collects the lost connection
(`kombu.Connection.collect`), which closes its channels and then releases the transport's
parameters (`transport.client = None`), and then closes the connection again
(`celery.worker.consumer.Consumer.on_connection_error_after_connected`, Celery 5.7.0).
If, during the collect, the channel that consumes the tasks was still waiting on its
`BRPOP` and another channel failed to close (a fanout queue of gossip or of the control
channel cannot be deleted with Redis down), that channel is closed only the second time,
with the parameters gone: it restores its unacknowledged messages (`task_acks_late`:
there is one per task running), needs a new connection pool, and kombu builds one from
`transport.client`, which is None: `AttributeError: 'NoneType' object has no attribute
'hostname'`. Celery takes an AttributeError for an unrecoverable error and the worker
exits. (kombu 5.7.0; the same shape as kombu issues #582 and #970.)

Here a channel keeps the connection parameters it was opened with and uses them when the
transport's are gone: the restore then fails as it should with Redis down (a connection
error, which Celery ignores while it reconnects) or succeeds if Redis is back. Nothing is
lost either way: the database is the source of truth and the sweeper dispatches what
waits. `CELERY_BROKER_TRANSPORT` names this transport for `redis://` broker URLs.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A Redis channel that can still reach Redis after its transport was released."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._opened_with: dict[bool, dict[str, Any]] = {}
        super().__init__(*args, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if getattr(self.connection, "client", None) is None and asynchronous in self._opened_with:
            return dict(self._opened_with[asynchronous])
        params = super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]  # not in the stubs
        self._opened_with[asynchronous] = dict(params)
        return params


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with `Channel` above."""

    Channel = Channel
