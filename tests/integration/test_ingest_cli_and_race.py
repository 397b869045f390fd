"""`fapiao push --dry-run`, and two worker processes racing on the same orders against one database."""

import json
import multiprocessing as mp

from click.testing import CliRunner
from sqlalchemy import func, select

from fapiao.adapters.db import OrderRow, make_engine, make_session_factory
from fapiao.cli import main
from fapiao.services.merchants import ensure_demo_merchant
from tests.support.samples import sample_push


def test_dry_run_prints_every_violation(tmp_path, monkeypatch, sessions, db_url):
    with sessions() as s:
        ensure_demo_merchant(s)
    monkeypatch.setenv("FAPIAO_DATABASE_URL", db_url)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(sample_push()), encoding="utf-8")
    bad.write_text(json.dumps([sample_push(billNo="", invoiceType="026"), {"hello": 1}]), encoding="utf-8")
    ok = CliRunner().invoke(main, ["push", "--dry-run", str(good)])
    assert ok.exit_code == 0 and "every order passes" in ok.output
    res = CliRunner().invoke(main, ["push", "--dry-run", str(bad)])
    assert res.exit_code == 1
    assert "00552 billNo" in res.output and "00603 invoiceType" in res.output
    assert "message 1: JSON object is neither a bill" in res.output
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(OrderRow)) == 0  # a dry run stores nothing


def test_dry_run_without_merchant_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FAPIAO_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    f = tmp_path / "o.json"
    f.write_text(json.dumps(sample_push(billNo="")), encoding="utf-8")
    res = CliRunner().invoke(main, ["push", "--dry-run", str(f)])
    assert res.exit_code == 1 and "rules skipped" in res.output and "00552" in res.output


def _ingest_in_process(db_url, barrier, bill_nos, results):
    from fapiao.services.ingest import LinkMinter, ingest_pushes
    from schemas.bill_push import parse_push

    sessions = make_session_factory(make_engine(db_url))
    pushes = [parse_push(json.dumps(sample_push(billNo=b)).encode()) for b in bill_nos]
    barrier.wait()
    outs = ingest_pushes(sessions, pushes, LinkMinter(b"k" * 32, "http://h"))
    results.put([(o.stage, getattr(o.event, "link", None)) for oo in outs for o in oo])


def test_two_worker_processes_racing_create_each_order_once(sessions, db_url):
    with sessions() as s:
        ensure_demo_merchant(s)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    bill_nos = [f"RACE-{i}" for i in range(40)]
    procs = [ctx.Process(target=_ingest_in_process, args=(db_url, barrier, bill_nos, results)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert all(stage == "orders.accepted" for r in got for stage, _ in r)
    assert [link for _, link in got[0]] == [link for _, link in got[1]]  # both answer with the same links
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(OrderRow)) == 40
