"""The loop every agent shares: parse, call the plain service function (retrying transient errors), publish what
it returns; dead-letter what cannot be processed so the partition keeps flowing.

Dead-letter headers use Spring Kafka's ``kafka_dlt-*`` names (values are UTF-8 text), plus ``fapiao-error-kind``:
``poison`` (the bytes are not a valid event), ``exhausted`` (a transient error outlived its retries),
``handler`` (an unexpected error in the handler) or ``unpublishable`` (the handler succeeded but an outcome could
not be published, e.g. larger than the broker's message size). A record too large for the dead-letter topic
itself keeps its first bytes, with ``fapiao-value-truncated`` giving the original size.

Nothing is acknowledged that was neither published nor dead-lettered: outcomes are awaited until the broker has
them, and if even the dead letter cannot be written the process exits at once (status 70), before Faust can
acknowledge the record, so it is consumed again after the restart (issue #12 item 1).
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from typing import Any, Callable, TypeVar

from sqlalchemy.exc import OperationalError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from fapiao.logs import log_context
from fapiao.errors import Transient
from fapiao.services import Outcome
from workers.observability import DEAD_LETTERS, EVENTS, RETRIES

log = logging.getLogger("fapiao.worker")

TRANSIENT = (Transient, OperationalError)
T = TypeVar("T")
DLQ_MAX_VALUE = 512 * 1024
"""A dead letter keeps at most this much of the record's value (the rest is named by its size in a header)."""


