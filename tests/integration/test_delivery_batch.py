"""Delivery in batches (issue #11): the requests of a batch share one SMTP connection, each keeps its own ledger row,
so a batch handled again sends nothing twice; a connection the server dropped is replaced, never re-sent on."""

from email.message import EmailMessage

from fapiao.adapters.mail import SmtpMailer
from fapiao.services.deliver import deliver_batch
from tests.support.smtp import REFUSED, RestartableSmtp
from tests.support.services import config, mailer_for, requests, rows


class PeerCounting(RestartableSmtp):
    """Also records the client end (host, port) of each message's connection."""

    def __init__(self):
        super().__init__()
        self.peers: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def test_a_batch_shares_one_connection_and_is_sent_once(sessions, tmp_path, settings):
    smtp = PeerCounting()
    smtp.start()
    try:
        reqs = requests(sessions, tmp_path, "BATCH", 3) + requests(sessions, tmp_path, "BATCHX", 1, email=REFUSED)
        first = deliver_batch(sessions, mailer_for(settings, smtp), None, reqs, config())
        assert [[o.event.outcome for o in outs] for outs in first] == [["sent"], ["sent"], ["sent"], ["failed"]]
        assert len(smtp.messages) == 3 and len(set(smtp.peers)) == 1  # one connection, the refusal did not end it
        again = deliver_batch(sessions, mailer_for(settings, smtp), None, reqs, config())  # the batch redelivered
        assert [[o.event for o in outs] for outs in again] == [[o.event for o in outs] for outs in first]
        assert len(smtp.messages) == 3 and sorted(smtp.ids().values()) == [1, 1, 1]
        assert {r.status for r in rows(sessions).values()} == {"sent", "failed"}
    finally:
        smtp.stop()


def message(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "a@b.cn", "c@d.cn", f"m{i}", f"<m{i}@fapiao>"
    msg.set_content("hi")
    return msg


def test_a_connection_the_server_dropped_is_replaced(settings):
    smtp = PeerCounting()
    smtp.start()
    try:
        mailer = SmtpMailer(settings.model_copy(update={"smtp_port": smtp.port, "smtp_timeout": 2}))
        with mailer.connection() as conn:
            conn.send(message(1))
            smtp.stop()  # the server goes away (and closes the connection) between two messages
            smtp.start()
            conn.send(message(2))
            conn.send(message(3))
        assert sorted(smtp.ids()) == ["<m1@fapiao>", "<m2@fapiao>", "<m3@fapiao>"]
        assert sorted(smtp.ids().values()) == [1, 1, 1]
        assert smtp.peers[1] == smtp.peers[2] != smtp.peers[0]
    finally:
        smtp.stop()
