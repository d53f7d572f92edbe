"""Publishing live events to websockets: the web chat and the staff console.

Everything goes through `publish()`, which hands the event to the process's
publisher after the surrounding transaction commits, so a listener never sees a
row that could still roll back, and the caller (a webhook, a turn) never waits
for the channel layer: the publisher runs on the process loop (apps.core.aio) and
sends in small batches, every `EVENT_BATCH_SECONDS`. Within a batch, streamed
tokens of one answer are joined into one event, a conversation's console summary
is queried and sent once, and each group's events keep their order. Groups nobody
listens to are skipped, and so are the summaries only they would show.

Groups:
- `conversation.<id>`: the conversation's messages and streamed tokens (the web
  chat visitor and staff watching that conversation);
- `console`: one `ConversationEvent` (a summary row) per change, for the live list;
- `console.conversation.<id>`: the same summary for staff watching one conversation
  (its takeover state), and the tool calls an answer made (`ToolCallsEvent`), kept off
  the visitor's group.

A `HandOffEvent` (a conversation now waits for staff) goes to the two console groups
only, never to the visitor's: it is a notice for staff.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from apps.core.aio import process_loop
from apps.core.logs import Occasional

logger = logging.getLogger(__name__)
_publish_failed = Occasional(logger)  # with Redis away, every batch would say so

CONSOLE_GROUP = "console"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def console_conversation_group(conversation_id: int) -> str:
    return f"console.conversation.{conversation_id}"


@dataclass(frozen=True)
class TokenEvent:
    """Text an answer gained while streaming."""

    message_id: int
    delta: str
    type: str = "token"


@dataclass(frozen=True)
class MessageEvent:
    """A message was stored or changed state (the full current row)."""

    message: dict[str, Any]
    type: str = "message"


@dataclass(frozen=True)
class ToolCallsEvent:
    """The tool calls recorded on an answer; only for staff watching the conversation (a
    tool's arguments and results are not for the web chat visitor)."""

    message_id: int
    tool_calls: list[dict[str, Any]]
    type: str = "tool_calls"


@dataclass(frozen=True)
class ConversationEvent:
    """A conversation's summary changed (new message, takeover, hand back, feedback)."""

    conversation: dict[str, Any]
    type: str = "conversation"


@dataclass(frozen=True)
class ConversationChanged:
    """Ask `publish()` to send the conversation's fresh summary to the console."""

    type: str = "conversation_changed"


@dataclass(frozen=True)
class HandOffEvent:
    """A conversation was handed off to staff and waits for someone to take it (a notice
    for the console: who, on which bot, by which rule, what they wrote)."""

    conversation_id: int
    bot: str
    user: str
    rule: str
    text: str
    type: str = "handoff"


Event = TokenEvent | MessageEvent | ConversationChanged | HandOffEvent | ToolCallsEvent


def message_payload(message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "author": message.author,
        "text": message.text,
        "status": message.status,
        "error": message.error,
        "created_at": message.received_at.isoformat(),
    }


def _summaries(conversation_ids: list[int]) -> list[dict[str, Any]]:
    from apps.conversations.selectors import conversation_summaries

    try:
        return conversation_summaries(conversation_ids=conversation_ids)
    except Exception:  # noqa: BLE001 - the console is best effort; the database is the record
        logger.exception("summarising %d conversations failed", len(conversation_ids))
        return []


class _Publisher:
    """Collects events on the process loop and sends them to the channel layer in batches."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, Event]] = []
        self.wakeup: asyncio.Event | None = None
        self.task: asyncio.Task | None = None
        self.sending = False

    def put(self, conversation_id: int, event: Event) -> None:
        """Queue an event (from any thread)."""
        process_loop.call_soon(self._add, conversation_id, event)

    def _add(self, conversation_id: int, event: Event) -> None:
        self.pending.append((conversation_id, event))
        if self.task is None or self.task.done():
            self.wakeup = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._run())
        assert self.wakeup is not None
        self.wakeup.set()

    async def _run(self) -> None:
        assert self.wakeup is not None
        while True:
            await self.wakeup.wait()
            await asyncio.sleep(settings.EVENT_BATCH_SECONDS)
            self.wakeup.clear()
            batch, self.pending = self.pending, []
            self.sending = True
            try:
                await self._send_batch(batch)
                _publish_failed.recovered()
            except Exception:  # noqa: BLE001 - live views are best effort; the database is the record
                _publish_failed.log(
                    logging.ERROR, "publishing %d events failed", len(batch), exc_info=True
                )
            finally:
                self.sending = False

    async def flush(self) -> None:
        """Wait until every event queued so far has been sent."""
        await asyncio.sleep(0)  # events put from other threads just before
        while self.task is not None and not self.task.done() and (self.pending or self.sending):
            await asyncio.sleep(settings.EVENT_BATCH_SECONDS)

    async def _send_batch(self, batch: list[tuple[int, Event]]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        groups: dict[
            str,
            list[TokenEvent | MessageEvent | ConversationEvent | HandOffEvent | ToolCallsEvent],
        ] = {}
        changed: list[int] = []
        for conversation_id, event in batch:
            if not isinstance(event, TokenEvent) and conversation_id not in changed:
                changed.append(conversation_id)  # tokens change nothing the list shows
            if isinstance(event, ConversationChanged):
                continue
            if isinstance(event, HandOffEvent):  # for staff only
                groups.setdefault(CONSOLE_GROUP, []).append(event)
                groups.setdefault(console_conversation_group(conversation_id), []).append(event)
                continue
            if isinstance(event, ToolCallsEvent):  # for staff only
                groups.setdefault(console_conversation_group(conversation_id), []).append(event)
                continue
            events = groups.setdefault(conversation_group(conversation_id), [])
            last = events[-1] if events else None
            if (
                isinstance(event, TokenEvent)
                and isinstance(last, TokenEvent)
                and last.message_id == event.message_id
            ):
                events[-1] = TokenEvent(message_id=event.message_id, delta=last.delta + event.delta)
            else:
                events.append(event)
        console_groups = [CONSOLE_GROUP] + [console_conversation_group(pk) for pk in changed]
        watched = await _watched(layer, list(groups) + console_groups)
        if CONSOLE_GROUP not in watched:
            changed = [pk for pk in changed if console_conversation_group(pk) in watched]
        if changed:
            for summary in await process_loop.db(_summaries, changed):
                summary_event = ConversationEvent(summary)
                groups.setdefault(CONSOLE_GROUP, []).append(summary_event)
                groups.setdefault(console_conversation_group(summary["id"]), []).append(
                    summary_event
                )
        groups = {group: events for group, events in groups.items() if group in watched}
        # A few groups at a time: the channel layer's Redis connections are a bounded pool.
        sending = asyncio.Semaphore(PUBLISH_CONCURRENCY)
        await asyncio.gather(
            *(_send_group(layer, sending, group, events) for group, events in groups.items())
        )


PUBLISH_CONCURRENCY = 16


async def _watched(layer, groups: list[str]) -> set[str]:
    """The groups someone listens to: nobody watching, nothing to query or send.

    Asks channels_redis's group sets directly (one pipelined ZCARD each); with
    another channel layer every group counts as watched.
    """
    group_key = getattr(layer, "_group_key", None)
    if group_key is None or getattr(layer, "ring_size", 0) != 1:
        return set(groups)
    async with layer.connection(0).pipeline(transaction=False) as pipe:
        for group in groups:
            pipe.zcard(group_key(group))
        counts = await pipe.execute()
    return {group for group, count in zip(groups, counts, strict=True) if count}


async def _send_group(layer, sending: asyncio.Semaphore, group: str, events: list) -> None:
    async with sending:
        await _send_events(layer, group, events)


async def _send_events(layer, group: str, events: list) -> None:
    for event in events:
        try:
            # Consumers receive it as their `conversation_event` handler.
            await layer.group_send(group, {"type": "conversation.event", "event": asdict(event)})
        except Exception:  # noqa: BLE001 - live views are best effort; the database is the record
            logger.exception("publishing %s to %s failed", event.type, group)


_publisher = _Publisher()


def publish(conversation_id: int, event: Event) -> None:
    """Send `event` to everyone watching the conversation, once the transaction commits.

    Message and state changes also refresh the conversation's row in the console.
    """
    transaction.on_commit(lambda: _publisher.put(conversation_id, event))


def publish_now(conversation_id: int, event: Event) -> None:
    """`publish()` for code outside any transaction, such as a turn's streamed tokens."""
    _publisher.put(conversation_id, event)


async def flush() -> None:
    """Wait (on the process loop) until the events queued so far have been sent."""
    await _publisher.flush()
