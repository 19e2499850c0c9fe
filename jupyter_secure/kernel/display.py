"""Mask pandas objects where IPython turns them into output: the display formatters.

A DataFrame shown as a cell's last expression or through ``display()`` goes
through ``shell.display_formatter``; formatters registered *by type* win over
the object's own ``_repr_html_`` and friends (IPython looks up type printers
first, along the MRO, so subclasses are covered too). The guard registers,
for ``DataFrame``, ``Series`` and ``Styler``:

* ``text/plain`` (a pretty-printer function ``(obj, p, cycle)``: it also
  covers frames nested in lists and dicts),
* ``text/html`` and ``application/vnd.dataresource+json`` (pandas'
  table-schema output; the guard installs that formatter itself, disabled
  unless the option is on, so that pandas' option callback enables *ours*
  instead of creating an unguarded one),
* ``None`` for every other formatter (LaTeX, Markdown, …): withheld.

Masking keeps the shape of what is shown: only the rows pandas renders are
masked (:func:`~jupyter_secure.masking.mask_for_display`, with decisions
taken on the whole frame), then pandas' own ``repr`` renders them with the
truncation marks and the ``[N rows x M columns]`` footer of the original.
A Styler is masked whole (it renders every row) and re-rendered with the
original's exported styles, hidden rows/columns, caption and value
formatters applied to the *masked* data; if that fails it is rendered as the
masked frame with pandas' default Styler look.

When anything was masked the display's metadata carries
``{"jupyter_secure": {"masked": true, "role": …, "entities": {entity: count},
"by": "kernel"}}`` at the top level (IPython's ``(data, metadata)`` return
only yields per-mimetype metadata, and text/plain printers cannot return any,
so the guard wraps ``display_formatter.format`` to add it). A formatter that
raises fails closed: a short ``[output withheld: masking failed]`` text,
never the raw object.

Limits (the server's channel guard covers them): ``print(df)`` and other
stream output, HTML a user builds with ``df.to_html()``, and user code that
removes these formatters: the kernel runs the user's code.
"""

from __future__ import annotations

import contextvars
import copy
import html
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from jupyter_secure.masking import (
    DecisionCache,
    MaskReport,
    RolePolicy,
    mask_for_display,
    mask_frame,
)

__all__ = ["WITHHELD", "DisplayGuard", "install_display_guard"]

WITHHELD = "[output withheld: masking failed]"
TABLE_SCHEMA = "application/vnd.dataresource+json"
_GUARDED = (pd.DataFrame, pd.Series, Styler)

_collected: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "jupyter_secure_display", default=None
)


def _masked_entities(report: MaskReport) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in report.entries:
        if entry.strategy != "raw" and entry.count:
            counts[entry.entity] = counts.get(entry.entity, 0) + entry.count
    return counts


def _replace_last(text: str, old: str, new: str) -> str:
    head, sep, tail = text.rpartition(old)
    return head + new + tail if sep else text


