"""PII engine benchmark: jupyter-secure's masking room against Presidio and scrubadub.

Generates a seeded Faker frame at run time (16 columns: direct identifiers,
quasi-identifiers, a free-text ``notes`` column that mixes personal data into
sentences, and plain numeric columns), records the ground truth *while
generating* (never from any detector), and measures in the same run:

* throughput: rows/s and MB/s for a full-frame scan, MB/s of ``scan_text`` on
  output-like text (printed tables and log lines);
* accuracy: per-entity precision / recall / F1 with overlap matching,
  character-level recall on the free text, column classification accuracy,
  false-positive columns and the share of non-PII cells flagged;
* masking latency for the rows pandas renders of the frame (first display
  and cached).

Peers run on a row sample (they are two orders of magnitude slower); our
engine is measured on the sample too, for like-for-like accuracy, and on the
full frame for throughput. Presidio runs with its regex recognizers only, on
the ``no_op`` NLP engine that Presidio ships for exactly that purpose (no
spaCy model is loaded or downloaded); tldextract, which Presidio's e-mail
recognizer uses, is given an offline extractor so it does not fetch the
public-suffix list.

Usage::

    .venv/bin/python bench/pii_bench.py              # 100k rows
    .venv/bin/python bench/pii_bench.py --quick      # 5k rows, < 60 s
    .venv/bin/python bench/pii_bench.py --rows 20000 --peer-rows 1000
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from faker import Faker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jupyter_secure.masking import (  # noqa: E402
    DecisionCache,
    MaskingPolicy,
    classify_columns,
    mask_for_display,
    scan_frame,
    scan_text,
)

MAIN_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR")
HELD_OUT_LOCALES = ("fi_FI", "hu_HU", "cs_CZ", "ro_RO")
HELD_OUT_SHARE = 0.1
TODAY = date(2026, 1, 1)
STRUCTURED = ("EMAIL", "US_SSN", "CREDIT_CARD", "IBAN", "IP_ADDRESS")

COLUMN_TRUTH: dict[str, str | None] = {
    "full_name": "PERSON",
    "email": "EMAIL",
    "phone": "PHONE",
    "ssn": "US_SSN",
    "card_number": "CREDIT_CARD",
    "iban": "IBAN",
    "ip_address": "IP_ADDRESS",
    "date_of_birth": "DATE_OF_BIRTH",
    "street_address": "STREET_ADDRESS",
    "postcode": "POSTCODE",
    "sex": "SEX",
    "notes": "FREE_TEXT",
    "order_id": None,
    "batch_id": None,
    "amount": None,
    "created_at": None,
}
NON_PII = [c for c, e in COLUMN_TRUTH.items() if e is None]

# ----------------------------------------------------------------------------------------
# Data generation (ground truth recorded at insertion)
# ----------------------------------------------------------------------------------------


@dataclass
class Note:
    text: str
    spans: list[tuple[int, int, str, bool]]  # start, end, entity, held-out name


class NoteBuilder:
    """Builds one note from template pieces, recording the span of every inserted value."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[int, int, str, bool]] = []
        self.length = 0

    def text(self, value: str) -> None:
        self.parts.append(value)
        self.length += len(value)

    def pii(self, value: str, entity: str, held_out: bool = False) -> None:
        self.spans.append((self.length, self.length + len(value), entity, held_out))
        self.text(value)

    def build(self) -> Note:
        return Note("".join(self.parts), self.spans)


TEMPLATES = (
    "Customer {name} called from {phone} about order {order}.",
    "Refund of ${amount} issued to card {card} for {name}.",
    "{name} (DOB {dob}) moved to {address}.",
    "Please send the signed contract to {email} and copy {name}.",
    "Payment failed: IBAN {iban} was rejected; {name} was informed by phone on {phone}.",
    "Login from {ip} flagged as unusual; user {email} confirmed it was them.",
    "Identity of {name} verified with SSN {ssn}, born {dob}.",
    "Delivery address changed to {address} at the request of {name}.",
    "Spoke with {name} about invoice {order}. No further action needed.",
    "Meeting with {name} and {name} to discuss the renewal of contract {order}.",
    "Account holder {name}, IBAN {iban}, card on file {card}.",
    "Voicemail from {phone}: please call back regarding ticket {order}.",
    "{name} asked whether {email} can be removed from the mailing list.",
    "Patient {name}, date of birth {dob}, lives at {address}.",
    "New ZIP code for {name}: {zip}.",
    "Server {ip} returned an error for user {email}.",
)
NEGATIVE_TEMPLATES = (
    "Customer reports the app crashes on startup; version {version} installed.",
    "Order {order} shipped on {date}.",
    "Ticket {order} closed after {days} days.",
    "Batch {order} reprocessed, {days} records updated at {time}.",
)
DOB_FORMATS = ("%Y-%m-%d", "%B %d, %Y", "%m/%d/%Y", "%d %B %Y")
PLACEHOLDER = "{"


