"""The scan side's copy of the merchant settings: read from the compacted settings topic (同步至移动云), never
from the admin database, so a synced change shows within seconds and an unsynced one not at all."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from aiokafka import AIOKafkaConsumer

from fapiao.config import Settings
from schemas.settings import SettingsRecord

log = logging.getLogger("fapiao.gateway.settings")


class SettingsCache:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.items: dict[str, SettingsRecord] = {}
        self._task: asyncio.Task | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._loaded = False
        self.applied = 0  # good records applied since start
        self.errors = 0  # records skipped: no key, a key that is not text, a value that is not a SettingsRecord
        self.last_good_at: datetime | None = None
        self.last_error: str | None = None

    async def loaded(self) -> bool:
        """True once the cache has read the settings topic up to the end it had when first asked (the gateway's
        readiness); after that it stays true, later records are live updates."""
        if self._loaded:
            return True
        consumer = self._consumer
        if consumer is None or not consumer.assignment():
            return False
        ends = await consumer.end_offsets(list(consumer.assignment()))
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return False
        self._loaded = True
        return True

    def get(self, key: str) -> SettingsRecord | None:
        return self.items.get(key)

    def apply(self, key: bytes | None, value: bytes | None, where: str = "") -> bool:
        """Apply one record of the settings topic; a bad one (no key, a key that is not text, a value that is
        not a SettingsRecord) is skipped, counted and logged, and the cache keeps what it had. True if applied."""
        try:
            if key is None:
                raise ValueError("record has no key")
            name = key.decode("utf-8")
            if value is None:
                self.items.pop(name, None)
            else:
                self.items[name] = SettingsRecord.model_validate_json(value)
        except Exception as exc:  # one bad record must never stop the scan side from seeing later ones
            self.errors += 1
            self.last_error = f"{where} {type(exc).__name__}: {str(exc)[:200]}".strip()
            log.warning("skipping bad settings record %s key=%r: %s", where, key[:100] if key else key, exc)
            return False
        self.applied += 1
        self.last_good_at = datetime.now(timezone.utc)
        return True

    def stats(self) -> dict:
        """What /readyz and the admin page show about the scan side's copy of the settings."""
        return {
            "records": len(self.items),
            "applied": self.applied,
            "errors": self.errors,
            "last_good_at": self.last_good_at.isoformat() if self.last_good_at else None,
            "last_error": self.last_error,
        }

    async def start(self) -> None:
        s = self.settings
        self._consumer = consumer = AIOKafkaConsumer(
            s.topics["settings"],
            bootstrap_servers=s.bootstrap_servers.split(","),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
        )
        await consumer.start()
        self._task = asyncio.create_task(self._run(consumer))

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep serving what we have; the consumer reconnects
                log.warning("settings topic read failed: %s", exc)
                await asyncio.sleep(1)
                continue
            for tp, records in batch.items():
                for r in records:
                    self.apply(r.key, r.value, f"{tp.topic}:{tp.partition}:{r.offset}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._consumer:
            await self._consumer.stop()
