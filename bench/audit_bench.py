"""Audit trail throughput, latency and verification speed, against jupyter_events in the same run.

    python bench/audit_bench.py                 # ~1 minute on 2 cores
    python bench/audit_bench.py --events 20000  # quicker

What is measured, all in this process on this machine:

* **ours** — ``AuditLogger.submit`` (build + schema validation + JSON) into
  ``AuditSink`` (group commit: one write + one fdatasync per batch, signed
  checkpoints every second); *append-to-durable* latency is from the call to
  the moment its future resolves (the record is on disk).
* **jupyter_events FileHandler** — ``EventLogger.emit`` of the same events,
  validated against the same schema, into a ``logging.FileHandler``. It does
  not fsync: its events are *not* durable when ``emit`` returns. Shown as the
  upper bound a non-durable logger reaches.
* **jupyter_events FileHandler + fsync** — the same with an ``fsync`` after
  every record: what durability costs without group commit.
* **verification** — ``verify_trail`` over the trail just written, against a
  naive verifier that parses each record and re-serialises it to hash
  canonical JSON (what a chain over parsed JSON would need).

Every producer is a thread calling the logger as request handlers would. The
table goes to stdout and to ``bench/results/audit.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from jupyter_events import EventLogger

from jupyter_secure.audit.checkpoints import CheckpointSigner
from jupyter_secure.audit.logger import AuditLogger, Identity, Resource
from jupyter_secure.audit.schemas import load_schemas
from jupyter_secure.audit.sink import AuditSink, Receipt
from jupyter_secure.audit.verify import verify_trail

RESULTS = Path(__file__).with_name("results")
EVENT = "UserAdded"


def request(i: int) -> dict[str, object]:
    return {
        "name": f"user{i:07d}",
        "roles": ["data_scientist"],
        "groups": ["research", "ward-7"],
        "passwordSet": True,
    }


IDENTITY = Identity("User", "admin", roles=("admin",), session_id="s-1234", mfa=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_threads(n_threads: int, total: int, work: Callable[[int], None]) -> float:
    per = total // n_threads
    start = threading.Barrier(n_threads + 1)

    def body(k: int) -> None:
        start.wait()
        for i in range(k * per, (k + 1) * per):
            work(i)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def bench_ours(
    directory: Path, total: int, n_threads: int, signer: CheckpointSigner
) -> dict[str, float]:
    sink = AuditSink(directory, "trail-bench", signer)
    logger = AuditLogger(sink, source="server")
    sink.open()
    latencies: list[float] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        t0 = time.perf_counter()
        future: Future[Receipt] = logger.submit(
            EVENT, identity=IDENTITY, request=request(i), resources=[Resource("user", f"u{i}")]
        )
        future.result()
        dt = time.perf_counter() - t0
        with lock:
            latencies.append(dt)

    elapsed = run_threads(n_threads, total, work)
    stats = dict(sink.stats)
    sink.close()
    done = len(latencies)
    return {
        "events_per_s": done / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "batches": stats["batches"],
        "events": done,
        "checkpoints": stats["checkpoints"],
    }


class FsyncFileHandler(logging.FileHandler):
    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if self.stream is not None:
            os.fsync(self.stream.fileno())


def bench_jupyter_events(
    path: Path, total: int, n_threads: int, fsync: bool, builder: AuditLogger
) -> dict[str, float]:
    """The same events, built the same way, through jupyter_events' own logger."""
    schema = load_schemas().get(EVENT)
    logger = EventLogger()
    logger.register_event_schema(json.loads(repr(schema.schema)))
    handler = (FsyncFileHandler if fsync else logging.FileHandler)(path)
    logger.register_handler(handler)
    latencies: list[float] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        t0 = time.perf_counter()
        data = builder.build(
            EVENT,
            identity=IDENTITY,
            request=request(i),
            resources=[Resource("user", f"u{i}")],
        )
        logger.emit(schema_id=schema.id, data=data)
        dt = time.perf_counter() - t0
        with lock:
            latencies.append(dt)

    elapsed = run_threads(n_threads, total, work)
    handler.close()
    return {
        "events_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


def naive_verify(directory: Path) -> int:
    """Parse each record and hash its canonical re-serialisation (the slow way)."""
    count = 0
    prev = None
    for seg in sorted(directory.glob("segment-*.jsonl")):
        with seg.open("rb") as f:
            for line in f:
                record = json.loads(line)
                claimed = record.pop("hash")
                canonical = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
                hashlib.sha256(canonical).hexdigest()
                if prev is not None and record["prev"] != prev:
                    raise SystemExit("chain broken")
                prev = claimed
                count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=60000, help="events per contender")
    ap.add_argument("--threads", type=int, default=32, help="producer threads")
    args = ap.parse_args()
    logging.getLogger("jupyter_secure").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="audit-bench-", dir=os.environ.get("BENCH_DIR")))
    print(f"{args.events} events, {args.threads} producer threads, on {work}", file=sys.stderr)

    signer = CheckpointSigner(CheckpointSigner.generate_raw())
    ours = bench_ours(work / "audit", args.events, args.threads, signer)
    # An unopened sink: the logger only builds and validates events for the peer.
    builder = AuditLogger(AuditSink(work / "unused", "t", signer), source="server")
    plain = bench_jupyter_events(work / "je.log", args.events, args.threads, False, builder)
    synced = bench_jupyter_events(
        work / "je-fsync.log", args.events // 4, args.threads, True, builder
    )

    t0 = time.perf_counter()
    report = verify_trail(work / "audit", public_keys={signer.key_id: signer.public_key})
    ours_verify = report.records / (time.perf_counter() - t0)
    assert report.ok, report.problems
    t0 = time.perf_counter()
    n = naive_verify(work / "audit")
    naive_rate = n / (time.perf_counter() - t0)

    rows = [
        ("jupyter-secure AuditSink (group commit)", "yes", ours),
        ("jupyter_events FileHandler", "no (no fsync)", plain),
        ("jupyter_events FileHandler + fsync per event", "yes", synced),
    ]
    lines = [
        f"Audit append, {args.threads} threads, {os.cpu_count()} cores "
        f"({time.strftime('%Y-%m-%d')}, `python bench/audit_bench.py --events {args.events}`)",
        "",
        "| sink | durable on return | events/s | p50 ms | p99 ms | events/s vs ours |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, durable, r in rows:
        lines.append(
            f"| {name} | {durable} | {r['events_per_s']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['events_per_s'] / ours['events_per_s']:.2f}x |"
        )
    lines += [
        "",
        f"Group commit: {ours['events']:,.0f} events in {ours['batches']:,.0f} fdatasyncs "
        f"({ours['events'] / max(ours['batches'], 1):.1f} events per flush), "
        f"{ours['checkpoints']:,.0f} signed checkpoints.",
        "",
        "| verification | records/s | vs ours |",
        "|---|---:|---:|",
        f"| `verify_trail` (hash raw line bytes, check chain, seq, signatures) | "
        f"{ours_verify:,.0f} | 1.00x |",
        f"| naive (parse JSON, re-serialise canonically, hash) | {naive_rate:,.0f} | "
        f"{naive_rate / ours_verify:.2f}x |",
        "",
        "Targets: >= 5,000 durable events/s; p99 append-to-durable <= 25 ms; "
        ">= 100,000 records/s verified. "
        + (
            "Met."
            if ours["events_per_s"] >= 5000 and ours["p99_ms"] <= 25 and ours_verify >= 100_000
            else "NOT met."
        ),
    ]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
