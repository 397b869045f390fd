"""Configuration, migrations, and `fapiao dev` start-up and shutdown."""

import os
import signal
import subprocess
import sys
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner

from fapiao.adapters.db import Base, make_engine
from fapiao.adapters.kafka import free_port, free_ports, port_in_use
from fapiao.cli import main
from fapiao.config import ConfigError, load_settings
from fapiao.testing import processes_with_env, wait_http


def test_defaults_are_embedded(monkeypatch):
    for k in list(os.environ):
        if k.startswith("FAPIAO_"):
            monkeypatch.delenv(k)
    s = load_settings(_env_file=None)
    assert s.embedded_kafka and s.bootstrap_servers == "127.0.0.1:29092"
    assert s.db_url == "sqlite:///var/fapiao.db"


def test_external_kafka_and_database(monkeypatch):
    monkeypatch.setenv("FAPIAO_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("FAPIAO_DATABASE_URL", "postgresql://u@db/fapiao")
    s = load_settings(_env_file=None)
    assert not s.embedded_kafka and s.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert s.db_url == "postgresql://u@db/fapiao"


@pytest.mark.parametrize(
    "var,value",
    [
        ("FAPIAO_HTTP_PORT", "eighty"),
        ("FAPIAO_TOPIC_PARTITIONS", "0"),
        ("FAPIAO_SMTP_SECURITY", "tls1.0"),
        ("FAPIAO_LINK_SECRET", "short"),
        ("FAPIAO_TOPIC_PREFIX", "has space"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None)
    assert var in str(exc.value)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code != 0 and var in result.output


def test_migrations_match_models(db_url):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


@pytest.mark.slow
def test_dev_runs_everything_and_ctrl_c_leaves_no_process(tmp_path):
    ports = {
        "FAPIAO_EMBEDDED_KAFKA_PORT": free_port(),
        "FAPIAO_HTTP_PORT": free_port(),
        "FAPIAO_SMTP_PORT": free_port(),
        "FAPIAO_WORKER_PORT": free_ports(4),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAPIAO_")}
    env.update({k: str(v) for k, v in ports.items()}, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fapiao.cli", "dev", "--demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 120
        while not any("open the buyer page:" in l for l in lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        link = next(l for l in lines if "open the buyer page:" in l).split()[-1]
        wait_http(link)
        assert port_in_use(ports["FAPIAO_EMBEDDED_KAFKA_PORT"])
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed assertion above: leave nothing running behind the test
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out
    assert "fapiao stopped" in out
    time.sleep(0.5)
    assert not port_in_use(ports["FAPIAO_EMBEDDED_KAFKA_PORT"]), "the embedded broker outlived fapiao dev"
    assert not port_in_use(ports["FAPIAO_HTTP_PORT"])
    marker = f"FAPIAO_HTTP_PORT={ports['FAPIAO_HTTP_PORT']}"
    assert processes_with_env(marker) == []
    assert (tmp_path / "var" / "fapiao.db").exists()


def test_readme_documents_every_setting():
    from pathlib import Path

    from fapiao.config import Settings

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [f"FAPIAO_{n.upper()}" for n in Settings.model_fields if f"`FAPIAO_{n.upper()}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
