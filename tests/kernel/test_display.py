"""Masked display of pandas objects in a real guarded kernel; user config cannot unload it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from faker import Faker
from kernel_harness import Kernel, start_kernel

from jupyter_secure.kernel.sandbox import landlock_abi

pytestmark = pytest.mark.skipif(landlock_abi() < 1, reason="Landlock is not available")


def _people(rows: int) -> dict[str, list[Any]]:
    fake = Faker("en_US")
    fake.seed_instance(20240611)
    return {
        "name": [fake.name() for _ in range(rows)],
        "email": [fake.email() for _ in range(rows)],
        "ssn": [fake.ssn() for _ in range(rows)],
        "score": list(range(rows)),
    }


SMALL = _people(12)
LARGE = _people(100)
RAW = [v for col in ("name", "email", "ssn") for v in SMALL[col] + LARGE[col]]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = start_kernel(tmp_path_factory.mktemp("display"))
    k.stdout(
        "import json, pandas as pd\n"
        f"small = pd.DataFrame(json.loads({json.dumps(json.dumps(SMALL))}))\n"
        f"large = pd.DataFrame(json.loads({json.dumps(json.dumps(LARGE))}))\n"
    )
    yield k
    k.stop()


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = start_kernel(tmp_path_factory.mktemp("admin"), role="admin")
    k.stdout(
        "import json, pandas as pd\n"
        f"small = pd.DataFrame(json.loads({json.dumps(json.dumps(SMALL))}))\n"
    )
    yield k
    k.stop()


def _outputs(kernel: Kernel, code: str) -> list[dict[str, Any]]:
    _, messages, reply = kernel.execute(code)
    assert reply["status"] == "ok", reply
    return [m["content"] for m in messages if m["msg_type"] in ("execute_result", "display_data")]


def _row_labels(text: str) -> list[str]:
    return re.findall(r"^(\d+|\.\.)\s", text, re.MULTILINE)


def _no_raw(text: str) -> None:
    leaked = [v for v in RAW if v in text]
    assert not leaked, leaked[:3]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("code", ["small", "display(small)"])
def test_frame_is_masked_with_shape_kept(kernel: Kernel, code: str) -> None:
    (out,) = _outputs(kernel, code)
    html, plain = out["data"]["text/html"], out["data"]["text/plain"]
    _no_raw(html)
    _no_raw(plain)
    raw = pd.DataFrame(SMALL)
    assert html.count("<tr") == raw._repr_html_().count("<tr")
    assert html.count("<td") == raw._repr_html_().count("<td")
    # Tokens are wider than the raw values, so pandas may fold columns ("...") to fit
    # display.width: compare the row labels, not the line count.
    assert _row_labels(plain) == _row_labels(repr(raw))
    note = out["metadata"]["jupyter_secure"]
    assert note["masked"] is True
    assert note["role"] == "data_scientist"
    assert note["by"] == "kernel"
    assert note["entities"].get("EMAIL") == 12
    assert note["entities"].get("US_SSN") == 12


@pytest.mark.timeout(60)
def test_truncated_frame_keeps_pandas_layout(kernel: Kernel) -> None:
    (out,) = _outputs(kernel, "large")
    html, plain = out["data"]["text/html"], out["data"]["text/plain"]
    _no_raw(html + plain)
    raw = pd.DataFrame(LARGE)
    assert "<p>100 rows \N{MULTIPLICATION SIGN} 4 columns</p>" in html
    assert plain.rstrip().endswith("[100 rows x 4 columns]")
    assert html.count("<tr") == raw._repr_html_().count("<tr")
    assert _row_labels(plain) == _row_labels(repr(raw))
    assert re.search(r"^\s*99\s", plain, re.MULTILINE)  # the tail keeps its labels
    # Only the rendered rows were masked: 5 head + 5 tail.
    assert out["metadata"]["jupyter_secure"]["entities"]["EMAIL"] == 10


@pytest.mark.timeout(60)
def test_series_and_nested_and_styler(kernel: Kernel) -> None:
    (series,) = _outputs(kernel, "small['email']")
    _no_raw(json.dumps(series))
    assert "Name: email" in series["data"]["text/plain"]
    assert series["metadata"]["jupyter_secure"]["entities"] == {"EMAIL": 12}
    (nested,) = _outputs(kernel, "[small['ssn'], small]")
    _no_raw(json.dumps(nested))
    (styled,) = _outputs(kernel, "small.style.highlight_max(subset=['score'])")
    _no_raw(json.dumps(styled))
    assert "background-color: yellow" in styled["data"]["text/html"]
    pd_schema = "pd.set_option('display.html.table_schema', True); small"
    (schema,) = _outputs(kernel, pd_schema)
    assert "application/vnd.dataresource+json" in schema["data"]
    _no_raw(json.dumps(schema))
    kernel.stdout("pd.set_option('display.html.table_schema', False)")


@pytest.mark.timeout(60)
def test_admin_sees_raw(admin: Kernel) -> None:
    (out,) = _outputs(admin, "small")
    assert SMALL["email"][0] in out["data"]["text/html"]
    assert SMALL["ssn"][0] in out["data"]["text/plain"]
    assert "jupyter_secure" not in out["metadata"]


@pytest.mark.timeout(60)
def test_user_profile_and_cwd_config_do_not_run(kernel: Kernel) -> None:
    state = kernel.probe(
        "import json, os, pandas as pd\n"
        "ip = get_ipython()\n"
        "guard = ip.display_formatter.formatters['text/html'].lookup_by_type(pd.DataFrame)\n"
        "print(json.dumps({\n"
        "  'evil': [n for n in ('EVIL', 'EVIL_CONFIG', 'EVIL_CWD') if n in globals()],\n"
        "  'guard': type(guard.__self__).__name__,\n"
        "  'plain': type(ip.display_formatter.formatters['text/plain']"
        ".lookup_by_type(pd.DataFrame).__self__).__name__,\n"
        "  'ipythondir': ip.ipython_dir,\n"
        "}))"
    )
    assert state["evil"] == []
    assert state["guard"] == "DisplayGuard"
    assert state["plain"] == "DisplayGuard"
    assert state["ipythondir"].startswith(str(kernel.layout.private))
    assert not (kernel.layout.workspace / "evil-ran").exists()
    # The evil profile is readable (HOME is in the read list): only IPYTHONDIR keeps it out.
    readable = kernel.probe(
        "import json, os\n"
        "p = os.path.expanduser('~/.ipython/profile_default/startup/00-evil.py')\n"
        "print(json.dumps(os.access(p, os.R_OK) and bool(open(p).read())))"
    )
    assert readable is True
    # A formatter that raises fails closed.
    (out,) = _outputs(
        kernel,
        "import jupyter_secure.kernel.display as d\n"
        "def boom(*args, **kwargs):\n"
        "    raise RuntimeError('engine down')\n"
        "saved, d.mask_for_display = d.mask_for_display, boom\n"
        "try:\n"
        "    display(small)\n"
        "finally:\n"
        "    d.mask_for_display = saved\n",
    )
    assert out["data"]["text/plain"] == "[output withheld: masking failed]"
    assert "withheld" in out["data"]["text/html"]
    assert out["metadata"]["jupyter_secure"]["failed"] is True
