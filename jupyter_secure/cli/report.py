"""``jupyter secure report``: a periodic review of a time range, as HTML and CSV.

The review is gathered by :mod:`jupyter_secure.monitoring.report`. This
command reads the times, checks the output directory before any slow work,
verifies the audit trail with the verifier ``audit verify`` runs (the
review reports the outcome; it does not refuse to be made for a trail that
fails, since that is exactly when someone must read it), and records the
read as ``AuditQueried`` — only when the trail verified, because appending
to a trail that fails verification would bury the damage under new records.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from traitlets import Bool, Unicode

from ..audit.index import AuditIndex
from ..audit.logger import Resource
from ..audit.mirror import DirectoryMirror, mirror_from_url, read_mirror
from ..audit.verify import verify_trail
from ..errors import InvalidInput
from ..monitoring.report import Review, Verification, check_out_dir, gather, write_report
from ..policy import POLICY_FILENAME, load_policy
from ..state import Store, VerifyMode
from ..storage.database import Database
from .base import StateCommand, parse_time, state_aliases, state_flags

__all__ = ["ReportCommand"]

EXIT_PROBLEMS = 1
DEFAULT_DAYS = 7


def _utc(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


class ReportCommand(StateCommand):
    name = "jupyter-secure-report"
    description = """Write a periodic review of a time range to a directory: report.html
    (one self-contained page with charts) and one CSV per table — sign-ins and failures,
    denials, alarms, top data access, privacy budget spend per user and dataset, stale
    accounts, and whether the audit trail verifies. Default: the last 7 days.

    The directory is written whole or not at all; an existing non-empty one is refused
    unless --force (which replaces only an earlier report). Exit status 1 when the audit
    trail fails verification (the report is still written, and says so)."""
    examples = """
    jupyter secure report --since 2026-11-01 --until 2026-12-01 --out reviews/2026-11
    jupyter secure report --out /srv/reviews/weekly --force --verify newest
    """
    aliases = {
        **state_aliases,
        "since": "ReportCommand.since",
        "until": "ReportCommand.until",
        "out": "ReportCommand.out",
        "stale-days": "ReportCommand.stale_days",
        "verify": "ReportCommand.verify",
    }
    flags = {
        **state_flags,
        "force": (
            {"ReportCommand": {"force": True}},
            "Replace an earlier report in --out (nothing else is ever deleted).",
        ),
    }
    since = Unicode(
        "", help="Start of the period, included (ISO 8601, or 30m, 12h, 7d back from now)."
    ).tag(config=True)
    until = Unicode(
        "", help="End of the period, excluded (ISO 8601, or 30m, 12h, 7d; default: now)."
    ).tag(config=True)
    out = Unicode("", help="Directory to write the report to (created).").tag(config=True)
    stale_days = Unicode(
        "90", help="Days without a sign-in after which an enabled account is stale."
    ).tag(config=True)
    verify = Unicode(
        "full",
        help="How much of the trail to verify: full (every record) or newest (the newest "
        "segment and every checkpoint).",
    ).tag(config=True)
    force = Bool(False, help="Replace an earlier report in --out.").tag(config=True)

    # -- reading the flags ------------------------------------------------------------------

    def period(self, now: float | None = None) -> tuple[dt.datetime, dt.datetime]:
        clock = time.time() if now is None else now
        until_us = parse_time(self.until, "--until", now=clock) if self.until else None
        if until_us is None:
            until_us = int(clock * 1_000_000)
        if self.since:
            since_us = parse_time(self.since, "--since", now=clock)
        else:
            since_us = until_us - DEFAULT_DAYS * 86_400 * 1_000_000
        if since_us >= until_us:
            raise InvalidInput(
                "--since",
                f"must be before --until ({_utc(since_us):%Y-%m-%dT%H:%M:%SZ} is not before "
                f"{_utc(until_us):%Y-%m-%dT%H:%M:%SZ})",
            )
        return _utc(since_us), _utc(until_us)

    def stale(self) -> int:
        try:
            days = int(self.stale_days.strip())
        except ValueError:
            raise InvalidInput(
                "--stale-days", f"{self.stale_days!r} is not a whole number of days"
            ) from None
        if days < 1:
            raise InvalidInput("--stale-days", "must be at least 1")
        return days

    def chosen_mode(self) -> VerifyMode:
        if self.verify == "full":
            return "full"
        if self.verify == "newest":
            return "newest"
        raise InvalidInput("--verify", f"full or newest, not {self.verify!r}")

    def out_dir(self) -> Path:
        if not self.out:
            raise InvalidInput("--out", "give the directory to write the report to")
        out = Path(self.out).expanduser()
        check_out_dir(out, force=self.force, flag="--out")  # before any slow work
        return out

    # -- running ----------------------------------------------------------------------------

    def run(self) -> None:
        self.positional()
        since, until = self.period()
        stale_days, mode, out = self.stale(), self.chosen_mode(), self.out_dir()
        verification = self.verify_trail(mode)
        if verification.ok:
            state = self.state  # appends (AuditQueried) only to a trail that verified
            state.index.flush()
            review = gather(
                state.db,
                state.index,
                load_policy(state.policy_path),
                since=since,
                until=until,
                verification=verification,
                stale_days=stale_days,
            )
            self.record(
                "AuditQueried",
                request={
                    "user": None,
                    "event": None,
                    "since": f"{since:%Y-%m-%dT%H:%M:%S.%fZ}",
                    "until": f"{until:%Y-%m-%dT%H:%M:%S.%fZ}",
                    "resource": None,
                    "format": "report",
                },
                response={"records": review.records_read},
                resources=[Resource("audit-trail", state.trail_id)],
                read_only=True,
            )
        else:
            review = self.gather_read_only(since, until, verification, stale_days)
        paths = write_report(review, out, force=self.force, flag="--out")
        self.show(review, paths)
        if not verification.ok:
            self.exit(EXIT_PROBLEMS)

    def open_store(self) -> Store:
        return Store.open(
            self.resolved_state_dir(), db_url=self.resolved_db_url(), create=False, parent=self
        )

    def verify_trail(self, mode: VerifyMode) -> Verification:
        """The check ``audit verify`` makes (with the configured mirror and the database's
        witness), on the store up to its keys: it must work on a trail that fails."""
        store = self.open_store()
        try:
            progress = self.make_progress("verify")
            mirror = mirror_from_url(
                str(self.config.get("AuditSink", {}).get("checkpoint_mirror") or ""),
                store.trail_id,
            )
            witness = AuditIndex(store.db, store.audit_dir).witness()  # before the files
            report = verify_trail(
                store.audit_dir,
                public_keys=store.public_keys,
                expected_trail=store.trail_id,
                mirror_lines=(
                    read_mirror(mirror.path.parent, store.trail_id)
                    if isinstance(mirror, DirectoryMirror)
                    else None
                ),
                progress=lambda done, total: progress(done, total, " bytes"),
                newest_only=mode == "newest",
                witness=witness,
            )
            progress.finish()
        finally:
            store.close()
        return Verification.of(report, mode)

    def gather_read_only(
        self, since: dt.datetime, until: dt.datetime, verification: Verification, stale_days: int
    ) -> Review:
        """The review of a trail that failed verification, read without appending to it."""
        store = self.open_store()
        try:
            db: Database = store.db
            return gather(
                db,
                AuditIndex(db, store.audit_dir),
                load_policy(store.directory / POLICY_FILENAME),
                since=since,
                until=until,
                verification=verification,
                stale_days=stale_days,
            )
        finally:
            store.close()

    def show(self, review: Review, paths: list[Path]) -> None:
        v = review.verification
        print(
            f"review of {review.since:%Y-%m-%d %H:%M}Z to {review.until:%Y-%m-%d %H:%M}Z "
            f"({review.records_read} audit records read)"
        )
        for path in paths:
            print(path)
        print(f"audit verification: {'ok' if v.ok else 'FAILED'} — {v.summary}")
        if v.problems:
            print(f"first bad record: {v.problems[0]}")
        if review.trail_error:
            print(f"the period's records could not be read: {review.trail_error}")
