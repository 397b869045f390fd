"""The CLI's composition root: settings loaded once per invocation, the database sessions and the Kafka producer
built from them on first use. Every command receives it through click's context object (``@pass_app``)."""

from __future__ import annotations

from contextlib import contextmanager
from functools import cached_property
from typing import Iterator, Sequence

import click

from fapiao.config import ConfigError, Settings, load_settings


class AppContext:
    """What commands share: one ``Settings``, the composition root built from it (sessions, link minter...),
    a producer on demand."""

    @cached_property
    def settings(self) -> Settings:
        try:
            return load_settings()
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    @cached_property
    def root(self):
        """The process's composition root (``fapiao.bootstrap``), built from ``settings`` on first use."""
        from fapiao.bootstrap import Bootstrap

        return Bootstrap(self.settings)

    @property
    def sessions(self):
        return self.root.sessions

    @contextmanager
    def producer(self, flush_timeout: float = 30) -> Iterator:
        """A kafka-python producer that is flushed and closed when the block ends."""
        from fapiao.adapters.kafka import producer

        p = producer(self.settings)
        try:
            yield p
            p.flush(timeout=flush_timeout)
        finally:
            p.close()

    def publish(self, topic: str, messages: Sequence[tuple[bytes | None, bytes | None]]) -> int:
        """Send ``(key, value)`` pairs to ``topic`` and wait until the broker has them all (a None value is a
        tombstone: on a compacted topic it removes the key)."""
        with self.producer() as p:
            for key, value in messages:
                p.send(topic, key=key, value=value)
        return len(messages)


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def report_errors(errors: dict[str, str]) -> None:
    """Field errors (field → rule) on stderr, then exit 1: the shape every settings command reports in."""
    for field, rule in errors.items():
        click.echo(f"{field}: {rule}", err=True)
    raise SystemExit(1)
