"""Run several fapiao processes as one (``fapiao dev``, ``fapiao worker all``) and stop them all, in order, on
Ctrl-C or SIGTERM: children first, then the dev mailbox, then the embedded broker. Children also die with the
parent (Linux ``PR_SET_PDEATHSIG``), so even a killed supervisor leaves no process behind.

With ``restart=True`` (``fapiao dev``) a child that dies is started again after a backoff (1 s, doubling, at most
30 s), and the supervisor says so; a child that keeps dying within a minute of its start (a bad setting, say) stops
everything after ``give_up_after`` tries instead of looping forever."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

log = logging.getLogger("fapiao.supervisor")


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def replica_ports(names: Sequence[str], replicas: int, base_port: int) -> list[tuple[str, str, int]]:
    """(child name, worker name, /metrics port) of each process when every worker kind in ``names`` runs as
    ``replicas`` processes: replica ``r`` of the ``i``-th kind gets ``base_port + i * replicas + r``. One replica
    keeps the plain worker name (and the port layout of a single process per kind)."""
    return [
        (name if replicas == 1 else f"{name}-{r + 1}", name, base_port + i * replicas + r)
        for i, name in enumerate(names)
        for r in range(replicas)
    ]


def spawn_replicas(sup: "Supervisor", names: Sequence[str], replicas: int, base_port: int) -> None:
    """Start ``replicas`` processes of each worker kind. They join one consumer group per kind, so the group
    spreads the partitions across them (as many busy replicas as partitions, at most)."""
    for child, name, port in replica_ports(names, replicas, base_port):
        sup.spawn(child, "worker", name, env={"FAPIAO_WORKER_PORT": str(port), "FAPIAO_WORKER_REPLICAS": "1"})


@dataclass
class Supervisor:
    env: dict[str, str]
    children: dict[str, subprocess.Popen] = field(default_factory=dict)
    restart: bool = False
    backoff: float = 1.0  # first wait before a restart; doubles per quick death, at most max_backoff
    max_backoff: float = 30.0
    stable_after: float = 60.0  # a child that lived this long has its backoff and death count reset
    give_up_after: int = 5  # quick deaths in a row before everything stops
    command: tuple[str, ...] = (sys.executable, "-m", "fapiao.cli")
    _specs: dict[str, tuple[tuple[str, ...], dict[str, str] | None]] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _deaths: dict[str, int] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self._specs[name] = (args, env)
        self._started[name] = time.monotonic()
        self.children[name] = subprocess.Popen(
            [*self.command, *args],
            env={**self.env, **(env or {})},
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )

    def _on_exit(self, name: str, code: int) -> int | None:
        """A child exited: schedule its restart, or return the exit code that stops everything."""
        if not self.restart:
            log.error("%s exited with %s; stopping everything", name, code)
            return code or 1
        quick = time.monotonic() - self._started[name] < self.stable_after
        self._deaths[name] = self._deaths.get(name, 0) + 1 if quick else 1
        if self._deaths[name] > self.give_up_after:
            log.error(
                "%s exited with %s, %d times in a row within %.0f s of starting; giving up and stopping everything",
                name,
                code,
                self._deaths[name],
                self.stable_after,
            )
            return code or 1
        delay = min(self.max_backoff, self.backoff * 2 ** (self._deaths[name] - 1))
        log.warning(
            "%s exited with %s; restarting it in %g s (restart %d of at most %d in a row)",
            name,
            code,
            delay,
            self._deaths[name],
            self.give_up_after,
        )
        self._due[name] = time.monotonic() + delay
        return None

    def wait(self, deadline: float | None = None) -> int:
        """Block until a signal arrives, a child exits (without ``restart``), or ``time.monotonic()`` passes
        ``deadline``; returns a process exit code."""
        stop = {"sig": None}

        def on_signal(signum, _frame):
            stop["sig"] = signum

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while stop["sig"] is None and (deadline is None or time.monotonic() < deadline):
                for name, proc in list(self.children.items()):
                    if name in self._due:
                        if time.monotonic() >= self._due[name]:
                            del self._due[name]
                            args, env = self._specs[name]
                            self.spawn(name, *args, env=env)
                            log.warning("%s restarted (pid %d)", name, self.children[name].pid)
                    elif proc.poll() is not None:
                        code = self._on_exit(name, proc.returncode)
                        if code is not None:
                            return code
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
