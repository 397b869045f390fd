"""One log format per run, for every process (workers, gateway, CLI): JSON lines for machines
(``FAPIAO_LOG_FORMAT=json``, what containers use), or one readable line per record for a person at a terminal
(``text``); ``auto`` picks text on a terminal and JSON otherwise. Colour only on a terminal, never an ANSI code in a
file or a pipe. The gateway's access log goes through the same formatter, with the request's fields.

Each record carries the ids of what is being processed (order key, invoice number, event id) from a context
variable that the worker runtime sets per event.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
import sys
import time
from contextlib import contextmanager
from typing import IO, Any

from aiohttp.abc import AbstractAccessLogger

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("fapiao_log_context", default=None)
EXTRA_KEYS = ("order_key", "invoice_number", "event_id", "request_id", "topic", "partition", "offset")
HTTP_KEYS = ("method", "path", "status", "duration_ms", "remote")
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LEVELS = {"warn": "WARNING", "crit": "CRITICAL"}


def _stamp_context_on_records() -> None:
    """Copy the context onto each record where it is created: handlers may format on another thread."""
    make = logging.getLogRecordFactory()
    if getattr(make, "_fapiao", False):
        return

    def factory(*args, **kwargs):
        record = make(*args, **kwargs)
        record.fapiao_context = _context.get() or {}
        return record

    factory._fapiao = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out = dict(getattr(record, "fapiao_context", None) or {})
    for key in (*EXTRA_KEYS, *HTTP_KEYS):
        if key in record.__dict__:
            out[key] = record.__dict__[key]
    return out


def _message(record: logging.LogRecord) -> str:
    # Libraries (Faust's tables, Tansu's log lines) sometimes colour their own messages.
    return _ANSI.sub("", record.getMessage())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the context's ids and any request fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
            **_fields(record),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``12:00:01.234 WARNING fapiao.worker message key=value ...``; the level in colour on a terminal only."""

    COLOURS = {"DEBUG": "\x1b[2m", "WARNING": "\x1b[33m", "ERROR": "\x1b[31m", "CRITICAL": "\x1b[1;31m"}

    def __init__(self, colour: bool = False):
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname:<7}"
        if self.colour and record.levelname in self.COLOURS:
            level = f"{self.COLOURS[record.levelname]}{level}\x1b[0m"
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{stamp} {level} {record.name} {_message(record)}" + (f"  {extras}" if extras else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def resolve_format(fmt: str, stream: IO[str] | None = None) -> str:
    """``auto`` becomes ``text`` when the log stream is a terminal and ``json`` otherwise."""
    if fmt != "auto":
        return fmt
    stream = stream or sys.stderr
    return "text" if getattr(stream, "isatty", lambda: False)() else "json"


@contextmanager
def log_context(**values):
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def logging_config(level: str, fmt: str) -> dict:
    """A ``logging.config.dictConfig`` document: one handler on stderr with the run's one format."""
    _stamp_context_on_records()
    fmt = resolve_format(fmt, sys.stderr)
    if fmt == "json":
        formatter: dict[str, Any] = {"()": JsonFormatter}
    else:
        formatter = {"()": TextFormatter, "colour": bool(getattr(sys.stderr, "isatty", lambda: False)())}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": _LEVELS.get(level, level.upper())},
        # The access log is wanted at info even when the rest is at warn: it is the gateway's request record.
        "loggers": {"aiohttp.access": {"level": "INFO"}},
    }


def setup_logging(level: str, fmt: str) -> None:
    """Configure the root logger for a process that is not a Faust worker (the gateway, CLI commands)."""
    logging.config.dictConfig(logging_config(level, fmt))


class AccessLog(AbstractAccessLogger):
    """aiohttp's access log as one record per request with its fields (method, path, status, duration), so it
    comes out in the run's format like every other line. The path is the route's pattern (``/q/{token}``), never
    the request's: QR and download tokens are credentials and stay out of the logs. Probes and scrapes are
    logged only when they fail."""

    def log(self, request, response, time: float) -> None:
        resource = getattr(getattr(request.match_info, "route", None), "resource", None)
        path = resource.canonical if resource is not None else "(no route)"
        if path in QUIET_PATHS and response.status < 400:  # probes every few seconds: only their failures
            return
        fields = {
            "method": request.method,
            "path": path,
            "status": response.status,
            "duration_ms": round(time * 1000, 1),
            "remote": request.remote,
        }
        self.logger.info("%s %s %s %.1fms", request.method, path, response.status, time * 1000, extra=fields)
