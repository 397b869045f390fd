"""FAPIAO_TEST_KAFKA_BOOTSTRAP points the suite at a broker it did not start (an Apache Kafka, say): a child
pytest given the address of a broker started here runs a broker test, and its topics appear on that broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from fapiao.adapters.kafka import EmbeddedBroker, free_port

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_the_suite_runs_against_an_external_broker(tmp_path):
    external = EmbeddedBroker(free_port(), tmp_path / "external.log").start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAPIAO_")}
        env["FAPIAO_TEST_KAFKA_BOOTSTRAP"] = external.bootstrap
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--basetemp",
                str(tmp_path / "t"),
                str(ROOT / "tests" / "integration" / "test_deploy_probes.py") + "::test_gateway_readyz_means_ready",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        admin = KafkaAdminClient(bootstrap_servers=[external.bootstrap])
        try:
            topics = admin.list_topics()
        finally:
            admin.close()
        assert any(t.endswith(".buyer.submitted") for t in topics), topics  # the child's topics are here
    finally:
        external.stop()
