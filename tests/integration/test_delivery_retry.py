"""Durable delivery retries (issue #12 item 4), on the service functions with an injected clock and a real SMTP
server that is stopped and started again on the same port: a 10-minute outage walked through in simulated time
with the default policy, retries that run out, permanent failures, requests that cannot be sent as asked, a
crashed sender's lease, two retry timers racing, and the ops view (``fapiao deliveries``)."""

import collections
import threading
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from fapiao.adapters.db import DeliveryRow
from fapiao.config import ConfigError, load_settings
from fapiao.domain.backoff import RetryPolicy
from fapiao.services.deliver import deliver, pending_deliveries, retry_due, retry_now, waiting_counts
from schemas.events import Channel
from tests.support.smtp import REFUSED, RestartableSmtp
from tests.support.services import config, mailer_for, requests, rows

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def smtp():
    server = RestartableSmtp()
    server.start()
    yield server
    if server.controller:
        server.stop()


def test_backoff_doubles_with_jitter_and_gives_up():
    p = RetryPolicy(
        base=timedelta(seconds=10), max_delay=timedelta(hours=2), max_attempts=30, max_age=timedelta(hours=48)
    )
    assert [p.delay(n, rand=lambda: 1.0).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert p.delay(1, rand=lambda: 0.0) == timedelta(seconds=5)  # at least half the planned wait
    assert p.delay(25, rand=lambda: 1.0) == timedelta(hours=2)  # hours at most, not days
    assert p.next_attempt(30, T0, T0) is None and "30 attempts" in p.gave_up(30, T0, T0)
    near_end = T0 + timedelta(hours=47, minutes=59)
    assert p.next_attempt(12, T0, near_end, rand=lambda: 1.0) == T0 + timedelta(hours=48)  # a last try at max age
    assert p.next_attempt(13, T0, T0 + timedelta(hours=48)) is None
    assert "48.0 h" in p.gave_up(13, T0, T0 + timedelta(hours=48))


def test_ten_minute_outage_in_simulated_time(sessions, tmp_path, settings, smtp):
    """The default policy; the worker's timer (every 5 s) is played by calling retry_due on a clock."""
    mailer, cfg = mailer_for(settings, smtp), config()
    reqs = requests(sessions, tmp_path, "TEN", 12)
    smtp.stop()
    for r in reqs:  # the requests arrive while the server is away: each is tried once and queued for a retry
        assert deliver(sessions, mailer, None, r, cfg, now=T0) == []
    assert waiting_counts(sessions) == {"retrying": 12, "queued": 0, "sending": 0}
    clock, completed = T0, []
    while clock < T0 + timedelta(minutes=10):
        clock += timedelta(seconds=5)
        assert retry_due(sessions, mailer, None, cfg, now=clock) == []  # probes, all failing
    probes = sum(r.attempts for r in rows(sessions).values())
    assert probes <= 12 + 120  # at most one probe per round while the server is down
    smtp.start()  # same port
    while len(completed) < len(reqs):
        clock += timedelta(seconds=5)
        completed += retry_due(sessions, mailer, None, cfg, now=clock)
        assert clock < T0 + timedelta(minutes=40), rows(sessions)
    assert collections.Counter(m["Message-ID"] for m in smtp.messages) == {f"<{r.request_id}@fapiao>": 1 for r in reqs}
    assert {(o.event.outcome, o.event.order_key) for o in completed} == {("sent", r.order_key) for r in reqs}
    assert {r.status for r in rows(sessions).values()} == {"sent"}
    assert waiting_counts(sessions) == {"retrying": 0, "queued": 0, "sending": 0}
    # Redelivered requests and later rounds send nothing more.
    for r in reqs:
        assert deliver(sessions, mailer, None, r, cfg, now=clock)[0].event.outcome == "sent"
    assert retry_due(sessions, mailer, None, cfg, now=clock + timedelta(days=3)) == []
    assert len(smtp.messages) == len(reqs)


def test_refused_address_after_the_outage_fails_with_the_reason(sessions, tmp_path, settings, smtp):
    mailer, cfg = mailer_for(settings, smtp), config()
    [req] = requests(sessions, tmp_path, "REF", 1, email=REFUSED)
    smtp.stop()
    assert deliver(sessions, mailer, None, req, cfg, now=T0) == []  # connection refused: transient
    smtp.start()
    [done] = retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(minutes=1))
    assert done.event.outcome == "failed" and "550" in done.event.error and done.event.attempts == 2
    assert retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(days=1)) == []  # never tried again
    assert smtp.messages == []


