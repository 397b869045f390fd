"""`fapiao dev`'s supervisor restarts a child that dies, with backoff, and says so (in the run's log format); a
child that keeps dying at start stops everything instead of looping forever."""

from __future__ import annotations

import os
import signal
import sys
import time

from fapiao.supervisor import Supervisor

SLEEPER = "import time; time.sleep(60)"
CRASHER = "import sys; sys.exit(3)"


def test_a_killed_child_is_restarted_with_backoff(caplog):
    sup = Supervisor(env=dict(os.environ), restart=True, backoff=0.2, command=(sys.executable, "-c"))
    sup.spawn("worker", SLEEPER)
    first = sup.children["worker"].pid
    try:
        os.kill(first, signal.SIGKILL)
        assert sup.wait(deadline=time.monotonic() + 3) == 0  # nothing stopped: the supervisor kept going
        second = sup.children["worker"]
        assert second.pid != first and second.poll() is None
    finally:
        sup.stop(timeout=5)
    err = caplog.text
    assert f"worker exited with {-signal.SIGKILL}; restarting it in 0.2 s" in err
    assert f"worker restarted (pid {second.pid})" in err


def test_a_child_dying_at_every_start_stops_everything(caplog):
    sup = Supervisor(env=dict(os.environ), restart=True, backoff=0.05, give_up_after=2, command=(sys.executable, "-c"))
    sup.spawn("broken", CRASHER)
    sup.spawn("healthy", SLEEPER)
    try:
        assert sup.wait(deadline=time.monotonic() + 20) == 3
    finally:
        sup.stop(timeout=5)
    assert sup.children["healthy"].poll() is not None  # stop() ended the others too
    err = caplog.text
    assert err.count("broken exited with 3; restarting it in") == 2
    assert "3 times in a row" in err and "giving up and stopping everything" in err


def test_without_restart_a_dead_child_stops_everything(caplog):
    sup = Supervisor(env=dict(os.environ), command=(sys.executable, "-c"))
    sup.spawn("broken", CRASHER)
    try:
        assert sup.wait(deadline=time.monotonic() + 10) == 3
    finally:
        sup.stop(timeout=5)
    assert "broken exited with 3; stopping everything" in caplog.text
