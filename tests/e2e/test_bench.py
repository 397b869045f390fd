"""The benchmark keeps working: `bench/run.py --quick --json FILE` in a tiny mode (a few messages per stage) writes
one object with every stage and every figure, so the harness cannot rot between real runs. Speed itself is shown
by the benchmark, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_tiny_run_writes_the_machine_readable_result(tmp_path):
    out = tmp_path / "bench.json"
    docs = ROOT / "docs" / "benchmarks.md"
    before = docs.stat().st_mtime_ns
    tiny = [
        "--orders",
        "30",
        "--paced",
        "10",
        "--issue-orders",
        "10",
        "--issue-paced",
        "10",
        "--render-orders",
        "5",
        "--render-paced",
        "5",
        "--pipeline-orders",
        "5",
        "--pipeline-paced",
        "5",
    ]
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(out), *tiny],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert list(result) == ["ceiling", "ingest", "issue", "render", "pipeline"]
    for name, stage in result.items():
        assert set(stage) == {"throughput", "ratio", "p50_ms", "p99_ms", "peak_rss_mib", "count"}, name
        assert stage["throughput"] > 0 and stage["ratio"] > 0 and 0 < stage["p50_ms"] <= stage["p99_ms"], name
        assert 0 < stage["peak_rss_mib"] < 2048, name
    assert result["ceiling"]["ratio"] == 1.0 and result["ingest"]["count"] == 30
    assert docs.stat().st_mtime_ns == before  # a quick run leaves the published figures alone
