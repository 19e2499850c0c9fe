"""``mask_frame``: a masked copy of a DataFrame for one role, and a report of why.

The input is never modified. Per column, the decision from
:func:`~.columns.classify_columns` and the role's strategy decide what
happens; columns nobody labelled are still scanned cell by cell for a
restricted role (an e-mail address pasted into a "comment" column), and so
are string index levels and the column labels themselves (a pivot by
customer name puts names in the header). Quasi-identifiers that stay visible
go through k-anonymity (:mod:`.kanon`).

Fail-closed rules, in one place:

* an unknown role is treated as the most restrictive one;
* a column whose classification raised is UNCLASSIFIED, redacted for
  restricted roles;
* FREE_TEXT under ``spans`` without an NER model (and without the explicit
  opt-in) is redacted whole;
* tokens and fakes without a key are redactions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .cache import DecisionCache, frame_signature
from .columns import Classification, ColumnDecision, classify_columns, column_name
from .entities import QUASI_IDENTIFIERS, Entity
from .kanon import DECLARED, KAnonPlan, QuasiColumn, plan_k_anonymity
from .policy import RolePolicy
from .report import MaskReport, ReportEntry
from .strategies import DEFAULT_LEVEL, Strategy, generalize, mask_value, redact
from .text import Span, scan_text

__all__ = [
    "MaskResult",
    "MaskedText",
    "apply_spans",
    "display_positions",
    "mask_for_display",
    "mask_frame",
    "mask_text",
    "masked_spans",
]

_SUPPRESSED = "*"


@dataclass(frozen=True)
class MaskResult:
    """The masked frame and the report that goes with it."""

    frame: pd.DataFrame
    report: MaskReport


@dataclass(frozen=True)
class MaskedText:
    """A masked string and how many spans of each entity were masked (no values)."""

    text: str
    counts: dict[str, int]


def _is_textual(series: pd.Series) -> bool:
    dtype = series.dtype
    return (
        ptypes.is_object_dtype(dtype)
        or ptypes.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _span_strategy(entity: str, policy: RolePolicy) -> Strategy:
    strategy = policy.strategy_for(entity)
    if strategy in (Strategy.DROP, Strategy.SUPPRESS, Strategy.SPANS):
        return Strategy.REDACT
    return strategy


def _mask_spans(text: str, spans: list[Span], policy: RolePolicy, counts: dict[str, int]) -> str:
    pieces: list[str] = []
    last = 0
    for span in spans:
        strategy = _span_strategy(span.entity, policy)
        if strategy is Strategy.RAW:
            continue
        pieces.append(text[last : span.start])
        masked, _ = mask_value(text[span.start : span.end], span.entity, strategy, key=policy.key)
        pieces.append(str(masked))
        last = span.end
        counts[span.entity] = counts.get(span.entity, 0) + 1
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def masked_spans(
    text: str, policy: RolePolicy, *, hint: object = None, lo: int = 0, hi: int | None = None
) -> tuple[list[tuple[int, int, str, str]], dict[str, int]]:
    """``(start, end, replacement, entity)`` for each entity found in ``text`` that
    starts in ``[lo, hi)``, and the counts per entity.

    The window lets a caller split a long text into overlapping pieces (each piece
    scanned with context on both sides, each span kept by exactly one piece) and
    mask them in parallel; :func:`mask_text` is the one-piece case.
    """
    counts: dict[str, int] = {}
    out: list[tuple[int, int, str, str]] = []
    if not isinstance(text, str) or not text:
        return out, counts
    end = len(text) if hi is None else hi
    last = 0
    for span in scan_text(text, policy.detection, hint=hint):
        if not lo <= span.start < end or span.start < last:
            continue
        strategy = _span_strategy(span.entity, policy)
        if strategy is Strategy.RAW:
            continue
        masked, _ = mask_value(text[span.start : span.end], span.entity, strategy, key=policy.key)
        out.append((span.start, span.end, str(masked), span.entity))
        last = span.end
        counts[span.entity] = counts.get(span.entity, 0) + 1
    return out, counts


def apply_spans(text: str, replacements: Sequence[tuple[int, int, str, str]]) -> str:
    """``text`` with each ``(start, end, replacement, _)`` applied (sorted, non-overlapping)."""
    if not replacements:
        return text
    pieces: list[str] = []
    last = 0
    for start, end, replacement, _ in replacements:
        pieces.append(text[last:start])
        pieces.append(replacement)
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def mask_text(text: str, policy: RolePolicy, *, hint: object = None) -> MaskedText:
    """Mask the entities found in one string with the role's strategies.

    For output streams and saved notebooks. ``hint`` is a column name or
    similar context for bare numbers.
    """
    if not isinstance(text, str) or not text:
        return MaskedText(text, {})
    replacements, counts = masked_spans(text, policy, hint=hint)
    return MaskedText(apply_spans(text, replacements), counts)


def display_positions(n: int, max_rows: int | None, min_rows: int | None) -> np.ndarray:
    """The row positions pandas renders for a frame of ``n`` rows (head and tail).

    >>> display_positions(100, 60, 10).tolist()
    [0, 1, 2, 3, 4, 95, 96, 97, 98, 99]
    >>> display_positions(8, 60, 10).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    if max_rows is None or max_rows <= 0 or n <= max_rows:
        return np.arange(n)
    fitted = min(min_rows, max_rows) if min_rows else max_rows
    head = max(fitted // 2, 1)
    tail = max(fitted - head, 1)
    return np.concatenate([np.arange(head), np.arange(n - tail, n)])


@dataclass
class _Column:
    """Output of masking one column: new values (or None = unchanged) and report lines."""

    values: list[object] | None
    entries: list[ReportEntry]
    dropped: bool = False


def _map_values(
    values: list[object], isna: np.ndarray, fn: Callable[[object], object], counts: list[int]
) -> list[object]:
    """Apply ``fn`` to each non-null value once per distinct value."""
    memo: dict[tuple[type, object], object] = {}
    out: list[object] = []
    for value, missing in zip(values, isna.tolist(), strict=True):
        if missing:
            out.append(value)
            continue
        key = (type(value), value)  # 1, 1.0 and True hash alike but mask differently
        try:
            hit = memo.get(key, memo)
        except TypeError:
            hit = memo
        if hit is memo:
            hit = fn(value)
            with contextlib.suppress(TypeError):
                memo[key] = hit
        out.append(hit)
        counts[0] += 1
    return out


class _FrameMasker:
    """One masking call: the policy, the decisions and the frame rows being produced."""

    def __init__(
        self,
        policy: RolePolicy,
        classification: Classification,
        plan: KAnonPlan | None,
        rows: np.ndarray,
    ) -> None:
        self.policy = policy
        self.classification = classification
        self.plan = plan
        self.rows = rows
        self.notes: list[str] = []
        self.quasi = {c.position: c for c in plan.columns} if plan else {}

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    @staticmethod
    def _entry(
        d: ColumnDecision, name: str, entity: str, strategy: Strategy, *, count: int, rule: str
    ) -> ReportEntry:
        return ReportEntry(name, d.position, entity, strategy.value, count, rule, d.confidence)

    def column(self, series: pd.Series, d: ColumnDecision, name: str) -> _Column:
        """Mask one column (or index level) according to its decision and the role."""
        values = series.tolist()
        isna = series.isna().to_numpy()
        entity = d.entity
        if d.position in self.quasi:
            return self._quasi(values, isna, d, name)
        if entity is None:
            if self.policy.restricted and _is_textual(series):
                return self._scan_cells(values, isna, d, name)
            return _Column(None, [])
        strategy = self.policy.strategy_for(entity, d.name)
        why = d.evidence[0] if d.evidence else "classified"
        if strategy in (Strategy.RAW, Strategy.DROP):
            count = int((~isna).sum())
            entry = self._entry(d, name, entity, strategy, count=count, rule=why)
            return _Column(None, [entry], strategy is Strategy.DROP)
        if entity == Entity.FREE_TEXT:
            return self._free_text(values, isna, d=d, name=name, strategy=strategy, why=why)
        return self._values(values, isna, d=d, name=name, strategy=strategy, why=why)

    def _values(
        self,
        values: list[object],
        isna: np.ndarray,
        *,
        d: ColumnDecision,
        name: str,
        strategy: Strategy,
        why: str,
    ) -> _Column:
        policy = self.policy
        entity = d.entity or Entity.UNCLASSIFIED
        counts = [0]
        applied: dict[Strategy, int] = {}

        def one(value: object) -> object:
            masked, used = mask_value(value, entity, strategy, key=policy.key)
            applied[used] = applied.get(used, 0) + 1
            return masked

        out = _map_values(values, isna, one, counts)
        keyed = strategy in (Strategy.TOKEN, Strategy.FAKE)
        if keyed and policy.key is None and applied.get(Strategy.REDACT):
            self.note(f"no token key configured: {strategy.value} fell back to redact")
        used = max(applied, key=lambda s: applied[s]) if applied else strategy
        return _Column(out, [self._entry(d, name, entity, used, count=counts[0], rule=why)])

    def _free_text(
        self,
        values: list[object],
        isna: np.ndarray,
        *,
        d: ColumnDecision,
        name: str,
        strategy: Strategy,
        why: str,
    ) -> _Column:
        policy = self.policy
        counts = [0]
        if strategy is Strategy.SPANS and policy.free_text_spans_allowed:
            found: dict[str, int] = {}

            def spans(value: object) -> object:
                text = value if isinstance(value, str) else str(value)
                return _mask_spans(text, scan_text(text, policy.detection), policy, found)

            out = _map_values(values, isna, spans, counts)
            entries = [self._entry(d, name, e, Strategy.SPANS, count=c, rule="spans in free text")
                       for e, c in sorted(found.items())]  # fmt: skip
            return _Column(
                out,
                entries
                or [self._entry(d, name, Entity.FREE_TEXT, Strategy.SPANS, count=0, rule=why)],
            )
        if strategy is Strategy.SPANS:
            self.note("no NER model configured: FREE_TEXT columns are redacted whole (fail closed)")
        if strategy is Strategy.SUPPRESS:
            out = _map_values(values, isna, lambda _v: None, counts)
            return _Column(
                out,
                [
                    self._entry(
                        d, name, Entity.FREE_TEXT, Strategy.SUPPRESS, count=counts[0], rule=why
                    )
                ],
            )
        marker = redact(Entity.FREE_TEXT)
        out = _map_values(values, isna, lambda v: marker if v != marker else "[REDACTED]", counts)
        return _Column(
            out,
            [self._entry(d, name, Entity.FREE_TEXT, Strategy.REDACT, count=counts[0], rule=why)],
        )

    def _scan_cells(
        self, values: list[object], isna: np.ndarray, d: ColumnDecision, name: str
    ) -> _Column:
        policy = self.policy
        found: dict[str, int] = {}
        counts = [0]

        def scan(value: object) -> object:
            if not isinstance(value, str):
                return value
            return _mask_spans(
                value, scan_text(value, policy.detection, hint=d.label), policy, found
            )

        out = _map_values(values, isna, scan, counts)
        if not found:
            return _Column(None, [])
        entries = [
            ReportEntry(name, d.position, e, _span_strategy(e, policy).value, c, "cell scan", None)
            for e, c in sorted(found.items())
        ]
        return _Column(out, entries)

    def _quasi(
        self, values: list[object], isna: np.ndarray, d: ColumnDecision, name: str
    ) -> _Column:
        plan = self.plan
        if plan is None:  # only called for columns of a plan
            return _Column(None, [])
        column = self.quasi[d.position]
        level = plan.levels[d.position]
        suppressed = plan.violating[self.rows]
        entity = column.entity
        out: list[object] = []
        count = 0
        for value, missing, hide in zip(values, isna.tolist(), suppressed.tolist(), strict=True):
            if missing:
                out.append(value)
                continue
            count += 1
            if hide:
                out.append(_SUPPRESSED)
            elif level == 0:
                out.append(value)
            elif entity == DECLARED:
                out.append(_SUPPRESSED)
            else:
                general = generalize(value, entity, level)
                out.append(general if general != str(value) else _SUPPRESSED)
        strategy = Strategy.RAW if level == 0 else Strategy.GENERALIZE
        rule = f"quasi-identifier at level {level} (k-anonymity)"
        shown_entity = d.entity or DECLARED
        changed = level > 0 or bool(plan.violating.any())  # same dtype whichever rows show
        return _Column(
            out if changed else None,
            [self._entry(d, name, shown_entity, strategy, count=count, rule=rule)],
        )


def _quasi_columns(classification: Classification, policy: RolePolicy) -> list[QuasiColumn]:
    declared = set(policy.detection.quasi_identifier_columns)
    out = []
    for d in classification.columns:
        if d.entity in QUASI_IDENTIFIERS:
            strategy = policy.strategy_for(d.entity, d.name)
            if strategy is Strategy.RAW:
                out.append(QuasiColumn(d.position, d.name, d.entity, 0))
            elif strategy in (Strategy.GENERALIZE, Strategy.PARTIAL):
                out.append(QuasiColumn(d.position, d.name, d.entity, DEFAULT_LEVEL[d.entity]))
        elif d.entity is None and d.name in declared:
            out.append(QuasiColumn(d.position, d.name, DECLARED, 0))
    return out


def _masked_label(label: Hashable, policy: RolePolicy) -> tuple[Hashable, bool]:
    """A column label with personal data in it redacted (labels stay labels)."""
    if not policy.restricted:
        return label, False
    parts = label if isinstance(label, tuple) else (label,)
    changed = False
    out: list[Hashable] = []
    for part in parts:
        if isinstance(part, str) and len(part) >= 5:
            spans = scan_text(part, policy.detection)
            spans = [s for s in spans if _span_strategy(s.entity, policy) is not Strategy.RAW]
            if spans:
                text = part
                for span in reversed(spans):
                    text = text[: span.start] + redact(span.entity) + text[span.end :]
                out.append(text)
                changed = True
                continue
        out.append(part)
    if not changed:
        return label, False
    return (tuple(out) if isinstance(label, tuple) else out[0]), True


def _classify_cached(
    df: pd.DataFrame,
    policy: RolePolicy,
    cache: DecisionCache | None,
    signature: object,
    today: date,
) -> tuple[Classification, bool]:
    def compute() -> Classification:
        return classify_columns(df, policy.detection, today=today)

    if cache is None:
        return compute(), False
    return cache.get_or_compute(
        (signature, "classify", policy.detection.fingerprint, today), compute
    )


def _plan_cached(
    df: pd.DataFrame,
    policy: RolePolicy,
    classification: Classification,
    cache: DecisionCache | None,
    signature: object,
) -> tuple[KAnonPlan | None, bool]:
    kanon = policy.kanon
    if kanon is None or not policy.restricted:
        return None, False
    columns = _quasi_columns(classification, policy)
    if not columns:
        return None, False

    k, max_suppression = kanon.k, kanon.max_suppression

    def compute() -> KAnonPlan:
        return plan_k_anonymity(df, columns, k=k, max_suppression=max_suppression)

    if cache is None:
        return compute(), False
    return cache.get_or_compute((signature, "kanon", policy.fingerprint), compute)


def _mask(
    df: pd.DataFrame,
    policy: RolePolicy,
    rows: np.ndarray | None,
    cache: DecisionCache | None,
    today: date | None,
) -> MaskResult:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"mask_frame expects a pandas DataFrame, not {type(df).__name__}")
    day = today if today is not None else date.today()
    signature = frame_signature(df) if cache is not None else None
    classification, class_hit = _classify_cached(df, policy, cache, signature, day)
    plan, plan_hit = _plan_cached(df, policy, classification, cache, signature)
    positions = np.arange(len(df)) if rows is None else rows
    view = df if rows is None else df.iloc[rows]
    masker = _FrameMasker(policy, classification, plan, positions)
    out = view.copy(deep=False)
    entries: list[ReportEntry] = []
    keep: list[int] = []
    dropped: list[str] = []
    labels: list[Hashable] = []
    labels_changed = False
    for d in classification.columns:
        label, changed = _masked_label(d.label, policy)
        labels_changed |= changed
        name = column_name(label)
        if changed:
            entries.append(ReportEntry(name, d.position, "COLUMN_LABEL", "redact", 1, "label scan"))
        result = masker.column(view.iloc[:, d.position], d, name)
        entries.extend(result.entries)
        if result.dropped:
            dropped.append(name)
            continue
        keep.append(d.position)
        labels.append(label)
        if result.values is not None:
            out.isetitem(d.position, pd.Series(result.values, index=view.index, dtype=object).array)
    if classification.index:
        out.index = _mask_index(view.index, classification.index, masker, entries)
    if len(keep) != len(classification.columns):
        out = out.iloc[:, keep]
    if labels_changed:
        out.columns = (
            pd.MultiIndex.from_tuples([tuple(x) for x in labels], names=df.columns.names)  # type: ignore[arg-type]
            if isinstance(df.columns, pd.MultiIndex)
            else pd.Index(labels, dtype=object, name=df.columns.name)
        )
    if plan is not None:
        masker.note(plan.describe())
    review = tuple(note for d in classification.for_review() for note in d.review)
    if not policy.known_role:
        masker.note(f"unknown role {policy.role!r}: most restrictive masking applied")
    report = MaskReport(
        role=policy.role,
        known_role=policy.known_role,
        rows_in=len(df),
        rows_out=len(out),
        columns_in=df.shape[1],
        columns_out=out.shape[1],
        entries=tuple(entries),
        dropped_columns=tuple(dropped),
        kanon=plan.describe() if plan is not None else None,
        review=review,
        notes=tuple(masker.notes),
        cache={"classification": class_hit, "k_anonymity": plan_hit},
    )
    return MaskResult(out, report)