class Generator:
    """Seeded Faker generators per locale and the frame builder."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakers: dict[str, Faker] = {}
        for i, locale in enumerate(MAIN_LOCALES + HELD_OUT_LOCALES):
            fk = Faker(locale)
            fk.seed_instance(seed * 100 + i)
            self.fakers[locale] = fk
        self.us = self.fakers["en_US"]
        self.filler = Faker("en_US")
        self.filler.seed_instance(seed * 100 + 99)

    def locale(self) -> Faker:
        return self.fakers[self.rng.choice(MAIN_LOCALES)]

    def card(self) -> str:
        number = self.us.credit_card_number()
        if self.rng.random() < 0.3 and len(number) == 16:
            sep = self.rng.choice((" ", "-"))
            return sep.join(number[i : i + 4] for i in range(0, 16, 4))
        return number

    def iban(self, fk: Faker) -> str:
        value = fk.iban()
        if self.rng.random() < 0.5:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def ip(self, fk: Faker) -> str:
        return fk.ipv6() if self.rng.random() < 0.2 else fk.ipv4()

    def note(self, fk: Faker) -> Note:
        b = NoteBuilder()
        pieces = []
        if self.rng.random() < 0.2:
            pieces.append(self.rng.choice(NEGATIVE_TEMPLATES))
        else:
            pieces.extend(self.rng.sample(TEMPLATES, self.rng.choice((1, 1, 2))))
        if self.rng.random() < 0.5:
            pieces.insert(self.rng.randrange(len(pieces) + 1), "<filler>")
        for index, template in enumerate(pieces):
            if index:
                b.text(" ")
            if template == "<filler>":
                b.text(self.filler.sentence(nb_words=self.rng.randint(6, 14)))
                continue
            self._fill(b, template, fk)
        return b.build()

    def _fill(self, b: NoteBuilder, template: str, fk: Faker) -> None:
        rest = template
        while PLACEHOLDER in rest:
            before, _, after = rest.partition(PLACEHOLDER)
            key, _, rest = after.partition("}")
            b.text(before)
            self._value(b, key, fk)
        b.text(rest)

    def _value(self, b: NoteBuilder, key: str, fk: Faker) -> None:  # noqa: PLR0912
        rng = self.rng
        if key == "name":
            if rng.random() < HELD_OUT_SHARE:
                held = self.fakers[rng.choice(HELD_OUT_LOCALES)]
                b.pii(held.name(), "PERSON", held_out=True)
            else:
                b.pii(fk.name(), "PERSON")
        elif key == "phone":
            b.pii(fk.phone_number(), "PHONE")
        elif key == "email":
            b.pii(fk.email(), "EMAIL")
        elif key == "ssn":
            b.pii(self.us.ssn(), "US_SSN")
        elif key == "card":
            b.pii(self.card(), "CREDIT_CARD")
        elif key == "iban":
            b.pii(self.iban(fk), "IBAN")
        elif key == "ip":
            b.pii(self.ip(fk), "IP_ADDRESS")
        elif key == "dob":
            born = fk.date_of_birth(minimum_age=18, maximum_age=90)
            b.pii(born.strftime(rng.choice(DOB_FORMATS)), "DATE_OF_BIRTH")
        elif key == "address":
            b.pii(fk.address().replace("\n", ", "), "STREET_ADDRESS")
        elif key == "zip":
            b.pii(fk.postcode(), "POSTCODE")
        elif key == "order":
            b.text(str(rng.randint(10**6, 10**10)))
        elif key == "amount":
            b.text(f"{rng.uniform(5, 900):.2f}")
        elif key == "version":
            b.text(f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}")
        elif key == "date":
            b.text(self.filler.date_between(start_date="-2y").isoformat())
        elif key == "time":
            b.text(self.filler.time())
        elif key == "days":
            b.text(str(rng.randint(1, 40)))
        else:  # pragma: no cover - template typo
            raise KeyError(key)

    def frame(self, rows: int) -> tuple[pd.DataFrame, list[Note]]:
        cols: dict[str, list[Any]] = defaultdict(list)
        notes: list[Note] = []
        rng = self.rng
        for _ in range(rows):
            fk = self.locale()
            cols["full_name"].append(fk.name())
            cols["email"].append(fk.email() if rng.random() > 0.02 else None)
            cols["phone"].append(fk.phone_number() if rng.random() > 0.02 else None)
            cols["ssn"].append(self.us.ssn())
            cols["card_number"].append(self.us.credit_card_number())
            cols["iban"].append(fk.iban() if rng.random() > 0.02 else None)
            cols["ip_address"].append(self.ip(fk))
            cols["date_of_birth"].append(fk.date_of_birth(minimum_age=18, maximum_age=90))
            cols["street_address"].append(fk.street_address())
            cols["postcode"].append(fk.postcode())
            cols["sex"].append(rng.choice("FM"))
            note = self.note(fk)
            notes.append(note)
            cols["notes"].append(note.text)
            cols["order_id"].append(rng.randint(10**8, 10**12))
            cols["batch_id"].append(f"{rng.randint(0, 99999):05d}")
            cols["amount"].append(round(rng.uniform(1, 5000), 2))
            cols["created_at"].append(
                datetime(2023, 1, 1) + pd.Timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
            )
        frame = pd.DataFrame(cols)
        frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"])
        frame["created_at"] = pd.to_datetime(frame["created_at"])
        return frame[list(COLUMN_TRUTH)], notes


def output_text(frame: pd.DataFrame, target_bytes: int, seed: int) -> str:
    """Output-like text: printed slices of the frame plus log lines, about ``target_bytes``."""
    rng = random.Random(seed)
    pieces: list[str] = []
    size = 0
    numeric = frame[["order_id", "amount", "created_at"]]
    while size < target_bytes:
        start = rng.randrange(0, max(1, len(frame) - 40))
        kind = rng.random()
        if kind < 0.4:
            block = frame.iloc[start : start + 20].drop(columns=["notes"]).to_string()
        elif kind < 0.7:
            block = numeric.iloc[start : start + 40].to_string()
        else:
            lines = []
            for row in frame.iloc[start : start + 30].itertuples(index=False):
                lines.append(
                    f"{row.created_at} INFO request user={row.email} ip={row.ip_address} "
                    f"order={row.order_id} amount={row.amount} took {rng.randint(3, 900)}ms"
                )
            block = "\n".join(lines)
        pieces.append(block)
        size += len(block)
    return "\n".join(pieces)


# ----------------------------------------------------------------------------------------
# Ground truth and predictions, per column
# ----------------------------------------------------------------------------------------

Spans = dict[int, list[tuple[int, int, str]]]


@dataclass
class ColumnPrediction:
    """A tool's findings in one column: a whole-column label or spans per row."""

    whole: str | None = None
    flagged: np.ndarray | None = None
    spans: Spans = field(default_factory=dict)


