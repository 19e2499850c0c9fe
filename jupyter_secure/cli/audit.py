"""``jupyter secure audit …``: verify, query and export the trail."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from traitlets import Bool, Enum, Int, Unicode

from ..audit.checkpoints import load_public_key, public_key_id, public_key_pem
from ..audit.export import write_csv, write_jsonl
from ..audit.index import QueryFilter
from ..audit.logger import Resource
from ..audit.mirror import DirectoryMirror, mirror_from_url, read_mirror
from ..audit.verify import VerifyReport, verify_trail
from ..errors import InvalidInput
from ..state import Store
from .base import GroupCommand, StateCommand, parse_time, state_aliases, state_flags
from .users import print_table

__all__ = ["AuditCommand"]

EXIT_PROBLEMS = 1


class AuditVerify(StateCommand):
    name = "jupyter-secure-audit-verify"
    description = """Check the whole audit trail: every record's hash, the chain, the
    sequence, every signed checkpoint, and (with a mirror) that nothing was cut off
    past the last copied checkpoint. Names the first bad record.

    Exit status: 0 when all is well, 1 when a problem was found, 2 on a usage error."""
    examples = """
    jupyter secure audit verify
    jupyter secure audit verify --mirror /mnt/audit-copies --json
    jupyter secure audit verify --audit-dir /backup/audit --public-key signing.pem
    """
    aliases = {
        **state_aliases,
        "mirror": "AuditVerify.mirror",
        "public-key": "AuditVerify.public_key",
        "audit-dir": "AuditVerify.audit_dir",
    }
    flags = {**state_flags, "json": ({"AuditVerify": {"as_json": True}}, "Print a JSON report.")}
    mirror = Unicode(
        "", help="Directory of checkpoint copies to compare (default: AuditSink.checkpoint_mirror)."
    ).tag(config=True)
    public_key = Unicode(
        "",
        help="""PEM file of the signing public key (see `audit public-key`). With
        --audit-dir this verifies a copied trail without the state store or its key.""",
    ).tag(config=True)
    audit_dir = Unicode(
        "", help="Verify this audit directory offline instead of the state store's."
    ).tag(config=True)
    as_json = Bool(False, help="Print a JSON report.").tag(config=True)

    def run(self) -> None:
        self.positional()
        if self.audit_dir:
            self.verify_offline()
            return
        # Open only up to the keys: this command must work on a trail that fails.
        store = Store.open(
            self.resolved_state_dir(), db_url=self.resolved_db_url(), create=False, parent=self
        )
        try:
            progress = self.make_progress("verify")
            mirror_dir = self.mirror_dir(store.trail_id)
            report = verify_trail(
                store.audit_dir,
                public_keys=store.public_keys,
                expected_trail=store.trail_id,
                mirror_lines=read_mirror(mirror_dir, store.trail_id) if mirror_dir else None,
                progress=lambda done, total: progress(done, total, " bytes"),
            )
            progress.finish()
        finally:
            store.close()
        if report.ok:
            # Appending is safe only to a trail that verified.
            self.record(
                "AuditVerified",
                request={"mode": "full", "mirror": mirror_dir is not None},
                response={
                    "ok": True,
                    "records": report.records,
                    "problems": 0,
                    "firstProblem": None,
                },
                resources=[Resource("audit-trail", store.trail_id)],
                read_only=True,
            )
        self.show(report)

    def mirror_dir(self, trail_id: str) -> Path | None:
        if self.mirror:
            return Path(self.mirror).expanduser()
        url = str(self.config.get("AuditSink", {}).get("checkpoint_mirror") or "")
        configured = mirror_from_url(url, trail_id)
        return configured.path.parent if isinstance(configured, DirectoryMirror) else None

    def verify_offline(self) -> None:
        if not self.public_key:
            raise InvalidInput("--public-key", "needed with --audit-dir")
        try:
            key = load_public_key(Path(self.public_key).expanduser().read_bytes())
        except (OSError, ValueError) as exc:
            raise InvalidInput(
                "--public-key", f"cannot load an Ed25519 public key: {exc}"
            ) from None
        directory = Path(self.audit_dir).expanduser()
        from ..audit.segments import read_trail_id

        trail = read_trail_id(directory) or ""
        report = verify_trail(
            directory,
            public_keys={public_key_id(key): key},
            mirror_lines=read_mirror(Path(self.mirror), trail) if self.mirror else None,
        )
        self.show(report)

    def show(self, report: VerifyReport) -> None:
        if self.as_json:
            print(json.dumps(report.as_dict(), indent=2))
        else:
            verdict = "OK" if report.ok else "FAILED"
            print(
                f"audit trail {report.trail_id}: {verdict} — {report.records:,} records in "
                f"{report.segments} segments, {report.checkpoints:,} checkpoints, "
                f"checked in {report.seconds:.2f} s"
            )
            if report.problems:
                print(f"first bad record: {report.problems[0]}")
                for problem in report.problems[1:]:
                    print(f"  also: {problem}")
            for notice in report.notices:
                print(f"note: {notice}")
        if not report.ok:
            self.exit(EXIT_PROBLEMS)


class _AuditRead(StateCommand):
    """Filters shared by query and export."""

    aliases = {
        **state_aliases,
        "user": "_AuditRead.user",
        "event": "_AuditRead.event",
        "since": "_AuditRead.since",
        "until": "_AuditRead.until",
        "resource": "_AuditRead.resource",
        "limit": "_AuditRead.limit",
    }
    user = Unicode("", help="Only records of this user.").tag(config=True)
    event = Unicode("", help="Only records with this event name (e.g. UserAdded).").tag(config=True)
    since = Unicode("", help="Only records at or after this time (ISO 8601, or 30m, 12h, 7d).").tag(
        config=True
    )
    until = Unicode("", help="Only records before this time (ISO 8601, or 30m, 12h, 7d).").tag(
        config=True
    )
    resource = Unicode(
        "", help="Only records touching this resource: TYPE:NAME, or NAME of any type."
    ).tag(config=True)
    limit = Int(0, help="At most this many records (0: no limit).").tag(config=True)

    def filter(self) -> QueryFilter:
        if self.event and self.event not in self.state.audit.schemas:
            known = ", ".join(self.state.audit.schemas.names())
            raise InvalidInput("--event", f"unknown event {self.event!r} (known: {known})")
        if self.limit < 0:
            raise InvalidInput("--limit", "must not be negative")
        return QueryFilter(
            user=self.user or None,
            event=self.event or None,
            since_us=parse_time(self.since, "--since") if self.since else None,
            until_us=parse_time(self.until, "--until") if self.until else None,
            resource=self.resource or None,
            limit=self.limit or None,
        )

    def record_read(self, fmt: str, count: int) -> None:
        self.record(
            "AuditQueried",
            request={
                "user": self.user or None,
                "event": self.event or None,
                "since": self.since or None,
                "until": self.until or None,
                "resource": self.resource or None,
                "format": fmt,
            },
            response={"records": count},
            resources=[Resource("audit-trail", self.state.trail_id)],
            read_only=True,
        )


class AuditQuery(_AuditRead):
    name = "jupyter-secure-audit-query"
    description = "Show audit records matching filters, oldest first."
    examples = """
    jupyter secure audit query --user alice --since 7d
    jupyter secure audit query --event UserAdded --json
    jupyter secure audit query --resource user:bob --since 2026-11-01 --until 2026-12-01
    """
    flags = {**state_flags, "json": ({"AuditQuery": {"as_json": True}}, "One JSON record a line.")}
    as_json = Bool(False, help="Print each record as a JSON line.").tag(config=True)

    def run(self) -> None:
        self.positional()
        flt = self.filter()
        self.state.index.flush()
        rows: list[tuple[str, ...]] = [("SEQ", "TIME", "EVENT", "WHO", "RESOURCES", "ERROR")]
        count = 0
        try:
            for line, event in self.state.index.query(flt):
                count += 1
                if self.as_json:
                    sys.stdout.write(line.decode("utf-8"))
                else:
                    rows.append(_summary(event))
            if not self.as_json:
                print_table(rows)
                print(f"{count} record(s)")
        finally:
            # Recorded even when the output was cut short: the records were read.
            self.record_read("json" if self.as_json else "table", count)


def _summary(event: dict[str, Any]) -> tuple[str, ...]:
    who = event["userIdentity"]
    return (
        str(event["seq"]),
        event["eventTime"][:23] + "Z",
        event["eventName"],
        f"{who['name']} ({who['type']})",
        ",".join(f"{r['type']}:{r['name']}" for r in event["resources"]) or "-",
        event["errorCode"] or "",
    )


class AuditExport(_AuditRead):
    name = "jupyter-secure-audit-export"
    description = """Write audit records to a file (or stdout): JSON Lines exactly as stored
    (each line still checks against its hash), or CSV for spreadsheets (formula-safe).
    A file is written whole or not at all."""
    examples = """
    jupyter secure audit export --format csv --output november.csv --since 2026-11-01
    jupyter secure audit export --format jsonl --user alice > alice.jsonl
    """
    aliases = {
        **_AuditRead.aliases,
        "format": "AuditExport.format",
        "output": "AuditExport.output",
    }
    format = Enum(["jsonl", "csv"], default_value="jsonl", help="jsonl or csv.").tag(config=True)
    output = Unicode("", help="File to write (default: stdout).").tag(config=True)

    def run(self) -> None:
        self.positional()
        flt = self.filter()
        self.state.index.flush()
        progress = self.make_progress("export")
        total = self.state.index.count()

        read = 0

        def records() -> Iterator[tuple[bytes, dict[str, Any]]]:
            nonlocal read
            for item in self.state.index.query(flt):
                read += 1
                progress(read, total, " records")
                yield item

        try:
            if self.output:
                count = self.write_file(Path(self.output).expanduser(), records())
            elif self.format == "csv":
                count = write_csv(records(), sys.stdout)
            else:
                count = write_jsonl(records(), sys.stdout.buffer)
        finally:
            progress.finish()
            self.record_read(self.format, read)
        if self.output:
            print(f"wrote {count} record(s) to {self.output}", file=sys.stderr)

    def write_file(self, path: Path, records: Iterable[tuple[bytes, dict[str, Any]]]) -> int:
        """Write to a private temporary file next to ``path``, then rename it into place."""
        if path.is_dir():
            raise InvalidInput("--output", f"{path} is a directory")
        if not path.parent.is_dir():
            raise InvalidInput("--output", f"directory {path.parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            if self.format == "csv":
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                    count = write_csv(records, f)
                    f.flush()
                    os.fsync(f.fileno())
            else:
                with os.fdopen(fd, "wb") as fb:
                    count = write_jsonl(records, fb)
                    fb.flush()
                    os.fsync(fb.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return count


class AuditPublicKey(StateCommand):
    name = "jupyter-secure-audit-public-key"
    description = """Print the PEM public key that verifies this trail's checkpoints, for
    `audit verify --audit-dir … --public-key …` on a copy of the trail elsewhere."""
    examples = "jupyter secure audit public-key > trail-signing.pem"

    def run(self) -> None:
        self.positional()
        sys.stdout.write(public_key_pem(self.state.signer.public_key).decode("ascii"))


class AuditCommand(GroupCommand):
    name = "jupyter-secure-audit"
    description = "Verify, query and export the audit trail."
    examples = "jupyter secure audit verify"
    subcommands = {
        "verify": (AuditVerify, "Check the whole trail and name the first bad record."),
        "query": (AuditQuery, AuditQuery.description),
        "export": (AuditExport, "Write records as JSON Lines or CSV."),
        "public-key": (AuditPublicKey, "Print the checkpoint signing public key."),
    }
