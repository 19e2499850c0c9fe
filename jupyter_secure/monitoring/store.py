"""Where alarms, baselines and the monitor's place in the trail are kept (the state DB).

One row per alarm (raised → resolved, with its acknowledgement), so the
command line, the REST API and the admin panel all read the same list from
any process. Hourly totals and sign-in networks are kept so a restarted
server keeps its baselines. The monitor's cursor (the last audit sequence
number it has read) is a ``meta`` row written after each batch, so a restart
neither loses nor repeats alarms.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from ..errors import InvalidInput
from ..storage.database import Database
from ..storage.models import Alarm, Meta, MonitorHour, MonitorNetwork, utcnow

__all__ = ["AlarmRow", "AlarmStore", "NoSuchAlarm"]

_CURSOR = "monitor.cursor"
_EVALUATED = "monitor.evaluated"
_STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")


class NoSuchAlarm(InvalidInput):
    def __init__(self, alarm_id: str) -> None:
        super().__init__("alarm", f"no alarm {alarm_id[:64]!r}")


@dataclass(frozen=True)
class AlarmRow:
    """An alarm as the listings show it."""

    id: str
    rule: str
    key: str
    severity: str
    state: str
    reason: str
    value: float | None
    threshold: float | None
    raised_at: dt.datetime
    resolved_at: dt.datetime | None
    acked_by: str | None
    acked_at: dt.datetime | None
    ack_note: str | None

    @classmethod
    def of(cls, row: Alarm) -> AlarmRow:
        return cls(
            row.id,
            row.rule,
            row.key,
            row.severity,
            row.state,
            row.reason,
            row.value,
            row.threshold,
            row.raised_at,
            row.resolved_at,
            row.acked_by,
            row.acked_at,
            row.ack_note,
        )

    def as_dict(self) -> dict[str, Any]:
        def iso(t: dt.datetime | None) -> str | None:
            return t.isoformat().replace("+00:00", "Z") if t is not None else None

        return {
            "id": self.id,
            "rule": self.rule,
            "key": self.key,
            "severity": self.severity,
            "state": self.state,
            "reason": self.reason,
            "value": self.value,
            "threshold": self.threshold,
            "raisedAt": iso(self.raised_at),
            "resolvedAt": iso(self.resolved_at),
            "ackedBy": self.acked_by,
            "ackedAt": iso(self.acked_at),
            "ackNote": self.ack_note,
        }


def _at(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


class AlarmStore:
    """Reads and writes the monitoring tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- alarms -----------------------------------------------------------------------------
    def raised(self, alarm_id: str, *, rule: str, key: str, severity: str, reason: str,
               value: float | None, threshold: float | None, t: float) -> None:  # fmt: skip
        with self.db.write() as s:
            s.add(Alarm(id=alarm_id, rule=rule, key=key[:300], severity=severity,
                        state="ALARM", reason=reason, value=value, threshold=threshold,
                        raised_at=_at(t)))  # fmt: skip

    def left(self, alarm_id: str, *, state: str, reason: str, t: float) -> None:
        """An alarm left ALARM (to OK or INSUFFICIENT_DATA)."""
        with self.db.write() as s:
            row = s.get(Alarm, alarm_id)
            if row is not None:
                row.state, row.resolved_at, row.reason = state, _at(t), reason

    def open_alarms(self) -> list[AlarmRow]:
        with self.db.read() as s:
            rows = s.scalars(select(Alarm).where(Alarm.state == "ALARM")).all()
            return [AlarmRow.of(r) for r in rows]

    def find(
        self, *, state: str | None = None, since: dt.datetime | None = None, limit: int = 100
    ) -> list[AlarmRow]:
        """Newest first; ``state`` one of ALARM, OK, INSUFFICIENT_DATA, or "unacked"."""
        stmt = select(Alarm).order_by(Alarm.raised_at.desc(), Alarm.id.desc())
        if state == "unacked":
            stmt = stmt.where(Alarm.state == "ALARM", Alarm.acked_at.is_(None))
        elif state is not None:
            if state not in _STATES:
                raise InvalidInput("state", f"expected one of {', '.join(_STATES)} or unacked")
            stmt = stmt.where(Alarm.state == state)
        if since is not None:
            stmt = stmt.where(Alarm.raised_at >= since)
        with self.db.read() as s:
            return [AlarmRow.of(r) for r in s.scalars(stmt.limit(max(1, min(limit, 10000))))]

    def ack(
        self, alarm_id: str, *, by: str, note: str, audit: Any = None, **record: Any
    ) -> AlarmRow:
        """Acknowledge, recording ``AlarmAcknowledged`` in the same transaction.

        Acknowledging twice keeps the first acknowledger (and says so by returning it).
        """
        with self.db.write() as s:
            # FOR UPDATE on PostgreSQL: of two acknowledgements at once, the first stands.
            row = s.get(Alarm, alarm_id, with_for_update=True)
            if row is None:
                raise NoSuchAlarm(alarm_id)
            if row.acked_at is None:
                row.acked_by, row.acked_at, row.ack_note = by[:200], utcnow(), note[:500] or None
                if audit is not None:
                    audit.record(
                        "AlarmAcknowledged",
                        request={"alarmId": alarm_id, **({"note": note[:500]} if note else {})},
                        response={"rule": row.rule, "key": row.key, "state": row.state},
                        **record,
                    )
            return AlarmRow.of(row)

    # -- baselines --------------------------------------------------------------------------
    def save_hours(self, signal: str, rows: Iterable[tuple[str, int, float]]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self.db.write() as s:
            for user, hour, value in rows:
                s.merge(MonitorHour(signal=signal, user_name=user[:200], hour=hour, value=value))

    def load_hours(self, signal: str, since_hour: int) -> list[tuple[str, int, float]]:
        with self.db.read() as s:
            rows = s.execute(
                select(MonitorHour.user_name, MonitorHour.hour, MonitorHour.value).where(
                    MonitorHour.signal == signal, MonitorHour.hour >= since_hour
                )
            ).all()
            return [(u, int(h), float(v)) for u, h, v in rows]

    def prune_hours(self, before_hour: int) -> None:
        with self.db.write() as s:
            s.execute(delete(MonitorHour).where(MonitorHour.hour < before_hour))

    def save_networks(self, rows: Iterable[tuple[str, str, float]]) -> None:
        rows = list(rows)
        if not rows:
            return
        with self.db.write() as s:
            for user, network, last in rows:
                s.merge(MonitorNetwork(user_name=user[:200], network=network, last_seen=last))

    def load_networks(self) -> list[tuple[str, str, float]]:
        with self.db.read() as s:
            rows = s.execute(
                select(MonitorNetwork.user_name, MonitorNetwork.network, MonitorNetwork.last_seen)
            ).all()
            return [(u, n, float(t)) for u, n, t in rows]

    # -- cursor -----------------------------------------------------------------------------
    def cursor(self) -> tuple[int | None, float | None]:
        """The last sequence number fed, and the record time last evaluated (None: never)."""
        with self.db.read() as s:
            row = s.get(Meta, _CURSOR)
            evaluated = s.get(Meta, _EVALUATED)
            return (
                int(row.value) if row is not None else None,
                float(evaluated.value) if evaluated is not None else None,
            )

    def set_cursor(self, seq: int, *, evaluated: float) -> None:
        with self.db.write() as s:
            s.merge(Meta(key=_CURSOR, value=str(int(seq))))
            s.merge(Meta(key=_EVALUATED, value=repr(float(evaluated))))