@dataclass
class Truth:
    frame: pd.DataFrame
    notes: list[Note]
    texts: dict[str, list[str | None]]

    @classmethod
    def build(cls, frame: pd.DataFrame, notes: list[Note]) -> Truth:
        texts = {str(c): [None if pd.isna(v) else str(v) for v in frame[c].tolist()] for c in frame}
        return cls(frame, notes, texts)

    def head(self, n: int) -> Truth:
        return Truth.build(self.frame.iloc[:n].copy(), self.notes[:n])

    def gt_spans(self, column: str, row: int) -> list[tuple[int, int, str, bool]]:
        entity = COLUMN_TRUTH[column]
        text = self.texts[column][row]
        if text is None or entity is None:
            return []
        if entity == "FREE_TEXT":
            return self.notes[row].spans
        return [(0, len(text), entity, False)]

    def bytes(self) -> int:
        return sum(len(t) for col in self.texts.values() for t in col if t is not None)


@dataclass
class Scores:
    """Counters for per-entity P/R/F1 and character recall."""

    tp_pred: Counter[str] = field(default_factory=Counter)
    n_pred: Counter[str] = field(default_factory=Counter)
    matched_gt: Counter[str] = field(default_factory=Counter)
    n_gt: Counter[str] = field(default_factory=Counter)
    other_pred: int = 0
    notes_chars: int = 0
    notes_covered: int = 0
    heldout_gt: int = 0
    heldout_matched: int = 0
    nonpii_cells: int = 0
    nonpii_flagged: int = 0

    def prf(self, entity: str) -> tuple[float, float, float]:
        p = self.tp_pred[entity] / self.n_pred[entity] if self.n_pred[entity] else float("nan")
        r = self.matched_gt[entity] / self.n_gt[entity] if self.n_gt[entity] else float("nan")
        ok = not (math.isnan(p) or math.isnan(r)) and p + r > 0
        f = 2 * p * r / (p + r) if ok else float("nan")
        return p, r, f


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _cell_spans(pred: ColumnPrediction, row: int, text: str) -> list[tuple[int, int, str]]:
    if pred.whole is not None and pred.flagged is not None and pred.flagged[row]:
        return [(0, len(text), pred.whole)]
    return pred.spans.get(row, [])


