"""The turn engine: many conversations' turns at once on one event loop per worker process.

A Celery task (`respond_task`) only hands a conversation id to `turn_engine.submit()`
and returns; the turn runs as a coroutine on the process loop (apps.core.aio).
Per turn that costs one coroutine and a few small tasks, not a thread: the model
stream, the streaming edits, "typing…" and the delivery all wait side by side, on
long-lived HTTP clients. Database work runs in the loop's bounded database threads.

The guarantees of DESIGN.md hold:
- one turn at a time per conversation: a Redis lock per conversation, renewed
  while the turn runs (a heartbeat), so a dead worker's lock expires within
  `TURN_LOCK_SECONDS` and the sweeper re-dispatches its conversation;
- messages that arrive during a turn are answered by the next turn of the same
  run, and after releasing the lock the engine looks once more, so a task that
  found the lock busy can safely end;
- an answer is recorded before it is sent, and only by the turn that still owns
  it (`turn_record`), so a retried or taken-over turn never answers twice.

A bot set to stop an answer when the user writes again (`while_answering`) is told
so by ingest through a Redis message every worker process listens to (one connection
per process, nothing per turn); the turn running that conversation stops its model
call, keeps the text written so far, and the next turn answers every message together.

The engine takes at most `ENGINE_MAX_TURNS` conversations at once per process, and
none while its loop runs later than `ENGINE_ADMIT_LAG_SECONDS` (a burst would otherwise
slow every turn in flight alike, and all answers would come late together); meanwhile
`submit()` blocks the Celery thread, so the rest waits in the queue for this or
another worker process instead of piling up here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import replace

import redis
from django.conf import settings
from django.utils import timezone

from apps.bots.choices import WhileAnswering
from apps.bots.platforms.base import (
    DeliveryError,
    platform_stream_update,
    platform_typing,
)
from apps.conversations import events
from apps.conversations.events import TokenEvent, publish_now
from apps.conversations.services.chats import chat_migrate, sender_names_ask, senders_unnamed
from apps.conversations.services.delivery import amessage_deliver
from apps.conversations.services.dispatch import (
    INTERRUPT_CHANNEL,
    dispatch_turn,
    turn_lock_key,
)
from apps.conversations.services.skill_turns import SkillTurn, skill_turn_record, skill_turn_run
from apps.conversations.services.turns import (
    PreparedTurn,
    streamed_remember,
    turn_interrupt,
    turn_model_failed,
    turn_model_wait,
    turn_new_message_exists,
    turn_pending_exists,
    turn_record,
    turn_start,
    turn_stream_started,
)
from apps.core import metrics
from apps.core.aio import LAG_TICK_SECONDS, process_loop
from apps.core.liveness import liveness
from apps.core.locks import held_locks
from apps.core.logs import Occasional, log_context
from apps.core.redis import get_async_redis
from apps.providers.client import ModelError, astream_reply

logger = logging.getLogger(__name__)
_census_failed = Occasional(logger)  # else said every second while Redis is away

TYPING_AFTER_SECONDS = 1.0  # "typing…" is shown when no text is after this long
TYPING_REPEATS = 15  # and repeated for a minute at most

# Answers streaming in every worker process: the platforms' limits are per bot, not per
# process, so a crowd is counted across processes (each says its number every second).
STREAMS_KEY = "assistant:streams"  # process id -> "<answers streaming>:<Redis time>"
STREAMS_EVERY_SECONDS = 1.0
STREAMS_FRESH_SECONDS = 3.0  # an older number is a process that stopped saying it: left out
_STREAMS_SCRIPT = """
local now = redis.call('TIME')
now = now[1] + now[2] / 1000000
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. now)
local others = 0
local rows = redis.call('HGETALL', KEYS[1])
for i = 1, #rows, 2 do
  if rows[i] ~= ARGV[1] then
    local count, at = string.match(rows[i + 1], '^(%d+):(.+)$')
    if count and now - tonumber(at) <= tonumber(ARGV[3]) then
      others = others + tonumber(count)
    else
      redis.call('HDEL', KEYS[1], rows[i])
    end
  end
