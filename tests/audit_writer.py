"""A separate process that appends to a trail (used by the crash and concurrency tests).

    python audit_writer.py DIR TRAIL COUNT TAG [--threads N] [--code-bytes B] [--wait-for FILE]

The signing key comes hex-encoded in $TEST_SIGNING_KEY. After each append is
acknowledged (durable) it prints ``ack TAG I SEQ`` and flushes, so the parent
knows exactly which events it was promised.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from jupyter_secure.audit.checkpoints import CheckpointSigner
from jupyter_secure.audit.logger import AuditLogger, Identity, Resource
from jupyter_secure.audit.sink import AuditSink, AuditUnavailable


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("directory", type=Path)
    ap.add_argument("trail")
    ap.add_argument("count", type=int)
    ap.add_argument("tag")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--code-bytes", type=int, default=0)
    ap.add_argument("--wait-for", type=Path)
    ap.add_argument(
        "--die-on-file-limit",
        action="store_true",
        help="restore SIGXFSZ's default action (CPython ignores it): a write past "
        "RLIMIT_FSIZE then kills the process part-way through the sink's write",
    )
    args = ap.parse_args()
    if args.die_on_file_limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    signer = CheckpointSigner(bytes.fromhex(os.environ["TEST_SIGNING_KEY"]))
    sink = AuditSink(args.directory, args.trail, signer)
    logger = AuditLogger(sink, source="cli")
    sink.open()
    if args.wait_for is not None:
        while not args.wait_for.exists():
            time.sleep(0.005)
    lock = threading.Lock()
    padding = "x" * args.code_bytes

    def work(worker: int) -> None:
        for i in range(worker, args.count, args.threads):
            try:
                receipt = logger.record(
                    "UserEnabled",
                    identity=Identity("OSUser", args.tag),
                    request={"name": f"{args.tag}-{i}"},
                    resources=[Resource("user", f"{args.tag}-{i}" + padding)],
                )
            except AuditUnavailable as exc:
                with lock:
                    sys.stdout.write(f"refused {args.tag} {i} {exc}\n")
                    sys.stdout.flush()
                continue
            with lock:
                sys.stdout.write(f"ack {args.tag} {i} {receipt.seq}\n")
                sys.stdout.flush()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()


if __name__ == "__main__":
    main()