class Runtime:
    """The agents of one consumed stage in a worker: each record is parsed, handed to a plain service function
    (``Transient`` and ``OperationalError`` retried, bounded and jittered), and its outcomes published and awaited;
    what cannot be processed goes to ``<topic>.dlq`` with the error in its headers. Commits nothing itself: Faust
    acknowledges a record only after that, so a crash means it is consumed again and handlers must be idempotent."""

    def __init__(self, app, settings, consumed_stage: str):
        self.app = app
        self.settings = settings
        self.stage = consumed_stage
        names = settings.topics
        self.outputs: dict[str, Any] = {}
        self._topic = lambda name: app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
            partitions=settings.topic_partitions,
        )
        self.worker = app.conf.id
        self.source = self._topic(names[consumed_stage])
        self.dlq = self._topic(names.dlq(consumed_stage))
        self.processed = 0
        self.in_thread = True
        """Handlers run in a thread (the event loop keeps heartbeating and fetching meanwhile); ``agent(...,
        in_thread=False)`` runs them on the loop itself."""

    def output(self, stage: str):
        if stage not in self.outputs:
            self.outputs[stage] = self._topic(self.settings.topics[stage])
        return self.outputs[stage]

    async def _send(self, outcomes: list[Outcome]) -> list:
        """Hand the outcomes to the producer; returns the futures that resolve when the broker has them. Straight
        to Faust's producer (aiokafka underneath): a Topic.send per event costs more than the event's encoding."""
        producer, names = self.app.producer, self.settings.topics
        return [
            await producer.send(
                names[o.stage], o.key, o.event.model_dump_json().encode(), partition=None, timestamp=None, headers=None
            )
            for o in outcomes
        ]

    async def publish(self, outcomes: list[Outcome]) -> None:
        """Publish and wait until the broker has every outcome; raises what the producer raised."""
        for fut in await self._send(outcomes):
            await fut

    async def emit(self, pairs: list[tuple[Any, list[Outcome]]]) -> int:
        """Publish the outcomes of each source message (all handed to the producer first, then awaited, so a batch
        costs one round trip); a message whose outcomes cannot be published is dead-lettered as ``unpublishable``.
        Returns how many messages were published."""
        sent: list[tuple[Any, list, BaseException | None]] = []
        for message, outcomes in pairs:
            try:
                sent.append((message, await self._send(outcomes), None))
            except Exception as exc:  # refused before sending, e.g. MessageSizeTooLargeError
                sent.append((message, [], exc))
        published = 0
        for message, futures, error in sent:
            for fut in futures:
                try:
                    await fut
                except Exception as exc:  # the broker refused it
                    error = error or exc
            if error is None:
                published += 1
            else:
                await self.dead_letter(message, error, "unpublishable")
        return published

    def _headers(self, message, exc: BaseException, kind: str) -> list[tuple[str, bytes]]:
        headers = [
            ("kafka_dlt-original-topic", message.topic),
            ("kafka_dlt-original-partition", str(message.partition)),
            ("kafka_dlt-original-offset", str(message.offset)),
            ("kafka_dlt-original-timestamp", str(int(message.timestamp * 1000)) if message.timestamp else ""),
            ("kafka_dlt-original-consumer-group", self.app.conf.id),
            ("kafka_dlt-exception-fqcn", f"{type(exc).__module__}.{type(exc).__qualname__}"),
            ("kafka_dlt-exception-message", str(exc)[:2000]),
            ("kafka_dlt-exception-stacktrace", "".join(traceback.format_exception(exc))[-8000:]),
            ("fapiao-error-kind", kind),
        ]
        return [(k, v.encode()) for k, v in headers]

    async def dead_letter(self, message, exc: BaseException, kind: str) -> None:
        """Write the record to ``<topic>.dlq`` and wait for the broker to have it. If that fails, exit the process
        (status 70) so the record is never acknowledged."""
        ids = {
            "order_key": message.key.decode("utf-8", "replace") if message.key else None,
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
        }
        log.warning(
            "dead-lettered %s[%s]@%s (%s): %s", message.topic, message.partition, message.offset, kind, exc, extra=ids
        )
        headers = self._headers(message, exc, kind)
        value = message.value
        if value is not None and len(value) > DLQ_MAX_VALUE:
            headers.append(("fapiao-value-truncated", str(len(value)).encode()))
            value = value[:DLQ_MAX_VALUE]
        try:
            await (await self.dlq.send(key=message.key, value=value, headers=headers))
        except Exception:
            log.critical(
                "cannot write the dead letter of %s[%s]@%s; exiting so it is not acknowledged",
                message.topic,
                message.partition,
                message.offset,
                exc_info=True,
                extra=ids,
            )
            logging.shutdown()
            os._exit(70)
        DEAD_LETTERS.labels(self.worker, message.topic, kind).inc()
        EVENTS.labels(self.worker, message.topic, "dead_lettered").inc()

    async def call(self, handler: Callable[[Any], T], parsed: Any) -> T:
        """Run the handler (in a thread unless ``in_thread`` is off), retrying transient errors (``retry_attempts``
        tries, jittered exponential waits up to ``retry_max_wait``); raises the last error when they run out, or any
        other error at once."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT),
            stop=stop_after_attempt(self.settings.retry_attempts),
            wait=wait_random_exponential(multiplier=0.05, max=self.settings.retry_max_wait),
            before_sleep=lambda _state: RETRIES.labels(self.worker, self.source.get_topic_name()).inc(),
            reraise=True,
        ):
            with attempt:
                return await asyncio.to_thread(handler, parsed) if self.in_thread else handler(parsed)
        raise AssertionError("unreachable")

    async def process(self, event, parse: Callable[[bytes], Any], handler: Callable[[Any], list[Outcome]]) -> None:
        message = event.message
        key = message.key.decode("utf-8", "replace") if message.key else None
        with log_context(order_key=key, topic=message.topic, partition=message.partition, offset=message.offset):
            await self._process(event, parse, handler)

    async def _process(self, event, parse, handler) -> None:
        message = event.message
        try:
            parsed = parse(event.value)
        except Exception as exc:  # anything unparsable is poison, whatever the parser raised
            await self.dead_letter(message, exc, "poison")
            return
        try:
            outcomes = await self.call(handler, parsed)
        except TRANSIENT as exc:
            await self.dead_letter(message, exc, "exhausted")
            return
        except Exception as exc:
            log.exception("handler failed on %s[%s]@%s", message.topic, message.partition, message.offset)
            await self.dead_letter(message, exc, "handler")
            return
        if await self.emit([(message, outcomes)]):
            self.processed += 1
            EVENTS.labels(self.worker, message.topic, "processed").inc()

    async def process_batch(self, events, parse, batch_handler, handler) -> None:
        """One call for many events (one database transaction); if the batch fails as a whole, each event goes
        through ``process`` alone, so only a culprit is dead-lettered."""
        good = []
        for event in events:
            try:
                good.append((event, parse(event.value)))
            except Exception as exc:
                await self.dead_letter(event.message, exc, "poison")
        if not good:
            return
        try:
            results = await self.call(batch_handler, [parsed for _, parsed in good])
        except Exception:
            log.warning("a batch of %d failed; processing it one event at a time", len(good), exc_info=True)
            for event, _ in good:
                await self.process(event, parse, handler)
            return
        published = await self.emit([(event.message, outcomes) for (event, _), outcomes in zip(good, results)])
        self.processed += published
        EVENTS.labels(self.worker, self.source.get_topic_name(), "processed").inc(published)

    def agent(
        self,
        name: str,
        parse,
        handler,
        batch_handler=None,
        batch_size: int = 500,
        within: float = 0.005,
        in_thread: bool = True,
    ):
        """Register the agent. With ``batch_handler``, events are taken in batches of up to ``batch_size``,
        waiting at most ``within`` seconds for a batch to fill (faust's take_events acks after we return).
        ``in_thread=False`` runs the handlers on the event loop: for a handler that is all Python CPU work, the
        thread only adds a hop and a fight for the GIL with the loop (order-ingest's paced p99, benchmarks.md),
        but while it runs nothing else does, so a handler that may wait long (on a lock, the network) must not."""
        self.in_thread = in_thread

        async def consume(stream):
            if batch_handler is None:
                async for event in stream.events():
                    await self.process(event, parse, handler)
            else:
                async for events in stream.take_events(batch_size, within=within):
                    await self.process_batch(events, parse, batch_handler, handler)

        consume.__name__ = name.replace("-", "_")
        return self.app.agent(self.source, name=f"fapiao.{name}")(consume)