class DisplayGuard:
    """The masking formatters for one role; :meth:`install` puts them on a shell."""

    def __init__(self, role_policy: RolePolicy, *, cache: DecisionCache | None = None) -> None:
        self.policy = role_policy
        self.cache = cache if cache is not None else DecisionCache()

    # -- bookkeeping ---------------------------------------------------------

    def _note(self, report: MaskReport | None, *, failed: bool = False) -> None:
        found = _collected.get()
        if found is None:
            return
        if failed:
            found["failed"] = True
        if report is not None:
            entities = found.setdefault("entities", {})
            for entity, count in _masked_entities(report).items():
                entities[entity] = max(entities.get(entity, 0), count)

    # -- masking + rendering -------------------------------------------------

    def _shown(self, df: pd.DataFrame) -> tuple[pd.DataFrame, MaskReport, int | None]:
        """The masked rows pandas shows, laid out so pandas truncates them like ``df``.

        Returns the frame to render, the report and, if the rendering's footer
        counts rows that do not exist (the one filler row), that wrong count.
        """
        max_rows = pd.get_option("display.max_rows")
        min_rows = pd.get_option("display.min_rows")
        result = mask_for_display(
            df, self.policy, max_rows=max_rows, min_rows=min_rows, cache=self.cache
        )
        shown = result.frame
        k = len(shown)
        if k == len(df) or k < 2 or k % 2:
            return shown, result.report, None
        # Head and tail: repeat the last head row once so that pandas, told to
        # show k rows of k + 1, cuts exactly that row and draws its "...".
        half = k // 2
        order = np.r_[0:half, half - 1, half:k]
        return shown.take(order), result.report, k + 1

    def _render(
        self, df: pd.DataFrame, render: Callable[[pd.DataFrame], str | None]
    ) -> tuple[str | None, MaskReport]:
        frame, report, filler = self._shown(df)
        if filler is None:
            return render(frame), report
        rows = filler - 1
        with pd.option_context("display.max_rows", rows, "display.min_rows", rows):
            text = render(frame)
        if text is not None:
            text = _replace_last(text, f"{filler} rows", f"{len(df)} rows")
        return text, report

    def _series_frame(self, series: pd.Series) -> pd.DataFrame:
        return series.to_frame(name=series.name if series.name is not None else "value")

    def _as_series(self, frame: pd.DataFrame, series: pd.Series) -> pd.Series | None:
        if frame.shape[1] != 1:
            return None
        out = frame.iloc[:, 0]
        out.name = series.name if series.name is None else frame.columns[0]
        return out

    def frame_text(self, df: pd.DataFrame) -> str:
        text, report = self._render(df, repr)
        self._note(report)
        return text or ""

    def frame_html(self, df: pd.DataFrame) -> str | None:
        text, report = self._render(df, _html_of)
        self._note(report)
        return text

    def series_text(self, series: pd.Series) -> str:
        frame, report, filler = self._shown(self._series_frame(series))
        self._note(report)
        masked = self._as_series(frame, series)
        if masked is None:
            return f"[{len(series)} values withheld by the masking policy]"
        if filler is None:
            return repr(masked)
        rows = filler - 1
        with pd.option_context("display.max_rows", rows, "display.min_rows", rows):
            text = repr(masked)
        return _replace_last(text, f"Length: {filler}", f"Length: {len(series)}")

    def table_schema(self, obj: pd.DataFrame | pd.Series) -> dict[str, Any] | None:
        if not pd.get_option("display.html.table_schema"):
            return None
        head = obj.head(pd.get_option("display.max_rows"))
        frame = self._series_frame(head) if isinstance(head, pd.Series) else head
        result = mask_frame(frame, self.policy, cache=self.cache)
        self._note(result.report)
        masked: pd.DataFrame | pd.Series | None = result.frame
        if isinstance(head, pd.Series):
            masked = self._as_series(result.frame, head)
        if masked is None:
            return None
        return _schema_of(masked)

    def styler_html(self, styler: Any) -> str | None:
        """A Styler: the whole data masked, re-styled (pandas-stubs omit most of its API)."""
        data = styler.data
        result = mask_frame(data, self.policy, cache=self.cache)
        self._note(result.report)
        masked = result.frame
        try:
            restyled: Any = masked.style
            if masked.shape == data.shape:
                restyled.use(styler.export())
                restyled.hidden_rows = list(styler.hidden_rows)
                restyled.hidden_columns = list(styler.hidden_columns)
                restyled.caption = styler.caption
                restyled._display_funcs = copy.copy(styler._display_funcs)
            out: str | None = restyled._repr_html_()
        except Exception:  # the user's style functions may not take masked values
            out = _html_of(masked.style)
        return out

    # -- IPython glue --------------------------------------------------------

    def _plain(self, obj: object, p: Any, cycle: bool) -> None:
        try:
            if isinstance(obj, pd.DataFrame):
                text = self.frame_text(obj)
            elif isinstance(obj, pd.Series):
                text = self.series_text(obj)
            else:
                text = object.__repr__(obj)  # a Styler's default repr holds no data
        except Exception as err:
            _log_failure(err)
            self._note(None, failed=True)
            text = WITHHELD
        p.text(text)

    def _html(self, obj: object) -> str | None:
        try:
            if isinstance(obj, Styler):
                return self.styler_html(obj)
            if isinstance(obj, pd.DataFrame):
                return self.frame_html(obj)
            return None  # a Series has no HTML form
        except Exception as err:
            _log_failure(err)
            self._note(None, failed=True)
            return f"<pre>{html.escape(WITHHELD)}</pre>"

    def _schema(self, obj: object) -> dict[str, Any] | None:
        try:
            if isinstance(obj, pd.DataFrame | pd.Series):
                return self.table_schema(obj)
            return None
        except Exception as err:
            _log_failure(err)
            self._note(None, failed=True)
            return None

    def format(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``DisplayFormatter.format`` to add the top-level masking metadata."""

        def format(
            obj: object, include: Any = None, exclude: Any = None
        ) -> tuple[dict[str, Any], dict[str, Any]]:
            token = _collected.set({})
            try:
                data, metadata = original(obj, include=include, exclude=exclude)
                found = _collected.get() or {}
            finally:
                _collected.reset(token)
            entities = found.get("entities") or {}
            if entities or found.get("failed"):
                metadata = dict(metadata)
                note: dict[str, Any] = {
                    "masked": True,
                    "role": getattr(self.policy, "role", None),
                    "entities": dict(sorted(entities.items())),
                    "by": "kernel",
                }
                if found.get("failed"):
                    note["failed"] = True
                metadata["jupyter_secure"] = note
            return data, metadata

        format.__wrapped__ = original  # type: ignore[attr-defined]
        return format

    def install(self, shell: Any) -> None:
        """Register the formatters on ``shell.display_formatter`` (an IPython shell)."""
        from IPython.core.formatters import BaseFormatter
        from traitlets import ObjectName

        display = shell.display_formatter
        formatters = display.formatters
        if TABLE_SCHEMA not in formatters:

            class TableSchemaFormatter(BaseFormatter):
                """pandas' table-schema formatter, installed early so ours is the one."""

                print_method = ObjectName("_repr_data_resource_")
                _return_type = (dict,)

            formatters[TABLE_SCHEMA] = TableSchemaFormatter(parent=display)
            formatters[TABLE_SCHEMA].enabled = bool(pd.get_option("display.html.table_schema"))
        for mimetype, formatter in formatters.items():
            for cls in _GUARDED:
                if mimetype == "text/plain":
                    formatter.for_type(cls, self._plain)
                elif mimetype == "text/html":
                    formatter.for_type(cls, self._html)
                elif mimetype == TABLE_SCHEMA:
                    formatter.for_type(cls, self._schema)
                else:
                    formatter.for_type(cls, _withhold)
        display.format = self.format(display.format)
        shell.jupyter_secure_display_guard = self


def _html_of(obj: Any) -> str | None:
    """``obj._repr_html_()`` (pandas-stubs do not declare the IPython repr methods)."""
    out: str | None = obj._repr_html_()
    return out


def _schema_of(obj: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None = obj._repr_data_resource_()
    return out


def _withhold(obj: object) -> None:
    """Formats the guard does not mask are not produced at all."""
    return None


def _log_failure(err: BaseException) -> None:
    # The type only: an exception's message may quote a cell value. This goes to
    # the kernel's own stderr (the server's log), not to the notebook.
    stream = sys.__stderr__
    if stream is not None:
        print(f"jupyter-secure: masking failed: {type(err).__name__}", file=stream)


def install_display_guard(shell: Any, role_policy: RolePolicy) -> DisplayGuard:
    """Mask DataFrames, Series and Stylers in ``shell``'s display output for one role."""
    guard = DisplayGuard(role_policy)
    guard.install(shell)
    return guard
