"""Which kernel messages a browser may send, and the scope each one needs.

A closed table: a message type or channel that is not listed is refused
(a new protocol message waits until someone has decided what it may reveal).
``None`` means the message needs nothing beyond the connection itself, which
the route guard and the authorizer already allowed (``kernels:execute`` on
this kernel). Pure data and one function.
"""

from __future__ import annotations

__all__ = ["INCOMING", "MessageRule", "rule_for"]

MessageRule = str | None

_REQUESTS: dict[str, MessageRule] = {
    "execute_request": "kernels:execute",
    "kernel_info_request": None,
    "complete_request": "kernels:execute",
    "inspect_request": "kernels:execute",
    "history_request": "kernels:execute",
    "is_complete_request": None,
    "comm_info_request": "comms:execute",
    "comm_open": "comms:execute",
    "comm_msg": "comms:execute",
    "comm_close": "comms:execute",
    "shutdown_request": "kernels:write",
    "interrupt_request": "kernels:write",
    "usage_request": None,
    "debug_request": "debugger:execute",
}

#: channel -> message type -> scope needed (None: the connection suffices)
INCOMING: dict[str, dict[str, MessageRule]] = {
    "shell": dict(_REQUESTS),
    "control": dict(_REQUESTS),
    "stdin": {"input_reply": "kernels:execute"},
}


def rule_for(channel: str, msg_type: str) -> tuple[bool, MessageRule]:
    """``(known, scope)``: whether the message is in the table, and what it needs."""
    table = INCOMING.get(channel)
    if table is None or msg_type not in table:
        return False, None
    return True, table[msg_type]