def test_retries_run_out_and_end_failed(sessions, tmp_path, settings, smtp):
    mailer = mailer_for(settings, smtp)
    cfg = config(RetryPolicy(base=timedelta(seconds=1), max_delay=timedelta(seconds=4), max_attempts=3))
    [req] = requests(sessions, tmp_path, "OUT", 1)
    smtp.stop()
    deliver(sessions, mailer, None, req, cfg, now=T0)
    ended = []
    for second in range(1, 30):
        ended += retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(seconds=second))
    [done] = ended
    assert done.event.outcome == "failed" and done.event.attempts == 3
    assert done.event.error.startswith("gave up after 3 attempts; last error: SMTP connection failed")

    aged = config(RetryPolicy(base=timedelta(minutes=1), max_age=timedelta(minutes=10)))
    [req] = requests(sessions, tmp_path, "AGE", 1)
    deliver(sessions, mailer, None, req, aged, now=T0)
    ended = []
    for minute in range(1, 30):
        ended += retry_due(sessions, mailer, None, aged, now=T0 + timedelta(minutes=minute))
    [done] = ended
    assert done.event.outcome == "failed" and "over 10 min (limit 10 min)" in done.event.error


def test_request_that_cannot_be_sent_as_asked_ends_failed(sessions, tmp_path, settings, smtp):
    """On the old code these raised out of the handler (dead-lettered) and left the row `sending`."""
    mailer, cfg = mailer_for(settings, smtp), config()
    [good] = requests(sessions, tmp_path, "BAD", 1)
    unknown = good.model_copy(update={"request_id": "r-unknown", "invoice_number": "99999999999999999999"})
    crlf = good.model_copy(update={"request_id": "r-crlf", "to": "a@example.cn\r\nBcc: all@example.cn"})
    sms = good.model_copy(update={"request_id": "r-sms", "channel": Channel.sms, "to": "13800138000"})
    for req, reason in (
        (unknown, "invoice 99999999999999999999 is not known"),
        (crlf, "linefeed"),
        (sms, "no SMS gateway configured"),
    ):
        [done] = deliver(sessions, mailer, None, req, cfg, now=T0)
        assert done.event.outcome == "failed" and reason in done.event.error
    assert {r.status for r in rows(sessions).values()} == {"failed"}
    assert smtp.messages == []


class DiesMidSend:
    """A mailer whose process dies in the middle of the SMTP conversation (nothing below ``Exception`` catches)."""

    def send(self, msg):
        raise SystemExit("killed")


def test_a_crashed_senders_delivery_is_taken_over_after_its_lease(sessions, tmp_path, settings, smtp):
    mailer, cfg = mailer_for(settings, smtp), config()
    [req] = requests(sessions, tmp_path, "CRASH", 1)
    with pytest.raises(SystemExit):
        deliver(sessions, DiesMidSend(), None, req, cfg, now=T0)
    assert rows(sessions)[req.request_id].status == "sending"
    # The request redelivered to another worker while the lease runs: nobody else sends it.
    assert deliver(sessions, mailer, None, req, cfg, now=T0 + timedelta(seconds=30)) == []
    assert retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(seconds=59)) == []
    [done] = retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(seconds=61))
    assert done.event.outcome == "sent" and done.event.attempts == 2
    assert len(smtp.messages) == 1


