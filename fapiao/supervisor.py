"""Run several fapiao processes as one (``fapiao dev``, ``fapiao worker all``) and stop them all, in order, on
Ctrl-C or SIGTERM: children first, then the dev mailbox, then the embedded broker. Children also die with the
parent (Linux ``PR_SET_PDEATHSIG``), so even a killed supervisor leaves no process behind."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Supervisor:
    env: dict[str, str]
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.children[name] = subprocess.Popen(
            [sys.executable, "-m", "fapiao.cli", *args],
            env={**self.env, **(env or {})},
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )

    def wait(self) -> int:
        """Block until a signal arrives or a child exits; returns a process exit code."""
        stop = {"sig": None}

        def on_signal(signum, _frame):
            stop["sig"] = signum

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while stop["sig"] is None:
                for name, proc in self.children.items():
                    if proc.poll() is not None:
                        print(f"fapiao: {name} exited with {proc.returncode}; stopping everything", file=sys.stderr)
                        return proc.returncode or 1
                time.sleep(0.2)
            return 0
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def stop(self, timeout: float = 20.0) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
