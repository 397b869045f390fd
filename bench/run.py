"""Benchmark harness: `python bench/run.py [--orders N] [--pipeline-orders N]`.

In one run, on one embedded broker, with the same order payloads:
  (a) ceiling   — aiokafka consume → json → produce pass-through (bench/passthrough.py);
  (b) ingest    — `fapiao worker order-ingest`: orders.pushed → orders.accepted;
  (c) pipeline  — every worker: orders.pushed → … → delivery.completed, the bench acting as the buyer
                  (it publishes buyer.submitted for each accepted order) and a counting SMTP server receiving mail.
Throughput is measured in drain mode (N messages waiting, then the processor starts), from the broker timestamps of
the first to the last output, so group-join time is excluded. Latency (p50/p99, output timestamp − input
timestamp) is measured at half the drained rate. Peak RSS is each processor's VmHWM. Results are printed and
written to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kafka import KafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fapiao.adapters.db import make_engine, make_session_factory  # noqa: E402
from fapiao.adapters.kafka import EmbeddedBroker, ensure_topics, free_port, free_ports  # noqa: E402
from fapiao.config import Settings  # noqa: E402
from fapiao.migrate import upgrade  # noqa: E402
from fapiao.services.merchants import ensure_demo_merchant  # noqa: E402
from fapiao.testing import SystemProcess, TopicReader  # noqa: E402
from fapiao.topics import order_key  # noqa: E402
from schemas.events import Buyer, BuyerSubmitted, BuyerType, InvoiceKind  # noqa: E402

SAMPLE = json.loads((ROOT / "fapiao" / "demo" / "sample_order.json").read_text(encoding="utf-8"))
SELLER = SAMPLE["data"][0]["sellerTaxpayerId"]


def order_payload(bill_no: str) -> tuple[bytes, bytes]:
    doc = json.loads(json.dumps(SAMPLE))
    doc["data"][0]["billNo"] = bill_no
    doc["requestId"] = bill_no
    return order_key(SELLER, bill_no), json.dumps(doc, ensure_ascii=False).encode()


def vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pids(pid: int) -> list[int]:
    out = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split() if Path(f"/proc/{pid}").exists() else []:
        out.extend(tree_pids(int(child)))
    return out


class Peak:
    """Sampled peak of the summed VmHWM over a process tree (VmHWM is already each process's own peak)."""

    def __init__(self, pid: int):
        self.pid, self.kb = pid, 0

    def sample(self) -> None:
        try:
            self.kb = max(self.kb, sum(vm_hwm_kb(p) for p in tree_pids(self.pid)))
        except OSError:
            pass


def produce(settings: Settings, topic: str, items: list[tuple[bytes, bytes]], rate: float | None = None) -> None:
    p = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=2)
    start = time.perf_counter()
    for i, (k, v) in enumerate(items):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        p.send(topic, key=k, value=v)
    p.flush()
    p.close()


def drain_rate(records: list) -> float:
    ts = sorted(r.timestamp for r in records)
    span = (ts[-1] - ts[0]) / 1000
    return (len(ts) - 1) / span if span > 0 else float("inf")


def percentiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]
    return statistics.median(values), p99


def collect(reader: TopicReader, keys: set[bytes], timeout: float, tick=None) -> dict[bytes, object]:
    """Poll until every key has an output; ``tick`` runs between polls (sampling memory, acting as the buyer)."""
    got: dict[bytes, object] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(keys):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(got)}/{len(keys)} outputs after {timeout}s")
        for r in reader.poll():
            if r.key in keys and r.key not in got:
                got[r.key] = r
        if tick:
            tick()
    return got


def latencies(inputs: dict[bytes, int], outputs: dict[bytes, object]) -> list[float]:
    return [outputs[k].timestamp - inputs[k] for k in outputs]


def input_timestamps(settings: Settings, topic: str, keys: set[bytes]) -> dict[bytes, int]:
    reader = TopicReader(settings, topic)
    got = {r.key: r.timestamp for r in collect(reader, keys, 60).values()}
    reader.close()
    return got


def orders(prefix: str, n: int) -> list[tuple[bytes, bytes]]:
    return [order_payload(f"{prefix}-{i:06d}") for i in range(n)]


