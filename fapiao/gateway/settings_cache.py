"""The scan side's copy of the merchant settings: read from the compacted settings topic (同步至移动云), never
from the admin database, so a synced change shows within seconds and an unsynced one not at all."""

from __future__ import annotations

import asyncio
import logging

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

    def get(self, key: str) -> SettingsRecord | None:
        return self.items.get(key)

    def apply(self, key: bytes, value: bytes | None) -> None:
        name = key.decode()
        if value is None:
            self.items.pop(name, None)
            return
        try:
            self.items[name] = SettingsRecord.model_validate_json(value)
        except ValueError as exc:
            log.warning("ignoring unreadable settings record %s: %s", name, exc)

    async def start(self) -> None:
        s = self.settings
        self._consumer = AIOKafkaConsumer(s.topics["settings"], bootstrap_servers=s.bootstrap_servers.split(","),
                                          group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
                                          fetch_max_wait_ms=s.fetch_max_wait_ms)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=500)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep serving what we have; the consumer reconnects
                log.warning("settings topic read failed: %s", exc)
                await asyncio.sleep(1)
                continue
            for records in batch.values():
                for r in records:
                    self.apply(r.key, r.value)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._consumer:
            await self._consumer.stop()
