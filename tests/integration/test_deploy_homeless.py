"""The image's user may have no home, or one it cannot write: issuing an invoice (numbering, recording, rendering
its PDF, HTML and JSON) must not need one. The issue-and-render test runs in a child process whose HOME does not
exist (and must still not exist afterwards: as root, a write would create it) or cannot be written (``/proc``: no
file or directory can be made there, even by root), with no XDG_CACHE_HOME, from a working directory that is not
the repository (and must stay empty)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ISSUE_AND_RENDER = "tests/integration/test_render.py::test_renders_records_then_asks_for_delivery"


@pytest.mark.parametrize("home", ["missing", "read-only"])
def test_issuing_needs_no_home_directory(home, tmp_path):
    home_dir = f"/nonexistent-fapiao-{uuid.uuid4().hex[:8]}" if home == "missing" else "/proc"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "FAPIAO_"))}
    env.update(HOME=home_dir, PYTHONDONTWRITEBYTECODE="1")
    if os.environ.get("FAPIAO_TEST_DATABASE_URL"):
        env["FAPIAO_TEST_DATABASE_URL"] = os.environ["FAPIAO_TEST_DATABASE_URL"]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            "--basetemp",
            str(tmp_path / "t"),
            str(ROOT / ISSUE_AND_RENDER),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
    if home == "missing":
        assert not os.path.exists(home_dir), f"something wrote under HOME: {os.listdir(home_dir)}"
    assert not any(cwd.iterdir()), f"something wrote into the working directory: {list(cwd.iterdir())}"