def _score_cell(
    s: Scores,
    gts: list[tuple[int, int, str, bool]],
    spans: list[tuple[int, int, str]],
    known: set[str],
    free_text: bool,
) -> None:
    for start, end, ent in spans:
        if ent not in known:
            s.other_pred += 1
            continue
        s.n_pred[ent] += 1
        s.tp_pred[ent] += any(g[2] == ent and _overlaps((start, end), g[:2]) for g in gts)
    for g in gts:
        s.n_gt[g[2]] += 1
        s.matched_gt[g[2]] += any(p[2] == g[2] and _overlaps(p[:2], g[:2]) for p in spans)
        if g[3]:
            s.heldout_gt += 1
            s.heldout_matched += any(_overlaps(p[:2], g[:2]) for p in spans)
        if free_text:
            covered: set[int] = set()
            for p in spans:
                covered.update(range(max(p[0], g[0]), min(p[1], g[1])))
            s.notes_chars += g[1] - g[0]
            s.notes_covered += len(covered)


def score(truth: Truth, predictions: dict[str, ColumnPrediction], known: set[str]) -> Scores:
    """Overlap-matched counts per entity, character recall on the notes, non-PII flags."""
    s = Scores()
    for column, entity in COLUMN_TRUTH.items():
        pred = predictions[column]
        for row, text in enumerate(truth.texts[column]):
            if text is None:
                continue
            spans = _cell_spans(pred, row, text)
            if entity is None:
                s.nonpii_cells += 1
                s.nonpii_flagged += bool(spans)
                s.other_pred += sum(p[2] not in known for p in spans)
                for p in spans:
                    if p[2] in known:
                        s.n_pred[p[2]] += 1
                continue
            _score_cell(s, truth.gt_spans(column, row), spans, known, entity == "FREE_TEXT")
    return s


# ----------------------------------------------------------------------------------------
# Tools
# ----------------------------------------------------------------------------------------


def ours_predictions(frame: pd.DataFrame) -> dict[str, ColumnPrediction]:
    result = scan_frame(frame, today=TODAY)
    out: dict[str, ColumnPrediction] = {}
    for findings in result.columns:
        column = frame.columns[findings.position]
        if findings.entity is not None and findings.entity != "FREE_TEXT":
            out[column] = ColumnPrediction(findings.entity, findings.flagged)
        else:
            out[column] = ColumnPrediction(
                spans={
                    r: [(s.start, s.end, s.entity) for s in v] for r, v in findings.spans.items()
                }
            )
    return out


PRESIDIO_MAP = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "US_SSN": "US_SSN",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
    "DATE_TIME": "DATE_OF_BIRTH",
    "PERSON": "PERSON",
    "LOCATION": "STREET_ADDRESS",
}
SCRUBADUB_MAP = {
    "email": "EMAIL",
    "phone": "PHONE",
    "social_security_number": "US_SSN",
    "credit_card": "CREDIT_CARD",
    "date_of_birth": "DATE_OF_BIRTH",
    "postalcode": "POSTCODE",
    "name": "PERSON",
    "address": "STREET_ADDRESS",
}


class Peer:
    """A tool measured against ours: per-cell spans and whole-text scanning."""

    name: str = ""
    note: str = ""

    def cell(self, text: str, column: str) -> list[tuple[int, int, str, float]]:
        raise NotImplementedError

    def text(self, text: str) -> int:
        raise NotImplementedError


def _offline_tldextract() -> None:
    """Presidio's e-mail recognizer calls tldextract, which fetches a list by default."""
    import tldextract

    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class PresidioPeer(Peer):
    def __init__(self) -> None:
        _offline_tldextract()
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        config = {
            "nlp_engine_name": "no_op",
            "models": [{"lang_code": "en", "model_name": "no_op"}],
        }
        engine = NlpEngineProvider(nlp_configuration=config).create_engine()
        self.analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
        registry = self.analyzer.registry.recognizers
        recognizers = sorted(str(getattr(r, "name", "?")) for r in registry)
        self.name = f"Presidio {metadata.version('presidio-analyzer')}"
        self.note = (
            "AnalyzerEngine on the shipped `no_op` NLP engine (no spaCy model loaded or "
            f"downloaded), {len(recognizers)} predefined pattern recognizers for `en`, column "
            "name passed as context"
        )

    def cell(self, text: str, column: str) -> list[tuple[int, int, str, float]]:
        results = self.analyzer.analyze(text=text, language="en", context=[column])
        return [
            (r.start, r.end, PRESIDIO_MAP.get(r.entity_type, "OTHER:" + r.entity_type), r.score)
            for r in results
        ]

    def text(self, text: str) -> int:
        return len(self.analyzer.analyze(text=text, language="en"))


class ScrubadubPeer(Peer):
    def __init__(self) -> None:
        _offline_tldextract()
        import scrubadub
        import scrubadub.detectors

        self.scrubber = scrubadub.Scrubber(locale="en_US")
        self.scrubber.add_detector(scrubadub.detectors.DateOfBirthDetector)
        self.name = f"scrubadub {metadata.version('scrubadub')}"
        self.note = (
            "Scrubber(locale='en_US') default detectors plus DateOfBirthDetector "
            f"({', '.join(sorted(self.scrubber._detectors))})"
        )

    def cell(self, text: str, column: str) -> list[tuple[int, int, str, float]]:
        return [
            (f.beg, f.end, SCRUBADUB_MAP.get(f.type, "OTHER:" + f.type), 1.0)
            for f in self.scrubber.iter_filth(text)
        ]

    def text(self, text: str) -> int:
        return len(list(self.scrubber.iter_filth(text)))


