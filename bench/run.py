"""Benchmark harness: `python bench/run.py [--quick] [--json FILE] [--database URL] [--bootstrap HOST:PORT]`.

In one run, on one broker, with the same order payloads, five stages, each on topics and consumer groups of its own
(so no stage inherits another's backlog):
  ceiling   aiokafka consume → json → produce pass-through (bench/passthrough.py): what one Python process moves;
  ingest    `fapiao worker order-ingest` (`--ingest-replicas N` processes): orders.pushed → orders.accepted;
  issue     `fapiao worker invoice-issue`: buyer.submitted → invoices.issued (orders stored in-process first);
  render    `fapiao worker render`: invoices.issued → documents.rendered (PDF, JSON, HTML drawn and stored;
            invoices issued in-process first);
  pipeline  `fapiao worker all`: orders.pushed → … → delivery.completed, the bench acting as the buyer (it
            publishes buyer.submitted for each accepted order) and a counting SMTP server receiving the mail.
Throughput is measured in drain mode (N messages waiting, then the processor starts), from the broker timestamps of
the outputs after the first burst (``drain_rate``: a batch's outputs appear at once) to the last, so group-join time
is excluded and a stage that batches gets no credit for its first batch. Latency (p50/p99, output timestamp − input
timestamp) is measured paced: at half the drained rate, or at the issue's fixed rates (issue 100/s, pipeline 50/s).
Peak RSS is the largest VmHWM of any one process of the stage (each worker process is judged on its own).

`python bench/run.py` writes docs/benchmarks.md (its hand-written analysis kept); `--quick` runs fewer messages
(under 6 minutes on 2 cores) and leaves the docs alone unless `--out` is given. `--json FILE`
writes one object ``{"ceiling": S, "ingest": S, "issue": S, "render": S, "pipeline": S}``, each S =
``{"throughput", "ratio", "p50_ms", "p99_ms", "peak_rss_mib", "count"}`` (ratio: throughput / the ceiling's).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kafka import KafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fapiao.adapters.db import make_engine, make_session_factory  # noqa: E402
from fapiao.adapters.kafka import EmbeddedBroker, ensure_topics, free_port, free_ports  # noqa: E402
from fapiao.config import Settings  # noqa: E402
from fapiao.migrate import upgrade  # noqa: E402
from fapiao.registry import WORKER_NAMES  # noqa: E402
from fapiao.services.merchants import ensure_demo_merchant  # noqa: E402
from fapiao.testing import SystemProcess, TopicReader  # noqa: E402
from fapiao.topics import order_key  # noqa: E402
from schemas.events import Buyer, BuyerSubmitted, BuyerType, InvoiceKind  # noqa: E402

SAMPLE = json.loads((ROOT / "fapiao" / "demo" / "sample_order.json").read_text(encoding="utf-8"))
SELLER = SAMPLE["data"][0]["sellerTaxpayerId"]
STAGE_NAMES = ("ceiling", "ingest", "issue", "render", "pipeline")
Payloads = Callable[[str, int], list[tuple[bytes, bytes]]]


def order_payload(bill_no: str) -> tuple[bytes, bytes]:
    doc = json.loads(json.dumps(SAMPLE))
    doc["data"][0]["billNo"] = bill_no
    doc["requestId"] = bill_no
    return order_key(SELLER, bill_no), json.dumps(doc, ensure_ascii=False).encode()


def orders(prefix: str, n: int) -> list[tuple[bytes, bytes]]:
    return [order_payload(f"{prefix}-{i:06d}") for i in range(n)]


def vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pids(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid] + [p for c in children for p in tree_pids(int(c))]


class Peak:
    """Sampled peak VmHWM of the largest single process in a process tree (VmHWM is each process's own peak)."""

    def __init__(self, pid: int):
        self.pid, self.kb = pid, 0

    def sample(self) -> None:
        self.kb = max([self.kb] + [vm_hwm_kb(p) for p in tree_pids(self.pid)])


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


FIRST_BURST_MS = 20


def drain_rate(records: list) -> float:
    """Outputs per second from the broker timestamps. A stage working in batches publishes a batch's outputs at
    once, so the first output marks the end of the first batch's work, not its start: counting from the first
    output (``(n - 1) / span``) would credit a batch of 64 out of 200 as done in no time (+47%). So the outputs of
    the first ``FIRST_BURST_MS`` are left out, and the rest counted over the time after them (for a stage that
    does not batch, the same figure as before)."""
    ts = sorted(r.timestamp for r in records)
    start = ts[0] + FIRST_BURST_MS
    later = [t for t in ts if t > start]
    if not later:  # everything in one burst
        return len(ts) / (max(ts[-1] - ts[0], 1) / 1000)
    return len(later) / (max(ts[-1] - start, 1) / 1000)


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


def input_timestamps(settings: Settings, topic: str, keys: set[bytes]) -> dict[bytes, int]:
    reader = TopicReader(settings, topic)
    got = {r.key: r.timestamp for r in collect(reader, keys, 60).values()}
    reader.close()
    return got


def buyer_event(key: bytes) -> BuyerSubmitted:
    return BuyerSubmitted(
        event_id=str(uuid.uuid4()),
        order_key=key.decode(),
        submission_id=str(uuid.uuid4()),
        buyer=Buyer(
            buyer_type=BuyerType.enterprise,
            title="某某科技有限公司",
            tax_id="91440300358768292H",
            email="buyer@example.cn",
        ),
        invoice_kind=InvoiceKind.digital_normal,
    )


class Prepared:
    """Inputs for the issue and render stages, made in-process with the services the workers run: orders stored
    as order_ingest would store them, then (for render) issued as invoice_issue would issue them."""

    def __init__(self, settings: Settings):
        from fapiao.adapters.issuer import SandboxIssuer
        from fapiao.services.ingest import LinkMinter

        self.sessions = make_session_factory(make_engine(settings.db_url))
        self.minter = LinkMinter(settings.link_secret.get_secret_value().encode(), settings.base_url)
        self.issuer = SandboxIssuer(self.sessions)

    def _stored(self, prefix: str, n: int) -> list[bytes]:
        from fapiao.services.ingest import ingest_pushes
        from schemas.bill_push import parse_push

        raw = orders(prefix, n)
        for i in range(0, n, 500):
            ingest_pushes(self.sessions, [parse_push(v) for _, v in raw[i : i + 500]], self.minter)
        return [k for k, _ in raw]

    def submissions(self, prefix: str, n: int) -> list[tuple[bytes, bytes]]:
        return [(k, buyer_event(k).model_dump_json().encode()) for k in self._stored(prefix, n)]

    def issued(self, prefix: str, n: int) -> list[tuple[bytes, bytes]]:
        from fapiao.services.issue import issue_submissions

        events = [buyer_event(k) for k in self._stored(prefix, n)]
        out = []
        for i in range(0, n, 200):
            for outcomes in issue_submissions(self.sessions, self.issuer, events[i : i + 200]):
                out += [(o.key, o.event.model_dump_json().encode()) for o in outcomes if o.stage == "invoices.issued"]
        return out


@dataclass
class Stage:
    name: str
    start: Callable[[Settings], tuple[Callable[[], object], int]]  # settings -> (stop, pid)
    in_stage: str
    out_stage: str
    n: int
    paced_n: int
    payloads: Payloads = orders
    paced_rate: float | None = None  # None: half the drained rate
    buyer: bool = False
    counts: Callable[[object], bool] | None = None  # whether an output is a success (None: any output is)


def run_stage(stage: Stage, base: Settings) -> dict:
    """Drain ``n`` waiting inputs (throughput), then send ``paced_n`` at the paced rate (latency)."""
    tag = uuid.uuid4().hex[:6]
    s = base.model_copy(
        update={
            "topic_prefix": f"{base.topic_prefix}-{stage.name}",
            "group_prefix": f"{base.group_prefix}-{stage.name}",
        }
    )
    in_topic, out_topic = _topic(s, stage.in_stage), _topic(s, stage.out_stage)
    ensure_topics(s, {in_topic: {}, out_topic: {}})
    drain = stage.payloads(f"B{stage.name[:2]}{tag}", stage.n)
    paced = stage.payloads(f"L{stage.name[:2]}{tag}", stage.paced_n)
    ours = {k for k, _ in drain} | {k for k, _ in paced}  # the buyer acts on this stage's orders only
    produce(s, in_topic, drain)
    reader = TopicReader(s, out_topic)
    stop, pid = stage.start(s)
    peak = Peak(pid)
    tick = peak.sample
    buyer_producer = acc_reader = None
    if stage.buyer:
        buyer_producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, linger_ms=2)
        acc_reader = TopicReader(s, s.topics["orders.accepted"])

        def tick():
            peak.sample()
            for r in acc_reader.poll():
                if r.key in ours:
                    buyer_producer.send(
                        s.topics["buyer.submitted"], key=r.key, value=buyer_event(r.key).model_dump_json().encode()
                    )
            buyer_producer.flush()

    try:
        outs = collect(reader, {k for k, _ in drain}, timeout=600, tick=tick)
        _check(stage, outs)
        rate = drain_rate(list(outs.values()))
        paced_rate = stage.paced_rate or max(1.0, rate / 2)
        sender = threading.Thread(target=produce, args=(s, in_topic, paced, paced_rate))
        sender.start()
        pkeys = {k for k, _ in paced}
        pouts = collect(reader, pkeys, timeout=600, tick=tick)
        _check(stage, pouts)
        sender.join()
        ins = input_timestamps(s, in_topic, pkeys)
        p50, p99 = percentiles([pouts[k].timestamp - ins[k] for k in pouts])
        peak.sample()
        return {
            "stage": stage.name,
            "count": stage.n,
            "throughput": rate,
            "paced_rate": paced_rate,
            "paced_count": stage.paced_n,
            "p50_ms": p50,
            "p99_ms": p99,
            "peak_rss_mib": peak.kb / 1024,
        }
    finally:
        reader.close()
        stop()
        if buyer_producer:
            buyer_producer.close()
            acc_reader.close()


