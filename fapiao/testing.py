"""Run the real system (workers and gateway as processes) against a given broker and database, and read its
topics. Used by the end-to-end tests and the benchmark, so both exercise exactly what production runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from fapiao.adapters.kafka import TopicReader  # noqa: F401  (tests and the bench read topics with it)
from fapiao.config import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAPIAO_")}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        value = getattr(value, "get_secret_value", lambda: value)()
        env[f"FAPIAO_{name.upper()}"] = str(getattr(value, "value", value))
    env.update(
        FAPIAO_KAFKA_BOOTSTRAP=settings.bootstrap_servers, FAPIAO_DATABASE_URL=settings.db_url, PYTHONUNBUFFERED="1"
    )
    return env


class SystemProcess:
    """One ``fapiao ...`` command in its own process group, logging to a file."""

    def __init__(self, settings: Settings, *args: str, log: Path):
        self.log_path = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fapiao.cli", *args],
            env=settings_env(settings),
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.1)


def json_value(record) -> dict:
    return json.loads(record.value)


def processes_with_env(marker: str) -> list[int]:
    """PIDs of live processes whose environment contains ``marker`` (e.g. a unique FAPIAO_DATA_DIR)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "State:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