end
return others
"""


async def streams_elsewhere(process_id: str, streams: int, *, key: str = STREAMS_KEY) -> int:
    """Say how many answers this process streams; return how many the others do."""
    return int(
        await get_async_redis().eval(
            _STREAMS_SCRIPT, 1, key, process_id, streams, STREAMS_FRESH_SECONDS
        )
    )


class TurnEngine:
    """Runs conversations' turns on the process loop; one instance per process."""

    def __init__(self) -> None:
        self._capacity: threading.BoundedSemaphore | None = None
        self._capacity_lock = threading.Lock()
        self.running: set[int] = set()  # conversations with a run on this process
        self.tasks: set[asyncio.Task] = set()
        self.streams = 0  # answers streaming into chats right now
        self.streams_elsewhere = 0  # in the other worker processes, a second ago at most
        self.census: asyncio.Task | None = None
        # Turns that stop when their user writes again, by conversation (see _listen).
        self.interrupts: dict[int, asyncio.Event] = {}
        self.listener: asyncio.Task | None = None

    @property
    def capacity(self) -> threading.BoundedSemaphore:
        with self._capacity_lock:
            if self._capacity is None:
                self._capacity = threading.BoundedSemaphore(settings.ENGINE_MAX_TURNS)
            return self._capacity

    # Entry points -------------------------------------------------------------------

    def submit(self, conversation_id: int) -> None:
        """Answer what is pending in the conversation (from any thread but the loop's).

        Returns at once unless the engine is full, then waits for room.
        """
        self.capacity.acquire()
        limit = settings.ENGINE_ADMIT_LAG_SECONDS
        if limit:
            # A loop already late takes no new turn until it catches up: the turns it
            # runs keep their pace, and the rest waits in the queue (for any process).
            while process_loop.lag_now() > limit:
                time.sleep(LAG_TICK_SECONDS)
        process_loop.call_soon(self._start, conversation_id)

    def _start(self, conversation_id: int) -> None:
        if conversation_id in self.running:
            # This process's run of the conversation looks for new messages before it ends.
            self.capacity.release()
            return
        self.running.add(conversation_id)
        metrics.turn_started()
        loop = asyncio.get_running_loop()
        if self.listener is None or self.listener.done():
            self.listener = loop.create_task(self._listen())
        if self.census is None or self.census.done():
            self.census = loop.create_task(self._count_streams())
        task = loop.create_task(self._run(conversation_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for every running turn to finish."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def settle(self, timeout: float) -> None:
        """Let this process's work in flight end: turns, then their events and thread calls.

        Turns still running after `timeout` seconds are cancelled; their conversations
        stay `processing` and the sweeper answers them.
        """
        await asyncio.sleep(0)  # turns submitted from other threads just before
        try:
            await asyncio.wait_for(asyncio.shield(self.drain()), timeout)
        except TimeoutError:
            logger.warning("cancelling %d turns still running after %ss", len(self.tasks), timeout)
            for task in list(self.tasks):
                task.cancel()
            await self.drain()
        await events.flush()
        await process_loop.threads_idle()

    async def _listen(self) -> None:
        """Wake the turn whose user wrote again (ingest publishes the conversation id)."""
        while True:
            pubsub = get_async_redis().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(INTERRUPT_CHANNEL)
                async for message in pubsub.listen():
                    event = self.interrupts.get(int(message["data"]))
                    if event is not None:
                        event.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis away: answers finish meanwhile
                logger.warning("not listening for new messages during answers; retrying")
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()

    async def _count_streams(self) -> None:
        """Every second: say how many answers stream here, learn how many do elsewhere."""
        while True:
            try:
                self.streams_elsewhere = await streams_elsewhere(liveness.id, self.streams)
                _census_failed.recovered()
            except redis.RedisError as error:
                # Paced by this process's own answers until Redis answers again.
                self.streams_elsewhere = 0
                _census_failed.warning("could not count the answers streaming: %s", error)
            await asyncio.sleep(STREAMS_EVERY_SECONDS)

    # A conversation's run -------------------------------------------------------------

    async def _run(self, conversation_id: int) -> None:
        with log_context(conversation=conversation_id):
            await self._run_logged(conversation_id)

    async def _run_logged(self, conversation_id: int) -> None:
        try:
            while True:
                try:
                    locked = await self._lock(conversation_id)
                except redis.RedisError as error:
                    # Redis restarting: the turn is asked for again (this process holds
                    # the task until the broker answers; the sweeper is the backstop).
                    logger.warning("no turn lock (%s); the turn is asked for again", error)
                    await process_loop.db(dispatch_turn, conversation_id, 1.0)
                    return
                if not locked:
                    # Another process runs this conversation; it looks for new
                    # messages after releasing its lock, so nothing is left behind.
                    return
                waiting = False
                try:
                    # Everything pending now is answered together in one turn.
                    prepared = await process_loop.db(turn_start, conversation_id=conversation_id)
                    if isinstance(prepared, SkillTurn):
                        await self._skill_turn(prepared)
                    elif prepared is not None:
                        waiting = await self._turn(conversation_id, prepared)
                finally:
                    await self._unlock(conversation_id)
                if waiting:
                    return  # the model is out: a later turn (scheduled) tries again
                # What arrived meanwhile (its task may have found the lock busy and
                # ended) is answered by the next turn of this run.
                if not await process_loop.db(turn_pending_exists, conversation_id=conversation_id):
                    return
        except Exception:
            # Left `processing`: the sweeper gives the conversation another turn.
            logger.exception("the turn of conversation %s failed", conversation_id)
        finally:
            self.running.discard(conversation_id)
            metrics.turn_ended()
            self.capacity.release()
            liveness.finished(conversation_id)

    async def _skill_turn(self, turn: SkillTurn) -> None:
        """A routing rule's skill answers: run on the I/O threads (it may wait on an outside
        service for its whole time limit), recorded on a database thread."""
        outcome = await process_loop.blocking(skill_turn_run, turn=turn)
        await process_loop.db(skill_turn_record, turn=turn, outcome=outcome)

    async def _turn(self, conversation_id: int, prepared: PreparedTurn) -> bool:
        """Answer one prepared turn; True when the model is out and the turn waits."""
        if prepared.answered:  # from the response cache
            await amessage_deliver(message_id=prepared.answer.pk, message=prepared.answer)
            return False
        stream = ChatStream(prepared, engine=self)
        answer = prepared.answer

        def on_delta(delta: str) -> None:
            if answer.first_token_at is None:
                answer.first_token_at = timezone.now()
                metrics.first_token_record(
                    platform=prepared.conversation.bot.platform,
                    received_at=min(m.received_at for m in prepared.pending),
                    first_token_at=answer.first_token_at,
                )
            publish_now(conversation_id, TokenEvent(message_id=answer.pk, delta=delta))
            stream.push(delta)

        stream.start()
        model = asyncio.ensure_future(
            astream_reply(
                chain=prepared.chain,
                build=prepared.build,
                on_delta=on_delta,
                tools=prepared.tools,
            )
        )
        try:
            stops = prepared.conversation.bot.while_answering == WhileAnswering.INTERRUPT
            if stops and await self._interrupted(conversation_id, model):
                await stream.close()
                await self._stop(prepared, stream)
                return False
            reply = await model
        except ModelError as error:
            await stream.close()
            if await process_loop.db(turn_model_wait, prepared=prepared, error=error):
                return True  # a turn is scheduled for later
            await process_loop.db(turn_model_failed, prepared=prepared, error=error)
            return False
        finally:
            if not model.done():  # the turn itself failed: the model call goes with it
                model.cancel()
            await stream.close()
        if await process_loop.db(turn_record, prepared=prepared, text=reply.text, reply=reply):
            # A failed streaming update may have changed the chat (a group upgraded to a
            # supergroup moves the conversation): then the delivery reads it again.
            await amessage_deliver(message_id=answer.pk, message=None if stream.failed else answer)
        await self._ask_names(prepared)
        return False

    async def _ask_names(self, prepared: PreparedTurn) -> None:
        """Once the answer is out, have the names of senders the platform names by id only
        looked up (Feishu): never before the answer, nor racing it for the platform's API."""
        unnamed = senders_unnamed(
            conversation=prepared.conversation,
            senders=[message.sender_id for message in prepared.pending],
        )
        if unnamed:
            await process_loop.db(
                sender_names_ask,
                conversation_id=prepared.conversation.pk,
                bot_id=prepared.conversation.bot_id,
                senders=unnamed,
            )

    async def _interrupted(self, conversation_id: int, model: asyncio.Future) -> bool:
        """Wait for the model; True (the model call cancelled) when the user wrote again."""
        event = self.interrupts[conversation_id] = asyncio.Event()
        try:
            while not model.done():
                woken = asyncio.ensure_future(event.wait())
                await asyncio.wait({model, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if not event.is_set():
                    break
                event.clear()
                # The signal may be about a message this turn already claimed.
                if await process_loop.db(turn_new_message_exists, conversation_id=conversation_id):
                    model.cancel()
                    await asyncio.gather(model, return_exceptions=True)
                    return True
            return False
        finally:
            self.interrupts.pop(conversation_id, None)

    async def _stop(self, prepared: PreparedTurn, stream: ChatStream) -> None:
        """Keep what the stopped answer had written; the chat shows exactly that."""
        text = stream.text
        if not await process_loop.db(turn_interrupt, prepared=prepared, text=text):
            return
        metrics.turn_interrupted()
        if text and stream.outbound.platform_message_id and not stream.failed:
            try:
                await platform_stream_update(stream.adapter, stream.outbound, text)
            except DeliveryError as error:
                logger.warning("could not show the stopped answer's last text: %s", error)

    # The conversation lock, with a heartbeat (apps.core.locks) ------------------------

    async def _lock(self, conversation_id: int) -> bool:
        return await held_locks.acquire(turn_lock_key(conversation_id))

    async def _unlock(self, conversation_id: int) -> None:
        await held_locks.release(turn_lock_key(conversation_id))


class ChatStream:
    """Shows an answer in the chat while the model writes it, without ever holding it up.

    The model's reader only appends text (`push`). A separate task (the pump) sends
    the latest text when the platform's pace allows: at most one update per
    `stream_interval`, counted from the end of the previous update, and stretched
    when many answers stream at once, in this and the other worker processes (then the
    first update waits as well, so short answers arrive whole, in one call).
    Intermediate texts are skipped: the latest wins. Another small task shows
    "typing…" (repeated) while no text is shown after a second (stretched alike in a
    crowd).
    """

    def __init__(self, prepared: PreparedTurn, *, engine: TurnEngine):
        self.prepared = prepared
        self.adapter = prepared.adapter
        self.outbound = prepared.outbound
        self.engine = engine
        self.interval = getattr(self.adapter, "stream_interval", None)
        self.text = ""
        self.changed = asyncio.Event()
        self.closed = False
        self.updating = False
        self.failed = False  # a streaming update failed
        self.pump: asyncio.Task | None = None
        self.typing: asyncio.Task | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.typing = loop.create_task(self._keep_typing())
        if self.interval is not None:
            self.engine.streams += 1
            self.pump = loop.create_task(self._pump())

    def push(self, delta: str) -> None:
        self.text += delta
        self.changed.set()

    async def close(self) -> None:
        """Stop streaming; an update already on its way is let finish (never cut in half)."""
        if self.closed:
            return
        self.closed = True
        if self.typing is not None:
            self.typing.cancel()
        if self.pump is not None:
            self.engine.streams -= 1
            if self.updating:
                self.changed.set()
                await asyncio.gather(self.pump, return_exceptions=True)
            else:
                self.pump.cancel()

    def _crowd(self) -> float:
        """How many times more answers stream (in every worker process) than the
        platform's pace allows; at least 1."""
        streams = self.engine.streams + self.engine.streams_elsewhere
        return max(1.0, streams / settings.ENGINE_STREAMS_AT_FULL_PACE)

    def _pause(self, interval: float) -> float:
        """Seconds between updates: the platform's pace, longer when many answers stream."""
        return interval * self._crowd()

    async def _pump(self) -> None:
        interval = self.interval
        assert interval is not None  # start() runs the pump only for a streaming platform
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_at: float | None = None  # the first update's time depends on the crowd then
        while not self.closed:
            await self.changed.wait()
            if next_at is None:
                # Crowded, the first update waits too, by as many answers as stream when
                # the first text is there: an answer done within that wait is shown once,
                # whole, by its delivery (one platform call instead of two or more).
                next_at = started + self._pause(interval) - interval
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.closed:
                return
            self.changed.clear()
            self.updating = True
            try:
                platform_message_id = await platform_stream_update(
                    self.adapter, self.outbound, self.text
                )
            except DeliveryError as error:
                # The final delivery still sends the whole answer (re-read, so into the
                # chat's new id when the platform said it moved).
                logger.warning("streaming to the chat stopped: %s", error)
                if error.chat_moved is not None:
                    await process_loop.db(
                        chat_migrate,
                        bot=self.adapter.bot,
                        old_chat_id=error.chat_moved.old_chat_id,
                        new_chat_id=error.chat_moved.new_chat_id,
                    )
                self.failed = True
                return
            finally:
                self.updating = False
            if platform_message_id and not self.outbound.platform_message_id:
                self.outbound = replace(self.outbound, platform_message_id=platform_message_id)
                if self.typing is not None:
                    self.typing.cancel()
                # Recorded at once (Redis first: no thread hop), so a retried delivery or
                # the turn after a lost worker edits this message, never sends another.
                await streamed_remember(self.prepared.answer.pk, platform_message_id)
                await process_loop.db(
                    turn_stream_started,
                    prepared=self.prepared,
                    platform_message_id=platform_message_id,
                )
            next_at = loop.time() + self._pause(interval)

    async def _keep_typing(self) -> None:
        # Only when the answer keeps the user waiting: a model that starts within a second
        # shows its text instead, and the chat is spared a call. Crowded, that second is
        # stretched as the updates are (the first update comes before it): only a model
        # slow to write has "typing…" shown, and short answers cost one call in all.
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (delay := started + TYPING_AFTER_SECONDS * self._crowd() - loop.time()) > 0:
            await asyncio.sleep(delay)
        every = getattr(self.adapter, "typing_every", None)
        for _ in range(TYPING_REPEATS if every else 1):
            if self.outbound.platform_message_id:
                return
            await platform_typing(self.adapter, self.outbound)
            if every:
                await asyncio.sleep(every)


turn_engine = TurnEngine()