def _check(stage: Stage, outs: dict[bytes, object]) -> None:
    """A stage's outputs must be successes: a failed delivery completes fast and would pass for throughput."""
    failed = [k for k, r in outs.items() if stage.counts and not stage.counts(r)]
    if failed:
        raise RuntimeError(f"{stage.name}: {len(failed)} of {len(outs)} outputs are not successes, e.g. {failed[0]!r}")


def sent(record) -> bool:
    return json.loads(record.value)["outcome"] == "sent"


def _topic(s: Settings, stage: str) -> str:
    return f"{s.topic_prefix}.{stage}" if stage.startswith("bench.") else s.topics[stage]


def passthrough(s: Settings):
    p = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "passthrough.py"),
            s.bootstrap_servers,
            _topic(s, "bench.in"),
            _topic(s, "bench.out"),
            f"{s.group_prefix}-passthrough",
            str(s.fetch_max_wait_ms),
        ],
        start_new_session=True,
    )
    return (lambda: (os.killpg(p.pid, signal.SIGTERM), p.wait())), p.pid


def worker(*args: str, log_dir: Path):
    def start(s: Settings):
        p = SystemProcess(s, "worker", *args, log=log_dir / f"{s.group_prefix}-{'-'.join(args)}.log")
        return p.stop, p.proc.pid

    return start


