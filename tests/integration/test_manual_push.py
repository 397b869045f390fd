"""Issue #15, the push manual (seed 000, FACTS §1.3): the push's overall answer 0000/0001 and V7.0.17 scanh5Url."""

import json

from fapiao.services.callbacks import payload
from fapiao.services.ingest import LinkMinter, ingest_push
from fapiao.services.merchants import ensure_demo_merchant
from schemas.bill_push import parse_push
from tests.support.samples import sample_push

MINTER = LinkMinter(b"k" * 32, "http://h")


def push(sessions, **bill):
    return ingest_push(sessions, parse_push(json.dumps(sample_push(**bill)).encode()), MINTER)


def test_push_answers_0000_saved_and_0001_not_saved(sessions):
    with sessions() as s:
        ensure_demo_merchant(s)
    [ok] = push(sessions)
    assert (ok.event.code, ok.event.message) == ("0000", "保存数据成功")
    [bad] = push(sessions, billNo="")
    assert (bad.event.code, bad.event.message) == ("0001", "保存数据失败")
    assert payload(ok.event)[2]["Code"] == "0000" and payload(bad.event)[2]["Code"] == "0001"


def test_scanh5url_returns_the_h5_page_url_too(sessions):
    with sessions() as s:
        ensure_demo_merchant(s)
    [plain] = push(sessions, billNo="H5-0")
    assert plain.event.h5_url is None and "H5Url" not in payload(plain.event)[2]
    [asked] = push(sessions, billNo="H5-1", scanh5Url="1")
    assert asked.event.h5_url == asked.event.link and asked.event.h5_url.startswith("http://h/q/")
    assert payload(asked.event)[2]["H5Url"] == asked.event.h5_url
