"""The output masker: every data-bearing message type, per role, no raw value left."""

from __future__ import annotations

import json
import re

import pytest

from jupyter_secure.channel.outputs import OutputMasker, mask_notebook_outputs
from jupyter_secure.masking import MaskingPolicy

KEY = b"k" * 32
EMAIL, SSN = "alice.lindqvist@example.com", "123-45-6789"
RAW = f"contact {EMAIL} SSN {SSN}"


def masker(role: str) -> OutputMasker:
    return OutputMasker(MaskingPolicy().for_role(role, key=KEY))


def leaks(value: object) -> bool:
    text = json.dumps(value)
    return EMAIL in text or SSN in text


@pytest.mark.parametrize("role", ["data_scientist", "student", "auditor", "viewer", "nobody"])
@pytest.mark.parametrize(
    ("msg_type", "content"),
    [
        ("stream", {"name": "stdout", "text": RAW}),
        ("execute_result", {"data": {"text/plain": RAW, "text/html": f"<td>{RAW}</td>"},
                            "metadata": {}, "execution_count": 1}),
        ("display_data", {"data": {"application/json": {"who": [RAW]}}, "metadata": {}}),
        ("update_display_data", {"data": {"text/markdown": RAW}, "metadata": {}}),
        ("error", {"ename": "ValueError", "evalue": RAW, "traceback": ["x", RAW]}),
        ("execute_reply", {"status": "ok", "user_expressions": {
            "x": {"status": "ok", "data": {"text/plain": RAW}, "metadata": {}}}}),
        ("execute_reply", {"status": "error", "ename": "E", "evalue": RAW, "traceback": [RAW]}),
        ("inspect_reply", {"status": "ok", "found": True, "data": {"text/plain": RAW}}),
        ("complete_reply", {"matches": [EMAIL], "status": "ok"}),
        ("comm_msg", {"comm_id": "c", "data": {"state": {"value": RAW, EMAIL: 1}}}),
        ("debug_reply", {"body": {"variables": [{"value": RAW}]}}),
        ("input_request", {"prompt": RAW, "password": False}),
        ("made_up_by_the_kernel", {"anything": {"deep": [RAW]}}),
        ("display_data", {"data": {}, "metadata": {"note": RAW}}),
    ],
)  # fmt: skip
def test_restricted_roles_never_see_raw_values(role: str, msg_type: str, content: dict) -> None:
    outcome = masker(role).message(msg_type, content)
    assert not leaks(outcome.content), outcome.content
    assert outcome.masked
    assert leaks(content)  # the input is not modified


def test_admin_sees_raw_and_skips_scanning() -> None:
    m = masker("admin")
    assert m.passthrough
    outcome = m.message("stream", {"name": "stdout", "text": RAW})
    assert outcome.content["text"] == RAW
    assert not outcome.masked


def test_non_data_messages_and_binary_mimes_pass() -> None:
    m = masker("student")
    status = {"execution_state": "busy"}
    assert m.message("status", status).content == status
    assert m.message("status", {"execution_state": "idle", "x": RAW}).content == {
        "execution_state": "idle"
    }
    png = {"data": {"image/png": "iVBORw0KGgo=", "text/plain": RAW}, "metadata": {}}
    out = m.message("display_data", png).content
    assert out["data"]["image/png"] == "iVBORw0KGgo="
    assert SSN not in out["data"]["text/plain"]


def test_data_scientist_gets_stable_tokens() -> None:
    m = masker("data_scientist")
    a = m.message("stream", {"name": "stdout", "text": EMAIL}).content["text"]
    b = m.message("stream", {"name": "stdout", "text": f"again {EMAIL}"}).content["text"]
    assert a != EMAIL
    assert a in b


def test_deep_json_is_withheld_not_recursed_forever() -> None:
    deep: object = RAW
    for _ in range(200):
        deep = [deep]
    out = masker("student").message("comm_msg", {"data": deep})
    assert not leaks(out.content)
    assert out.counts.get("WITHHELD") == 1


def test_saved_notebook_outputs_are_masked_in_place() -> None:
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": RAW},
            {
                "cell_type": "code",
                "source": "print(x)",
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": [RAW[:10], RAW[10:]]},
                    {"output_type": "execute_result", "data": {"text/plain": [RAW]},
                     "metadata": {}, "execution_count": 1},
                    {"output_type": "error", "ename": "E", "evalue": RAW, "traceback": [RAW]},
                ],
            },
        ]
    }  # fmt: skip
    counts = mask_notebook_outputs(nb, masker("auditor"))
    outputs = nb["cells"][1]["outputs"]  # type: ignore[index]
    assert not leaks(outputs)
    assert counts
    assert outputs[1]["metadata"]["jupyter_secure"]["masked"] is True
    assert nb["cells"][0]["source"] == RAW  # markdown is the author's text, not an output


@pytest.mark.parametrize("role", ["student", "auditor", "data_scientist"])
def test_printed_containers_keep_their_quotes(role: str) -> None:
    """``print(emails)`` and a printed dict: the guard masks the values, not the repr's quotes."""
    emails = ["ann.lee@example.org", "bob@example.net"]
    record = {"name": "Ann Lee", "email": emails[0]}
    text = f"{emails}\n{record}\n"
    outcome = masker(role).message("stream", {"name": "stdout", "text": text})
    masked = outcome.content["text"]
    first, second, _ = masked.split("\n")
    assert re.fullmatch(r"\['[^',]+', '[^',]+'\]", first), first
    assert re.fullmatch(r"\{'name': '[^',]+', 'email': '[^',]+'\}", second), second
    assert not any(v in masked for v in [*emails, "Ann Lee"])
    assert outcome.counts == {"EMAIL": 3, "PERSON": 1}
