"""Structured logs: one JSON object per line, carrying the ids of what is being processed (order key, invoice
number, event id) from a context variable that the worker runtime sets per event."""

from __future__ import annotations

import contextvars
import json
import logging
import time
from contextlib import contextmanager

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("fapiao_log_context", default={})
EXTRA_KEYS = ("order_key", "invoice_number", "event_id", "request_id", "topic", "partition", "offset")


def _stamp_context_on_records() -> None:
    """Copy the context onto each record where it is created: handlers may format on another thread."""
    make = logging.getLogRecordFactory()
    if getattr(make, "_fapiao", False):
        return

    def factory(*args, **kwargs):
        record = make(*args, **kwargs)
        record.fapiao_context = _context.get()
        return record

    factory._fapiao = True
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fapiao_context", {}),
        }
        for key in EXTRA_KEYS:
            if key in record.__dict__:
                doc[key] = record.__dict__[key]
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


@contextmanager
def log_context(**values):
    token = _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def logging_config(level: str, fmt: str) -> dict:
    _stamp_context_on_records()
    formatter = {"()": JsonFormatter} if fmt == "json" else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": {"warn": "WARNING", "crit": "CRITICAL"}.get(level, level.upper())},
    }