def submissions(settings: Settings):
    """Payloads for (d): orders stored first (in-process, as order_ingest would), then the buyers' submissions."""
    from fapiao.services.ingest import LinkMinter, ingest_pushes
    from schemas.bill_push import parse_push

    sessions = make_session_factory(make_engine(settings.db_url))
    minter = LinkMinter(settings.link_secret.get_secret_value().encode(), settings.base_url)

    def make(prefix: str, n: int) -> list[tuple[bytes, bytes]]:
        raw = orders(prefix, n)
        for i in range(0, n, 500):
            ingest_pushes(sessions, [parse_push(v) for _, v in raw[i:i + 500]], minter)
        return [(k, buyer_event(k).model_dump_json().encode()) for k, _ in raw]

    return make


def buyer_event(key: bytes) -> BuyerSubmitted:
    return BuyerSubmitted(
        event_id=str(uuid.uuid4()), order_key=key.decode(), submission_id=str(uuid.uuid4()),
        buyer=Buyer(buyer_type=BuyerType.enterprise, title="某某科技有限公司", tax_id="91440300358768292H",
                    email="buyer@example.cn"),
        invoice_kind=InvoiceKind.digital_normal)


def stage(name: str, settings: Settings, n: int, rate_n: int, start_proc, in_topic: str, out_topic: str,
          tmp: Path, buyer: bool = False, payloads=orders, paced_rate: float | None = None) -> dict:
    run = uuid.uuid4().hex[:6]
    drain = payloads(f"B{name[0]}{run}", n)
    paced = payloads(f"L{name[0]}{run}", rate_n)
    ours = {k for k, _ in drain} | {k for k, _ in paced}  # the buyer acts on this stage's orders only
    produce(settings, in_topic, drain)
    reader = TopicReader(settings, out_topic)
    proc, pid = start_proc()
    peak = Peak(pid)
    tick = peak.sample
    buyer_producer = None
    if buyer:
        buyer_producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=2)
        acc_reader = TopicReader(settings, settings.topics["orders.accepted"])

        def pump():
            for r in acc_reader.poll():
                if r.key not in ours:
                    continue
                buyer_producer.send(settings.topics["buyer.submitted"], key=r.key,
                                    value=buyer_event(r.key).model_dump_json().encode())
            buyer_producer.flush()

        def tick():
            peak.sample()
            pump()
    try:
        keys = {k for k, _ in drain}
        outs = collect(reader, keys, timeout=600, tick=tick)
        rate = drain_rate(list(outs.values()))
        paced_rate = paced_rate or max(1.0, rate / 2)
        produce_started = time.perf_counter()
        t = threading.Thread(target=produce, args=(settings, in_topic, paced, paced_rate))
        t.start()
        pkeys = {k for k, _ in paced}
        pouts = collect(reader, pkeys, timeout=600, tick=tick)
        t.join()
        ins = input_timestamps(settings, in_topic, pkeys)
        p50, p99 = percentiles(latencies(ins, pouts))
        peak.sample()
        return {"stage": name, "n": n, "throughput": rate, "paced_rate": paced_rate, "paced_n": rate_n,
                "p50_ms": p50, "p99_ms": p99, "peak_rss_mb": peak.kb / 1024,
                "paced_seconds": time.perf_counter() - produce_started}
    finally:
        reader.close()
        proc()
        if buyer_producer:
            buyer_producer.close()
            acc_reader.close()


