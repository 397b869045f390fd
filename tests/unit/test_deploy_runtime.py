"""How the processes behave when operated: settings checked against Kafka's limits, one log format per run (JSON
lines or text, no ANSI codes off a terminal, access log included), a fatal group-join error noticed, the one lag
exporter's series."""

from __future__ import annotations

import io
import json
import logging

import pytest

from fapiao.config import ConfigError, load_settings
from fapiao.logs import AccessLog, JsonFormatter, TextFormatter, log_context, logging_config, resolve_format


@pytest.mark.parametrize("value", ["5.9", "0.5", "1801"])
def test_session_timeout_outside_kafkas_limits_is_refused(monkeypatch, value):
    monkeypatch.setenv("FAPIAO_BROKER_SESSION_TIMEOUT", value)
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None)
    assert "FAPIAO_BROKER_SESSION_TIMEOUT: must be between 6 and 1800 seconds" in str(exc.value)
    assert "group.min.session.timeout.ms" in str(exc.value)


def test_heartbeat_must_be_shorter_than_the_session(monkeypatch):
    monkeypatch.setenv("FAPIAO_BROKER_HEARTBEAT_INTERVAL", "6")
    with pytest.raises(ConfigError, match="FAPIAO_BROKER_HEARTBEAT_INTERVAL .* must be less than"):
        load_settings(_env_file=None)
    monkeypatch.setenv("FAPIAO_BROKER_SESSION_TIMEOUT", "30")
    assert load_settings(_env_file=None).broker_session_timeout == 30


class Tty(io.StringIO):
    def isatty(self):
        return True


def record(msg, *args, name="fapiao.worker", level=logging.WARNING, **extra):
    r = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    r.__dict__.update(extra)
    return r


def test_auto_format_is_text_on_a_terminal_and_json_elsewhere():
    assert resolve_format("auto", Tty()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", Tty()) == "json" and resolve_format("text", io.StringIO()) == "text"


def test_json_lines_carry_the_context_and_no_ansi():
    logging_config("info", "json")  # installs the record factory that stamps the context
    with log_context(order_key="91440300MA5G9GK78Y:B-1"):
        r = logging.getLogger("fapiao.worker").makeRecord(
            "fapiao.worker", logging.WARNING, __file__, 1, "\x1b[31mred\x1b[0m %s", ("text",), None
        )
    doc = json.loads(JsonFormatter().format(r))
    assert doc["message"] == "red text" and doc["level"] == "warning"
    assert doc["order_key"] == "91440300MA5G9GK78Y:B-1"


def test_text_lines_are_colourless_off_a_terminal():
    line = TextFormatter(colour=False).format(record("\x1b[1mbold\x1b[0m", topic="t"))
    assert "\x1b" not in line and line.endswith("WARNING fapiao.worker bold  topic=t")
    assert "\x1b[33m" in TextFormatter(colour=True).format(record("x"))


def test_config_picks_one_formatter_for_the_run(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert logging_config("warn", "auto")["formatters"]["default"]["()"] is JsonFormatter
    monkeypatch.setattr("sys.stderr", Tty())
    config = logging_config("warn", "auto")
    assert config["formatters"]["default"] == {"()": TextFormatter, "colour": True}
    assert config["root"]["level"] == "WARNING" and config["loggers"]["aiohttp.access"]["level"] == "INFO"


def test_access_log_is_a_structured_record_without_tokens():
    class Resource:
        canonical = "/q/{token}"

    class Request:
        method, path, remote = "GET", "/q/SECRET-TOKEN", "10.0.0.1"
        match_info = type("M", (), {"route": type("R", (), {"resource": Resource()})()})()

    class Response:
        status = 200

    seen = []
    logger = logging.getLogger("test.access")
    logger.addHandler(type("H", (logging.Handler,), {"emit": lambda self, r: seen.append(r)})())
    logger.setLevel(logging.INFO)
    AccessLog(logger, "").log(Request(), Response(), 0.0123)
    doc = json.loads(JsonFormatter().format(seen[0]))
    assert doc["method"] == "GET" and doc["path"] == "/q/{token}" and doc["status"] == 200
    assert doc["duration_ms"] == 12.3 and "SECRET-TOKEN" not in json.dumps(doc)

    Resource.canonical = "/readyz"
    AccessLog(logger, "").log(Request(), Response(), 0.001)  # a passing probe: not logged
    Response.status = 503
    AccessLog(logger, "").log(Request(), Response(), 0.001)  # a failing one is
    assert [r.__dict__["status"] for r in seen] == [200, 503]


def test_a_fatal_group_join_error_is_noticed_once():
    from workers.app import FatalJoinWatch

    calls = []
    watch = FatalJoinWatch(calls.append)
    logger = logging.getLogger("aiokafka.consumer.group_coordinator")
    logger.addHandler(watch)
    try:
        logger.error("Heartbeat failed: local member_id was not recognized")
        assert calls == []
        logger.error("Attempt to join group failed due to fatal error: %s", "[Error 26] InvalidSessionTimeoutError")
        logger.error("Attempt to join group failed due to fatal error: %s", "again")
    finally:
        logger.removeHandler(watch)
    assert len(calls) == 1 and "InvalidSessionTimeoutError" in calls[0]


def test_the_lag_exporter_exports_each_series_once():
    from prometheus_client import generate_latest

    from fapiao.config import Settings
    from fapiao.services.lag import LagReport, PartitionLag
    from workers.lag_exporter import LagExporter

    exporter = LagExporter(Settings(_env_file=None))
    exporter.export(
        LagReport(
            [
                PartitionLag("fapiao-delivery", "fapiao.delivery.requested", 0, 5, 12, 7, 3.5, "OK"),
                PartitionLag("fapiao-delivery", "fapiao.delivery.requested", 1, None, 0, None, None, "OK"),
            ],
            {"fapiao-delivery": "OK"},
        )
    )
    text = generate_latest(exporter.registry).decode()
    labels = 'group="fapiao-delivery",partition="0",topic="fapiao.delivery.requested"'
    assert f"kafka_consumergroup_group_lag{{{labels}}} 7.0" in text
    assert f"kafka_consumergroup_group_lag_seconds{{{labels}}} 3.5" in text
    assert 'kafka_consumergroup_group_max_lag{group="fapiao-delivery"} 7.0' in text
    assert 'partition="1"' not in text  # never committed: no lag to show
    assert not exporter.ready()


def test_kafka_pythons_harmless_group_metadata_warnings_are_quiet(caplog):
    import fapiao.adapters.lag  # noqa: F401  (installs the filter)

    logger = logging.getLogger("kafka.admin._groups")
    with caplog.at_level(logging.WARNING, logger="kafka.admin._groups"):
        logger.warning("Unable to decode member_metadata for fapiao-delivery/member-1")
        logger.warning("Unable to decode member_assignment for fapiao-delivery/member-1")
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