@dataclass
class PeerRun:
    predictions: dict[str, dict[str, ColumnPrediction]]
    seconds: float
    labels: dict[str, str | None]


def _scan_pieces(peer: Peer, pieces: list[str]) -> int:
    return sum(peer.text(piece) for piece in pieces)


def run_peer(peer: Peer, truth: Truth, thresholds: Iterable[float]) -> PeerRun:
    raw: dict[str, dict[int, list[tuple[int, int, str, float]]]] = {c: {} for c in COLUMN_TRUTH}
    start = time.perf_counter()
    for column in COLUMN_TRUTH:
        for row, text in enumerate(truth.texts[column]):
            if text is not None:
                found = peer.cell(text, column)
                if found:
                    raw[column][row] = found
    seconds = time.perf_counter() - start
    predictions = {}
    for threshold in thresholds:
        predictions[f"{threshold:g}"] = {
            c: ColumnPrediction(
                spans={
                    r: [(a, b, e) for a, b, e, sc in v if sc >= threshold]
                    for r, v in rows.items()
                    if any(sc >= threshold for *_, sc in v)
                }
            )
            for c, rows in raw.items()
        }
    labels = peer_column_labels(raw, truth)
    return PeerRun(predictions, seconds, labels)


def peer_column_labels(
    raw: dict[str, dict[int, list[tuple[int, int, str, float]]]], truth: Truth, sample: int = 200
) -> dict[str, str | None]:
    """Majority vote over up to 200 sampled non-null cells, like presidio-structured."""
    labels: dict[str, str | None] = {}
    for column in COLUMN_TRUTH:
        rows = [r for r, t in enumerate(truth.texts[column]) if t is not None][:sample]
        votes: Counter[str] = Counter()
        for r in rows:
            for entity in {e for _, _, e, _ in raw[column].get(r, [])}:
                votes[entity] += 1
        top = votes.most_common(1)
        labels[column] = top[0][0] if top and top[0][1] >= 0.5 * len(rows) else None
    return labels


# ----------------------------------------------------------------------------------------
# Measurements of our engine
# ----------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    best = float("inf")
    value = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def classification_accuracy(labels: dict[str, str | None]) -> tuple[int, int, int]:
    correct = sum(labels.get(c) == e for c, e in COLUMN_TRUTH.items())
    fp_columns = sum(labels.get(c) is not None for c in NON_PII)
    applicable = sum(labels.get(c) == e for c, e in COLUMN_TRUTH.items() if e != "FREE_TEXT")
    return correct, fp_columns, applicable