def stages(args, prepared: Prepared, log_dir: Path) -> list[Stage]:
    replicas = ("--replicas", str(args.ingest_replicas)) if args.ingest_replicas > 1 else ()
    return [
        Stage("ceiling", passthrough, "bench.in", "bench.out", args.orders, args.paced),
        Stage(
            "ingest",
            worker("order-ingest", *replicas, log_dir=log_dir),
            "orders.pushed",
            "orders.accepted",
            args.orders,
            args.paced,
        ),
        Stage(
            "issue",
            worker("invoice-issue", log_dir=log_dir),
            "buyer.submitted",
            "invoices.issued",
            args.issue_orders,
            args.issue_paced,
            prepared.submissions,
            paced_rate=args.issue_rate,
        ),
        Stage(
            "render",
            worker("render", log_dir=log_dir),
            "invoices.issued",
            "documents.rendered",
            args.render_orders,
            args.render_paced,
            prepared.issued,
        ),
        Stage(
            "pipeline",
            worker("all", log_dir=log_dir),
            "orders.pushed",
            "delivery.completed",
            args.pipeline_orders,
            args.pipeline_paced,
            paced_rate=args.pipeline_rate,
            buyer=True,
            counts=sent,
        ),
    ]


def machine() -> str:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def summary(results: list[dict]) -> dict:
    """The machine-readable result: one object per stage, each with exactly the keys of the module docstring."""
    ceiling = results[0]["throughput"]
    return {
        r["stage"]: {
            "throughput": round(r["throughput"], 1),
            "ratio": round(r["throughput"] / ceiling, 4),
            "p50_ms": round(r["p50_ms"], 1),
            "p99_ms": round(r["p99_ms"], 1),
            "peak_rss_mib": round(r["peak_rss_mib"], 1),
            "count": r["count"],
        }
        for r in results
    }


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages: under 6 minutes on 2 cores")
    ap.add_argument("--json", type=Path, help="write the machine-readable result here")
    ap.add_argument("--database", help="SQLAlchemy URL (e.g. postgresql://…); default: SQLite in a temporary folder")
    ap.add_argument("--bootstrap", help="host:port of an external Kafka; default: start an embedded broker")
    ap.add_argument("--out", type=Path, help="the Markdown report (default: docs/benchmarks.md, except with --quick)")
    ap.add_argument(
        "--stages",
        default=",".join(STAGE_NAMES),
        help="comma-separated subset to run (the ceiling always runs: ratios need it)",
    )
    ap.add_argument("--ingest-replicas", type=int, default=1, help="order-ingest processes (fapiao worker --replicas)")
    ap.add_argument("--orders", type=int, help="orders drained for ceiling and ingest")
    ap.add_argument("--paced", type=int, help="messages paced for ceiling and ingest latency")
    ap.add_argument("--issue-orders", type=int, help="submissions drained for issue")
    ap.add_argument("--issue-paced", type=int, help="submissions paced for issue latency")
    ap.add_argument("--issue-rate", type=float, default=100.0, help="paced submissions/s (issue #11 target: 100)")
    ap.add_argument("--render-orders", type=int, help="issued invoices drained for render")
    ap.add_argument("--render-paced", type=int, help="issued invoices paced (at half rate) for render latency")
    ap.add_argument("--pipeline-orders", type=int, help="orders drained for pipeline")
    ap.add_argument("--pipeline-paced", type=int, help="orders paced for pipeline latency")
    ap.add_argument("--pipeline-rate", type=float, default=50.0, help="paced orders/s (issue #11 target: 50)")
    args = ap.parse_args(argv)
    defaults = dict(
        orders=3000,
        paced=600,
        issue_orders=2000,
        issue_paced=600,
        render_orders=600,
        render_paced=300,
        pipeline_orders=600,
        pipeline_paced=300,
    )
    quick = dict(
        orders=1500,
        paced=300,
        issue_orders=600,
        issue_paced=300,
        render_orders=200,
        render_paced=100,
        # 600 as in a full run, not 300: the pipeline's first outputs wait for a render batch of 64 drawn before
        # them, which a short drain counts as free (192/s for 300 orders where 1,200 gave 159/s); ~3 s longer
        pipeline_orders=600,
        pipeline_paced=150,
    )
    for k, v in (quick if args.quick else defaults).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.out is None and not args.quick:
        args.out = ROOT / "docs" / "benchmarks.md"
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    from aiosmtpd.controller import Controller

    class Sink:
        count = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            Sink.count += 1
            return "250 OK"

    tmp = Path(tempfile.mkdtemp(prefix="fapiao-bench-"))
    broker = None if args.bootstrap else EmbeddedBroker(free_port(), tmp / "broker.log").start()
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    tag = uuid.uuid4().hex[:6]
    settings = Settings(
        _env_file=None,
        kafka_bootstrap=args.bootstrap or broker.bootstrap,
        database_url=args.database or f"sqlite:///{tmp / 'bench.db'}",
        data_dir=tmp / "var",
        topic_prefix=f"bench{tag}",
        group_prefix=f"bench{tag}",
        smtp_port=smtp.port,
        http_port=free_port(),
        worker_port=free_ports(len(WORKER_NAMES) * max(1, args.ingest_replicas)),
    )
    results = []
    started = time.monotonic()
    try:
        upgrade(settings.db_url)
        with make_session_factory(make_engine(settings.db_url))() as s:
            ensure_demo_merchant(s)
        wanted = {"ceiling", *args.stages.split(",")}
        for stage in (st for st in stages(args, Prepared(settings), tmp) if st.name in wanted):
            results.append(run_stage(stage, settings))
            r = results[-1]
            print(
                f"{r['stage']}: {r['throughput']:.0f}/s drained ({r['count']}), p50/p99 {r['p50_ms']:.0f}/"
                f"{r['p99_ms']:.0f} ms at {r['paced_rate']:.0f}/s, peak RSS {r['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    finally:
        smtp.stop()
        if broker:
            broker.stop()
    print(f"{time.monotonic() - started:.0f} s; e-mails received: {Sink.count}")
    if args.json:
        args.json.write_text(json.dumps(summary(results), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.out:
        report(results, settings, args.out, Sink.count)


def report(results: list[dict], settings: Settings, out: Path, mails: int) -> None:
    ceiling = results[0]["throughput"]
    lines = [
        "| stage | drained | throughput (msg/s) | ratio to ceiling | paced latency p50 / p99 (ms) | peak RSS of a process (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['stage']} | {r['count']} | {r['throughput']:.0f} | {r['throughput'] / ceiling:.1%} | "
            f"{r['p50_ms']:.0f} / {r['p99_ms']:.0f} (at {r['paced_rate']:.0f}/s, {r['paced_count']} msgs) | "
            f"{r['peak_rss_mib']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    db = "PostgreSQL" if settings.db_url.startswith("postgresql") else "SQLite"
    out.parent.mkdir(parents=True, exist_ok=True)
    marker = "\n## What bounds"
    analysis = out.read_text(encoding="utf-8").partition(marker) if out.exists() else ("", "", "")
    kept = marker + analysis[2] if analysis[1] else ""  # the hand-written analysis survives a new run
    out.write_text(
        "# Benchmarks\n\n"
        "Produced by `python bench/run.py` (one run, one broker, same payloads for every stage; see the script's "
        "docstring for the method; `--json FILE` gives the same figures machine-readable). Numbers are from one "
        "run on a shared, noisy 2-core machine (other agents were working on it): read the ratios, not the "
        "absolute figures.\n\n"
        f"- machine: {machine()}\n- database: {db}; partitions per topic: {settings.topic_partitions}\n"
        f"- run at: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; e-mails received by the bench SMTP server: {mails}\n\n"
        + table
        + "\n"
        + kept,
        encoding="utf-8",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