def machine() -> str:
    cpu = "unknown"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=3000, help="orders drained for (a) and (b)")
    ap.add_argument("--pipeline-orders", type=int, default=600, help="orders drained for (c)")
    ap.add_argument("--paced", type=int, default=600, help="orders sent at half rate for latency")
    ap.add_argument("--issue-rate", type=float, default=100.0, help="submissions/s for (d)'s latency (issue 5: 100)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()

    from aiosmtpd.controller import Controller

    class Sink:
        count = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            Sink.count += 1
            return "250 OK"

    tmp = Path(tempfile.mkdtemp(prefix="fapiao-bench-"))
    broker = EmbeddedBroker(free_port(), tmp / "broker.log").start()
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    db_url = os.environ.get("FAPIAO_DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    settings = Settings(_env_file=None, kafka_bootstrap=broker.bootstrap, database_url=db_url,
                        data_dir=tmp / "var", topic_prefix=f"bench{uuid.uuid4().hex[:6]}",
                        group_prefix=f"bench{uuid.uuid4().hex[:6]}", smtp_port=smtp.port, http_port=free_port(),
                        worker_port=free_ports(4))
    results = []
    try:
        upgrade(settings.db_url)
        with make_session_factory(make_engine(settings.db_url))() as s:
            ensure_demo_merchant(s)
        ensure_topics(settings, {f"{settings.topic_prefix}.bench.in": {}, f"{settings.topic_prefix}.bench.out": {}})

        def passthrough():
            p = subprocess.Popen([sys.executable, str(ROOT / "bench" / "passthrough.py"), settings.bootstrap_servers,
                                  f"{settings.topic_prefix}.bench.in", f"{settings.topic_prefix}.bench.out",
                                  f"{settings.group_prefix}-passthrough", str(settings.fetch_max_wait_ms)],
                                 start_new_session=True)
            return (lambda: (os.killpg(p.pid, signal.SIGTERM), p.wait())), p.pid

        def worker(*names):
            def start():
                p = SystemProcess(settings, "worker", *names, log=tmp / f"{'-'.join(names)}.log")
                return p.stop, p.proc.pid
            return start

        results.append(stage("a ceiling (aiokafka pass-through)", settings, args.orders, args.paced, passthrough,
                             f"{settings.topic_prefix}.bench.in", f"{settings.topic_prefix}.bench.out", tmp))
        results.append(stage("b order_ingest", settings, args.orders, args.paced, worker("order-ingest"),
                             settings.topics["orders.pushed"], settings.topics["orders.accepted"], tmp))
        results.append(stage("d invoice_issue (submission → invoices.issued, PDF included)", settings,
                             args.pipeline_orders, min(args.paced, args.pipeline_orders), worker("invoice-issue"),
                             settings.topics["buyer.submitted"], settings.topics["invoices.issued"], tmp,
                             payloads=submissions(settings), paced_rate=args.issue_rate))
        results.append(stage("c pipeline (order → delivery.completed)", settings, args.pipeline_orders,
                             min(args.paced, args.pipeline_orders), worker("all"),
                             settings.topics["orders.pushed"], settings.topics["delivery.completed"], tmp,
                             buyer=True))
    finally:
        smtp.stop()
        broker.stop()
    report(results, settings, args.out, Sink.count)


def report(results: list[dict], settings: Settings, out: Path, mails: int) -> None:
    ceiling = results[0]["throughput"]
    lines = [
        "| stage | drained | throughput (msg/s) | ratio to (a) | paced latency p50 / p99 (ms) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['stage']} | {r['n']} | {r['throughput']:.0f} | {r['throughput'] / ceiling:.1%} | "
            f"{r['p50_ms']:.0f} / {r['p99_ms']:.0f} (at {r['paced_rate']:.0f}/s, {r['paced_n']} msgs) | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    by = {r["stage"][0]: r for r in results}
    print(f"ratios: (b)/(a) = {by['b']['throughput'] / ceiling:.3f}, (c)/(a) = {by['c']['throughput'] / ceiling:.3f}, "
          f"(d) = {by['d']['throughput']:.0f} invoices/s")
    db = "PostgreSQL" if settings.db_url.startswith("postgresql") else "SQLite"
    out.parent.mkdir(parents=True, exist_ok=True)
    marker = "\n## What bounds"
    analysis = out.read_text(encoding="utf-8").partition(marker) if out.exists() else ("", "", "")
    kept = marker + analysis[2] if analysis[1] else ""  # the hand-written analysis survives a new run
    out.write_text(
        "# Benchmarks\n\n"
        "Produced by `python bench/run.py` (one run, one embedded Tansu broker, same payloads for every stage; "
        "see the script's docstring for the method). Numbers are from one run on a shared, noisy machine: read "
        "the ratios, not the absolute figures.\n\n"
        f"- machine: {machine()}\n- database: {db}; partitions per topic: {settings.topic_partitions}\n"
        f"- run at: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; e-mails received by the bench SMTP server: {mails}\n\n"
        + table + "\n" + kept,
        encoding="utf-8",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