def _mask_index(
    index: pd.Index,
    decisions: tuple[ColumnDecision, ...],
    masker: _FrameMasker,
    entries: list[ReportEntry],
) -> pd.Index:
    arrays = []
    changed = False
    for level, d in enumerate(decisions):
        values = pd.Series(index.get_level_values(level))
        name = f"index: {d.name}"
        result = (
            masker.column(values, d, name) if d.position not in masker.quasi else _Column(None, [])
        )
        entries.extend(result.entries)
        if result.values is not None and not result.dropped:
            arrays.append(pd.Index(result.values, dtype=object, name=index.names[level]))
            changed = True
        elif result.dropped:
            marker = redact(d.entity or "INDEX")
            arrays.append(pd.Index([marker] * len(values), dtype=object, name=index.names[level]))
            changed = True
        else:
            arrays.append(index.get_level_values(level))
    if not changed:
        return index
    if len(arrays) == 1:
        return arrays[0]
    return pd.MultiIndex.from_arrays(arrays, names=index.names)


def mask_frame(
    df: pd.DataFrame,
    role_policy: RolePolicy,
    *,
    cache: DecisionCache | None = None,
    today: date | None = None,
) -> MaskResult:
    """A masked copy of ``df`` for ``role_policy.role`` and a value-free report.

    >>> from jupyter_secure.masking.policy import MaskingPolicy
    >>> frame = pd.DataFrame({"email": ["ann@example.org", None], "n": [1, 2]})
    >>> result = mask_frame(frame, MaskingPolicy().for_role("auditor"))
    >>> result.frame["email"].tolist()[0], frame["email"].tolist()[0]
    ('[EMAIL]', 'ann@example.org')
    """
    return _mask(df, role_policy, None, cache, today)


def mask_for_display(
    df: pd.DataFrame,
    role_policy: RolePolicy,
    *,
    max_rows: int | None = None,
    min_rows: int | None = None,
    cache: DecisionCache | None = None,
    today: date | None = None,
) -> MaskResult:
    """Mask only the rows pandas will render (head and tail), with whole-frame decisions.

    Classification samples the whole frame and k-anonymity counts classes over
    the whole frame, so what a role sees does not depend on which rows are
    shown. ``max_rows`` / ``min_rows`` default to pandas' display options.
    The returned frame keeps the original index labels of the shown rows.
    """
    if max_rows is None:
        max_rows = pd.get_option("display.max_rows")
    if min_rows is None:
        min_rows = pd.get_option("display.min_rows")
    rows = display_positions(len(df), max_rows, min_rows)
    return _mask(df, role_policy, rows, cache, today)
