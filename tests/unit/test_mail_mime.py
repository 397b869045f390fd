"""The invoice e-mail written out directly (``mime_message``) reads back, through the standard library's parser, as
the message ``EmailMessage`` would have made: headers (encoded words for Chinese), the text, the attachments."""

import pytest

from fapiao.adapters.mail import Attachment, mime_message

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 200


def test_reads_back_as_written():
    subject = "【示例科技】您的电子发票 26440670700000000001 请查收，金额 ¥1,230.00 元，感谢惠顾，欢迎再次光临"
    text = "尊敬的某某公司：\n您的发票已开具，下载：http://h/d/abc\n.\n"  # a line with a lone dot survives SMTP
    mail = mime_message(
        sender="示例科技 <fapiao@shop.cn>",
        to="buyer@example.cn",
        subject=subject,
        text=text,
        attachments=[Attachment("1.pdf", "application/pdf", PDF), Attachment("发票.json", "application/json", b"{}")],
        headers=[("Message-ID", "<r1@fapiao>"), ("X-Fapiao-Request-Id", "r1")],
    )
    assert mail.sender == "fapiao@shop.cn" and mail.recipients == ("buyer@example.cn",) and not mail.smtputf8
    assert mail.data.isascii() and b"\n" not in mail.data.replace(b"\r\n", b"")
    assert max(len(line) for line in mail.data.split(b"\r\n")) <= 78
    msg = mail.parsed()
    assert msg["Subject"] == subject and msg["From"] == "示例科技 <fapiao@shop.cn>" and msg["To"] == "buyer@example.cn"
    assert msg["Message-ID"] == "<r1@fapiao>" and msg["X-Fapiao-Request-Id"] == "r1" and msg["Date"]
    assert msg.get_body(("plain",)).get_content() == text
    parts = [(p.get_filename(), p.get_content_type(), p.get_content()) for p in msg.iter_attachments()]
    assert parts == [("1.pdf", "application/pdf", PDF), ("发票.json", "application/json", b"{}")]
    assert all(not part.defects for part in msg.walk())


def test_without_attachments_it_is_one_text_part():
    msg = mime_message(sender="a@b.cn", to="c@d.cn", subject="hi", text="你好").parsed()
    assert msg.get_content_type() == "text/plain" and msg.get_content() == "你好"


@pytest.mark.parametrize(
    "field", [{"to": "a@example.cn\r\nBcc: all@example.cn"}, {"subject": "x\nBcc: all@example.cn"}]
)
def test_a_line_break_in_a_header_is_refused(field):
    args = {"sender": "a@b.cn", "to": "c@d.cn", "subject": "s", "text": "t"} | field
    with pytest.raises(ValueError, match="linefeed"):
        mime_message(**args)


def test_an_internationalised_address_needs_smtputf8():
    mail = mime_message(sender="a@b.cn", to="用户@例子.中国", subject="s", text="t")
    assert mail.smtputf8 and mail.recipients == ("用户@例子.中国",)
    assert mail.parsed()["To"] == "用户@例子.中国"


def test_not_an_address_is_refused():
    with pytest.raises(ValueError, match="not an e-mail address"):
        mime_message(sender="a@b.cn", to="nobody", subject="s", text="t")