def fmt(x: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def ratio(a: float, b: float, higher_is_better: bool = True) -> str:
    if not higher_is_better and a == 0 and b > 0:
        return "inf"
    if math.isnan(a) or math.isnan(b) or b == 0 or a == 0:
        return "n/a"
    value = a / b if higher_is_better else b / a
    return f"{value:,.0f}x" if value >= 10 else f"{value:.1f}x"


@dataclass
class Results:
    rows: int
    peer_rows: int
    seed: int
    gen_seconds: float
    frame_bytes: int
    lines: list[str] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--peer-rows", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="5k rows, 500 peer rows")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pii.md")
    args = parser.parse_args(argv)
    rows = 5_000 if args.quick else args.rows
    peer_rows = args.peer_rows or (500 if args.quick else min(2_000, rows))
    peer_rows = min(peer_rows, rows)
    text_bytes = 1_000_000 if args.quick else 5_000_000

    print(f"generating {rows} rows (seed {args.seed}) ...", flush=True)
    gen_seconds, (frame, notes) = timed(lambda: Generator(args.seed).frame(rows))
    truth = Truth.build(frame, notes)
    frame_bytes = truth.bytes()
    print(f"  {gen_seconds:.1f} s, {frame_bytes / 1e6:.1f} MB of cell text", flush=True)

    # -- our engine: classification ------------------------------------------------------
    cold, classification = timed(lambda: classify_columns(frame, today=TODAY))
    warm, _ = timed(lambda: classify_columns(frame, today=TODAY), repeat=5)
    our_labels = {d.name: d.entity for d in classification.columns}
    our_correct, our_fp_cols, _ = classification_accuracy(our_labels)
    hidden = frame.copy()
    hidden.columns = [f"c{i:02d}" for i in range(frame.shape[1])]
    hidden_labels = {
        col: d.entity
        for col, d in zip(COLUMN_TRUTH, classify_columns(hidden, today=TODAY).columns, strict=True)
    }
    hidden_correct, hidden_fp, _ = classification_accuracy(hidden_labels)
    print(
        f"classify_columns: {our_correct}/16 cold {cold * 1e3:.1f} ms warm {warm * 1e3:.1f} ms",
        flush=True,
    )

    # -- our engine: full-frame scan -------------------------------------------------------
    print("scanning the full frame ...", flush=True)
    scan_seconds, full_pred = timed(lambda: ours_predictions(frame))
    known = {e for e in COLUMN_TRUTH.values() if e} | {"POSTCODE", "AGE"}
    known.discard("FREE_TEXT")
    full_scores = score(truth, full_pred, known)
    print(f"  {scan_seconds:.1f} s = {rows / scan_seconds:,.0f} rows/s", flush=True)

    # -- scan_text on output-like text -------------------------------------------------------
    out_text = output_text(frame, text_bytes, args.seed)
    text_seconds, _ = timed(lambda: scan_text(out_text), repeat=3)
    notes_blob = "\n".join(n.text for n in notes)
    prose_seconds, _ = timed(lambda: scan_text(notes_blob), repeat=1)

    # -- masking latency for the rendered rows -------------------------------------------------
    key = bytes(range(32))
    policy = MaskingPolicy()
    display: dict[str, tuple[float, float, str]] = {}
    for role in ("data_scientist", "student", "auditor"):
        role_policy = policy.for_role(role, key=key)
        firsts = []
        for _ in range(3):  # a fresh cache each time: the first display of this frame
            cache = DecisionCache()
            show = functools.partial(mask_for_display, frame, role_policy, cache=cache, today=TODAY)
            seconds, result = timed(show)
            firsts.append(seconds)
        cached, _ = timed(show, repeat=5)
        display[role] = (statistics.median(firsts), cached, result.report.kanon or "-")

    # -- like-for-like sample ----------------------------------------------------------------
    sample = truth.head(peer_rows)
    sample_seconds, sample_pred = timed(lambda: ours_predictions(sample.frame))
    ours_sample = score(sample, sample_pred, known)

    peers: list[tuple[str, Peer | None, str]] = []
    if not args.no_peers:
        factories: tuple[type[Peer], ...] = (PresidioPeer, ScrubadubPeer)
        for factory in factories:
            try:
                made = factory()
                peers.append((made.name, made, made.note))
            except Exception as exc:
                peers.append(
                    (factory.__name__, None, f"could not run: {type(exc).__name__}: {exc}")
                )
    peer_results: list[dict[str, Any]] = []
    for name, peer, note in peers:
        if peer is None:
            peer_results.append({"name": name, "note": note, "ok": False})
            continue
        print(f"running {name} on {peer_rows} rows ...", flush=True)
        thresholds = (0.0, 0.5) if isinstance(peer, PresidioPeer) else (0.0,)
        run = run_peer(peer, sample, thresholds)
        chunk = out_text[: 30_000 if args.quick else 200_000]
        pieces = [chunk[i : i + 10_000] for i in range(0, len(chunk), 10_000)]
        peer_text_seconds, _ = timed(functools.partial(_scan_pieces, peer, pieces))
        correct, fp_cols, applicable = classification_accuracy(run.labels)
        for threshold, preds in run.predictions.items():
            label = name if len(run.predictions) == 1 else f"{name} (score >= {threshold})"
            peer_results.append(
                {
                    "name": label,
                    "note": note,
                    "ok": True,
                    "scores": score(sample, preds, known),
                    "rows_s": peer_rows / run.seconds,
                    "mb_s": sample.bytes() / run.seconds / 1e6,
                    "text_mb_s": len(chunk) / peer_text_seconds / 1e6,
                    "columns": correct,
                    "columns_applicable": applicable,
                    "fp_cols": fp_cols,
                }
            )

    # -- report ------------------------------------------------------------------------------
    lines = render(
        args=args,
        rows=rows,
        peer_rows=peer_rows,
        gen_seconds=gen_seconds,
        frame_bytes=frame_bytes,
        cold=cold,
        warm=warm,
        our_correct=our_correct,
        our_fp_cols=our_fp_cols,
        hidden=(hidden_correct, hidden_fp, hidden_labels),
        our_labels=our_labels,
        scan_seconds=scan_seconds,
        full_scores=full_scores,
        text=(len(out_text), text_seconds, len(notes_blob), prose_seconds),
        display=display,
        sample_seconds=sample_seconds,
        ours_sample=ours_sample,
        sample_bytes=sample.bytes(),
        peer_results=peer_results,
    )
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


