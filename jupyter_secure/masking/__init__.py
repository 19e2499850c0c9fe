"""The PII engine: find personal data in frames and text, mask it per role.

A pure library room: no Jupyter imports, no imports from other
``jupyter_secure`` rooms. The kernel guard, the server's output guard,
saved-notebook scrubbing and the CLI all call it. Start with
:func:`classify_columns`, :func:`scan_text` and :func:`mask_frame`; see
``docs/masking.md`` for the policy format and the limitations.
"""

from __future__ import annotations

from .cache import DecisionCache, frame_signature
from .columns import Classification, ColumnDecision, classify_columns, column_name
from .config import ConfigError, CustomIdentifier, DetectionConfig
from .entities import COUNTRY_PACKS, ENTITY_INFO, QUASI_IDENTIFIERS, Entity, EntityInfo, EntityKind
from .fakes import fake_value
from .frame import (
    MaskedText,
    MaskResult,
    apply_spans,
    display_positions,
    mask_for_display,
    mask_frame,
    mask_text,
    masked_spans,
)
from .kanon import KAnonPlan, QuasiColumn, plan_k_anonymity
from .ner import NerModel, NerSpan
from .policy import DEFAULT_TABLE, ROLES, KAnonymityConfig, MaskingPolicy, PolicyError, RolePolicy
from .report import MaskReport, ReportEntry
from .scan import ColumnFindings, FrameScan, scan_frame
from .strategies import Strategy, generalize, mask_value, partial, redact
from .text import Span, scan_text
from .tokens import MIN_KEY_BYTES, check_key, token

__all__ = [
    "COUNTRY_PACKS",
    "DEFAULT_TABLE",
    "ENTITY_INFO",
    "MIN_KEY_BYTES",
    "QUASI_IDENTIFIERS",
    "ROLES",
    "Classification",
    "ColumnDecision",
    "ColumnFindings",
    "ConfigError",
    "CustomIdentifier",
    "DecisionCache",
    "DetectionConfig",
    "Entity",
    "EntityInfo",
    "EntityKind",
    "FrameScan",
    "KAnonPlan",
    "KAnonymityConfig",
    "MaskReport",
    "MaskResult",
    "MaskedText",
    "MaskingPolicy",
    "NerModel",
    "NerSpan",
    "PolicyError",
    "QuasiColumn",
    "ReportEntry",
    "RolePolicy",
    "Span",
    "Strategy",
    "apply_spans",
    "check_key",
    "classify_columns",
    "column_name",
    "display_positions",
    "fake_value",
    "frame_signature",
    "generalize",
    "mask_for_display",
    "mask_frame",
    "mask_text",
    "mask_value",
    "masked_spans",
    "partial",
    "plan_k_anonymity",
    "redact",
    "scan_frame",
    "scan_text",
    "token",
]