def test_rows_stuck_sending_before_this_migration_are_picked_up(sessions, tmp_path, settings, smtp):
    mailer, cfg = mailer_for(settings, smtp), config()
    [req] = requests(sessions, tmp_path, "OLD", 1)
    with sessions() as s:  # what the old code left behind: `sending`, no due time
        s.add(
            DeliveryRow(
                request_id=req.request_id,
                invoice_number=req.invoice_number,
                channel="email",
                target=req.to,
                status="sending",
                reason="issued",
                attempts=4,
                updated_at=T0,
            )
        )
        s.commit()
    assert retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(seconds=30)) == []
    [done] = retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(minutes=2))
    assert done.event.outcome == "sent" and done.event.order_key == req.order_key


def test_two_retry_timers_racing_send_each_message_once(sessions, tmp_path, settings, smtp):
    mailer, cfg = mailer_for(settings, smtp), config()
    reqs = requests(sessions, tmp_path, "RACE", 16)
    smtp.stop()
    for r in reqs:
        deliver(sessions, mailer, None, r, cfg, now=T0)
    smtp.start()
    barrier, outcomes = threading.Barrier(3), []

    def timer():
        barrier.wait()
        outcomes.extend(retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(hours=1)))

    threads = [threading.Thread(target=timer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert collections.Counter(m["Message-ID"] for m in smtp.messages) == {f"<{r.request_id}@fapiao>": 1 for r in reqs}
    assert sorted(o.event.request_id for o in outcomes) == sorted(r.request_id for r in reqs)


def test_ops_retry_now(sessions, tmp_path, settings, smtp):
    mailer, cfg = mailer_for(settings, smtp), config()
    waiting, refused = requests(sessions, tmp_path, "OPS", 2), requests(sessions, tmp_path, "OPSR", 1, REFUSED)
    smtp.stop()
    for r in waiting:
        deliver(sessions, mailer, None, r, cfg, now=T0)
    smtp.start()
    deliver(sessions, mailer, None, refused[0], cfg, now=T0)
    assert {r.request_id for r in pending_deliveries(sessions)} == {r.request_id for r in waiting}
    assert {r.status for r in pending_deliveries(sessions, include_failed=True)} == {"queued", "failed"}
    assert retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(seconds=1)) == []  # not due yet
    assert retry_now(sessions, [waiting[0].request_id], now=T0 + timedelta(seconds=1)) == [waiting[0].request_id]
    [done] = retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(seconds=1))
    assert done.event.request_id == waiting[0].request_id and done.event.outcome == "sent"
    assert sorted(retry_now(sessions, include_failed=True, now=T0 + timedelta(seconds=2))) == sorted(
        [waiting[1].request_id, refused[0].request_id]
    )
    ended = {
        o.event.request_id: o.event.outcome
        for o in retry_due(sessions, mailer, None, cfg, now=T0 + timedelta(seconds=2))
    }
    assert ended == {waiting[1].request_id: "sent", refused[0].request_id: "failed"}


def test_cli_lists_waiting_deliveries_and_retries_them(sessions, tmp_path, settings, smtp, db_url):
    from fapiao.cli import main

    mailer, cfg = mailer_for(settings, smtp), config()
    [req] = requests(sessions, tmp_path, "CLI", 1)
    smtp.stop()
    deliver(sessions, mailer, None, req, cfg, now=datetime.now(timezone.utc))
    env = {"FAPIAO_DATABASE_URL": db_url}
    out = CliRunner().invoke(main, ["deliveries", "list"], env=env)
    assert out.exit_code == 0, out.output
    assert req.request_id in out.output and "SMTP connection failed" in out.output and "1 waiting" in out.output
    out = CliRunner().invoke(main, ["deliveries", "retry"], env=env)
    assert out.exit_code == 1 and "--all" in out.output
    out = CliRunner().invoke(main, ["deliveries", "retry", req.request_id], env=env)
    assert out.exit_code == 0 and "1 delivery(ies) due now" in out.output, out.output
    assert rows(sessions)[req.request_id].next_attempt_at <= datetime.now(timezone.utc)


def test_lease_must_outlast_an_smtp_conversation():
    with pytest.raises(ConfigError, match="FAPIAO_DELIVERY_LEASE"):
        load_settings(_env_file=None, delivery_lease=20, smtp_timeout=10)
