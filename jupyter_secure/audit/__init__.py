"""Audit room: a tamper-evident trail of who did what, when, to which resource.

Pure core (no Jupyter imports): record format and hash chain
(:mod:`.record`), signed checkpoints (:mod:`.checkpoints`) and their
off-site copies (:mod:`.mirror`), the durable multi-process sink
(:mod:`.sink`), verification (:mod:`.verify`), event schemas
(:mod:`.schemas`), the event logger (:mod:`.logger`), the queryable index
(:mod:`.index`) and exports (:mod:`.export`).
"""

from .logger import AuditLogger as AuditLogger
from .logger import Identity as Identity
from .logger import Resource as Resource
from .sink import AuditSink as AuditSink
from .sink import AuditUnavailable as AuditUnavailable
from .sink import Receipt as Receipt
from .verify import VerifyReport as VerifyReport
from .verify import verify_trail as verify_trail

__all__ = [
    "AuditLogger",
    "AuditSink",
    "AuditUnavailable",
    "Identity",
    "Receipt",
    "Resource",
    "VerifyReport",
    "verify_trail",
]