def _rate(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def nonpii_rate(s: Scores) -> float:
    return _rate(s.nonpii_flagged, s.nonpii_cells)


def char_recall(s: Scores) -> float:
    return _rate(s.notes_covered, s.notes_chars)


class Headline:
    """The headline table: one row per metric, ours, each peer, and the ratios."""

    def __init__(self, peers: list[dict[str, Any]]) -> None:
        self.peers = peers
        names = [p["name"] for p in peers]
        self.lines = [
            "| metric | target | ours | " + " | ".join(names) + " | "
            + " | ".join(f"ours vs {n}" for n in names) + " |",
            "|---|---|---|" + "---|" * (2 * len(peers)),
        ]  # fmt: skip

    def row(
        self,
        metric: str,
        target: str,
        ours: float | str,
        peer_values: list[float | str] | None = None,
        *,
        higher: bool = True,
        digits: int = 3,
    ) -> None:
        values = peer_values if peer_values is not None else ["n/a"] * len(self.peers)
        shown = [v if isinstance(v, str) else fmt(v, digits) for v in values]
        ratios = [
            ratio(ours, v, higher) if not isinstance(ours, str) and not isinstance(v, str) else "-"
            for v in values
        ]
        mine = ours if isinstance(ours, str) else fmt(ours, digits)
        cells = [metric, target, mine, *shown, *ratios]
        self.lines.append("| " + " | ".join(cells) + " |")


def headline(k: dict[str, Any]) -> list[str]:
    peers = [p for p in k["peer_results"] if p["ok"]]
    full: Scores = k["full_scores"]
    mine: Scores = k["ours_sample"]
    text_len, text_seconds, _, _ = k["text"]
    first, cached, _ = k["display"]["data_scientist"]
    t = Headline(peers)
    t.row(
        "column classification (of 16)",
        "16/16",
        f"{k['our_correct']}/16",
        [f"{p['columns']}/16 ({p['columns_applicable']}/15 w/o free text)" for p in peers],
    )
    t.row("column classification, warm (ms)", "<= 50", k["warm"] * 1e3, digits=1)
    t.row("column classification, cold (ms)", "-", k["cold"] * 1e3, digits=1)
    t.row(
        "false-positive columns (of 4 non-PII)",
        "0",
        f"{k['our_fp_cols']}",
        [f"{p['fp_cols']}" for p in peers],
    )
    t.row(
        "non-PII cells flagged, *sample*",
        "< 1%",
        nonpii_rate(mine),
        [nonpii_rate(p["scores"]) for p in peers],
        higher=False,
        digits=4,
    )
    t.row("non-PII cells flagged, full frame", "< 1%", nonpii_rate(full), digits=4)
    t.row(
        "full-frame scan (rows/s)",
        ">= 5,000",
        k["rows"] / k["scan_seconds"],
        [p["rows_s"] for p in peers],
        digits=0,
    )
    t.row(
        "full-frame scan (MB/s)",
        "-",
        k["frame_bytes"] / k["scan_seconds"] / 1e6,
        [p["mb_s"] for p in peers],
    )
    t.row(
        "scan_text, output-like text (MB/s)",
        ">= 5",
        text_len / text_seconds / 1e6,
        [p["text_mb_s"] for p in peers],
        digits=2,
    )
    for entity in STRUCTURED:
        t.row(
            f"{entity} F1, *sample*",
            ">= 0.99",
            mine.prf(entity)[2],
            [p["scores"].prf(entity)[2] for p in peers],
        )
        t.row(f"{entity} F1, full frame", ">= 0.99", full.prf(entity)[2])
    t.row(
        "free-text char recall, *sample*",
        ">= 0.95",
        char_recall(mine),
        [char_recall(p["scores"]) for p in peers],
    )
    t.row("free-text char recall, full frame", ">= 0.95", char_recall(full))
    t.row("mask rendered rows, first display (ms)", "<= 50", first * 1e3, digits=1)
    t.row("mask rendered rows, cached (ms)", "<= 10", cached * 1e3, digits=1)
    return t.lines  # fmt: skip


def per_entity(k: dict[str, Any]) -> list[str]:
    peers = [p for p in k["peer_results"] if p["ok"]]
    mine: Scores = k["ours_sample"]
    lines = [
        "| entity | GT | ours P / R / F1 | "
        + " | ".join(f"{p['name']} P / R / F1" for p in peers)
        + " |",
        "|---|---|---|" + "---|" * len(peers),
    ]
    for entity in sorted(mine.n_gt):
        cells = ["/".join(fmt(x, 2) for x in mine.prf(entity))]
        cells += ["/".join(fmt(x, 2) for x in p["scores"].prf(entity)) for p in peers]
        lines.append(f"| {entity} | {mine.n_gt[entity]} | " + " | ".join(cells) + " |")
    others = " | ".join(str(p["scores"].other_pred) for p in peers)
    lines.append(
        f"| other types reported (not in our vocabulary) | - | {mine.other_pred} | {others} |"
    )
    return lines


def full_frame(k: dict[str, Any]) -> list[str]:
    full: Scores = k["full_scores"]
    rows, peer_rows = k["rows"], k["peer_rows"]
    lines = ["| entity | GT | P | R | F1 |", "|---|---|---|---|---|"]
    for entity in sorted(full.n_gt):
        p_, r_, f_ = full.prf(entity)
        lines.append(f"| {entity} | {full.n_gt[entity]} | {fmt(p_)} | {fmt(r_)} | {fmt(f_)} |")
    hidden_correct, hidden_fp, hidden_labels = k["hidden"]
    wrong = [f"{c} -> {hidden_labels[c]}" for c, e in COLUMN_TRUTH.items() if hidden_labels[c] != e]
    named = [
        f"{c} -> {k['our_labels'][c]}" for c, e in COLUMN_TRUTH.items() if k["our_labels"][c] != e
    ]
    text_len, text_seconds, prose_len, prose_seconds = k["text"]
    held = _rate(full.heldout_matched, full.heldout_gt)
    lines += [
        "",
        f"* Full-frame scan (`scan_frame`, classification included): {k['scan_seconds']:.1f} s"
        f" for {rows:,} rows; on the {peer_rows:,}-row sample:"
        f" {peer_rows / k['sample_seconds']:,.0f} rows/s.",
        f"* Free-text character recall {fmt(char_recall(full))}. PERSON recall on names from "
        f"held-out locales {', '.join(HELD_OUT_LOCALES)} (not in our name lists; "
        f"{HELD_OUT_SHARE:.0%} of the names in notes): {fmt(held)} ({full.heldout_gt} names).",
        f"* `scan_text`: {text_len / text_seconds / 1e6:.2f} MB/s on {text_len / 1e6:.1f} MB of "
        "output-like text (printed frame slices, numeric tables and log lines); "
        f"{prose_len / prose_seconds / 1e6:.2f} MB/s on all notes joined into one text.",
        f"* Column classification with the generated names: {k['our_correct']}/16"
        + (f" (wrong: {', '.join(named)})" if named else "")
        + f"; with headers hidden (`c00`..`c15`): {hidden_correct}/16, {hidden_fp} false-positive"
        " columns"
        + (f" (wrong: {', '.join(wrong)})" if wrong else "")
        + ". Without a header, a column of 5-digit strings or of datetimes cannot be told from"
        " batch ids or timestamps; the engine reports such columns for review instead.",
        "* `mask_for_display` (the 10 rows pandas renders of the whole frame; classification and"
        " k-anonymity over all rows), first display of the frame (median of 3 runs, each with a"
        " fresh cache, engine already loaded) / cached (best of 5):",
    ]
    for role, (first, cached, kanon) in k["display"].items():
        lines.append(f"  * `{role}`: {first * 1e3:.1f} ms / {cached * 1e3:.1f} ms; {kanon}")
    return lines


def render(**k: Any) -> list[str]:
    args = k["args"]
    rows, peer_rows = k["rows"], k["peer_rows"]
    command = "bench/pii_bench.py" + (" --quick" if args.quick else f" --rows {rows}")
    lines = [
        "# PII engine benchmark",
        "",
        f"`{command}` on {datetime.now().date().isoformat()}: {rows:,} rows x 16 columns "
        f"({k['frame_bytes'] / 1e6:.1f} MB of cell text; Faker locales {', '.join(MAIN_LOCALES)}; "
        f"seed {args.seed}; generated in {k['gen_seconds']:.0f} s), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, pandas {pd.__version__}. Peers ran on the first "
        f"{peer_rows:,} rows; rows marked *sample* compare every tool on those rows.",
        "",
        "## Headline (targets from issue 5)",
        "",
        *headline(k),
        "",
        "Ratios: ours / peer for throughput and scores, peer / ours for the share of non-PII "
        "cells flagged (so >1x is better for us everywhere). Our throughput is measured on the "
        "full frame, the peers' on their sample (they analyse cell by cell, so their rate does "
        "not depend on the frame's size).",
        "",
        "## Per-entity precision / recall / F1 (overlap matching), *sample*",
        "",
        "Ground truth comes from the generator: every non-null cell of a PII column, and every "
        f"value inserted into a note. {peer_rows:,} rows.",
        "",
        *per_entity(k),
        "",
        "## Our engine on the full frame",
        "",
        *full_frame(k),
        "",
        "## Peers as configured",
        "",
    ]
    seen = set()
    for p in k["peer_results"]:
        base = p["name"].split(" (score")[0]
        if base not in seen:
            seen.add(base)
            lines.append(f"* **{base}**: {p['note']}.")
    lines.append(
        "* Peer column labels: majority vote over the first 200 non-null cells of the sample "
        "(the most frequent entity, if found in at least half of them), as presidio-structured "
        "does. Peers have no free-text label, so the notes column counts against them; the "
        "figure in brackets leaves it out."
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
