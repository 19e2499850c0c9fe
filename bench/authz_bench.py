"""Authorization decision cost: the policy room against jupyter_server's Authorizer, same run.

    python bench/authz_bench.py                     # 200,000 decisions per contender, ~15 s
    python bench/authz_bench.py --decisions 20000   # quicker
    python bench/authz_bench.py --write             # also write bench/results/authz.md

What is measured, one thread, each call timed on its own (``perf_counter_ns``):

* **ours, warm** — ``Policy.decide`` over a realistic mix (the requests a
  JupyterLab session makes: file reads and saves with path rules, kernel and
  session calls with ownership, kernelspec checks, UI reads, and the denials a
  student meets: other homes, raw data, terminals, foreign kernels). 300
  principals in six roles, a third of them given their roles through groups;
  each principal's roles are already resolved (the server's steady state).
* **ours, cold** — the same mix where every decision is for a principal the
  policy has not seen, so roles, groups and scopes are resolved each time: the
  first request after a sign-in or a policy reload.
* **jupyter_server AllowAllAuthorizer** — ``is_authorized(handler, user,
  action, resource)`` with a stub handler, for the same (action, resource)
  pairs. It is jupyter_server's default and decides nothing (it returns
  ``True``), so it is the floor a call through the Authorizer interface
  costs. The abstract ``Authorizer`` base class raises ``NotImplementedError``
  and cannot be timed.
* **policy load** — parse, validate and compile the default policy file: what
  a hot reload costs.

Target: p99 per decision <= 50 us.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from jupyter_server.auth.authorizer import AllowAllAuthorizer
from jupyter_server.auth.identity import User

from jupyter_secure.policy import (
    Policy,
    Principal,
    default_policy_text,
    parse_policy,
)

RESULTS = Path(__file__).with_name("results")
ROLES = ("admin", "instructor", "data_scientist", "student", "auditor", "viewer")
#: Relative frequency of each role among users (a teaching deployment).
ROLE_WEIGHTS = (1, 4, 10, 70, 2, 13)

GROUPS = """
[groups.course-101]
members = [{members}]
roles = ["student"]

[groups.staff]
roles = ["instructor"]
"""

Request = tuple[Principal, str, dict[str, str]]


def make_policy(group_members: list[str]) -> Policy:
    """The default policy plus two groups, as a deployment would have it."""
    members = ", ".join(f'"{m}"' for m in group_members)
    return parse_policy(default_policy_text() + GROUPS.format(members=members), file="bench")


def make_principals(rng: random.Random, n: int) -> tuple[list[Principal], list[str]]:
    """``n`` users; every third student gets the role through the course group instead."""
    out, grouped = [], []
    for i in range(n):
        name = f"user{i:04d}"
        role = rng.choices(ROLES, ROLE_WEIGHTS)[0]
        if role == "student" and i % 3 == 0:
            out.append(Principal(name))  # the group in the policy file gives the role
            grouped.append(name)
        elif role == "instructor" and i % 2 == 0:
            out.append(Principal(name, groups={"staff"}))  # the account lists the group
        else:
            out.append(Principal(name, {role}))
    return out, grouped


def one_request(rng: random.Random, who: Principal, names: list[str]) -> tuple[str, dict[str, str]]:
    """A request such as JupyterLab makes, drawn with realistic weights (percent)."""
    me, other = who.name, rng.choice(names)
    mix: list[tuple[float, str, dict[str, str]]] = [
        # Open and list files, mostly one's own; autosave.
        (12, "contents:read", {"path": f"home/{me}/analysis.ipynb"}),
        (8, "contents:read", {"path": f"home/{me}/data"}),
        (6, "contents:read", {"path": "shared/lecture3.ipynb"}),
        (4, "contents:read", {"path": ""}),
        (10, "contents:write", {"path": f"home/{me}/analysis.ipynb"}),
        # Kernel websocket and status, starting a kernel, sessions.
        (9, "kernels:execute", {"owner": me}),
        (3, "kernels:read", {"owner": me}),
        (3, "kernels:write", {"owner": me}),
        (5, "kernels:write", {"kernelspec": "jupyter-secure", "owner": me}),
        (8, "sessions:read", {"owner": me}),
        # UI reads on every page load; DP queries and budgets.
        *[(2.4, s, {}) for s in ("api:read", "lab:read", "settings:read", "kernelspecs:read")],
        (2.4, "themes:read", {}),
        (2.5, "secure:datasets:query", {}),
        (2.5, "secure:budgets:read", {}),
        # The denials: another home, raw data, terminals, someone else's kernel, traversal.
        (3, "contents:read", {"path": f"home/{other}/secret.ipynb"}),
        (3, "contents:read", {"path": "shared/raw/patients.csv"}),
        (3, "terminals:execute", {}),
        (2, "kernels:execute", {"owner": other}),
        (2, "kernels:write", {"kernelspec": "python3", "owner": me}),
        (2, "contents:read", {"path": f"home/{other}/../{me}/x"}),
    ]
    _, scope, kw = rng.choices(mix, [w for w, _, _ in mix])[0]
    return scope, kw


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def timed(calls: Sequence[Callable[[], object]]) -> dict[str, float]:
    """Per-call latency in microseconds (clock overhead subtracted), and calls per second."""
    clock = time.perf_counter_ns
    overhead = min(-(clock() - clock()) for _ in range(2000))
    samples: list[int] = []
    gc.collect()
    gc.disable()
    try:
        t_all = time.perf_counter()
        for call in calls:
            t0 = clock()
            call()
            samples.append(clock() - t0 - overhead)
        elapsed = time.perf_counter() - t_all
    finally:
        gc.enable()
    return {
        "p50_us": percentile(samples, 0.50),
        "p99_us": percentile(samples, 0.99),
        "p999_us": percentile(samples, 0.999),
        "mean_us": statistics.fmean(samples) / 1000.0,
        "per_s": len(calls) / elapsed,
    }


class StubHandler:
    """What an Authorizer sees of a request handler: enough for a policy that looks."""

    def __init__(self, user: User) -> None:
        self.current_user = user
        self.request = None
        self.log = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decisions", type=int, default=200_000, help="decisions per contender")
    ap.add_argument("--users", type=int, default=300, help="distinct principals")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--write", action="store_true", help="write bench/results/authz.md")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    principals, grouped = make_principals(rng, args.users)
    names = [p.name for p in principals]
    policy = make_policy(grouped)
    requests: list[Request] = []
    for _ in range(args.decisions):
        who = rng.choice(principals)
        scope, kw = one_request(rng, who, names)
        requests.append((who, scope, kw))

    decide = policy.decide
    for who, scope, kw in requests[:5000]:  # warm: resolve every principal once
        decide(who, scope, **kw)
    allowed = sum(decide(who, scope, **kw).allowed for who, scope, kw in requests)
    warm = timed([partial(decide, w, s, **k) for w, s, k in requests])

    # Cold: a fresh principal (same roles, unseen name) per decision.
    fresh = [
        (Principal(f"{w.name}-{i}", w.roles, w.groups), s, k)
        for i, (w, s, k) in enumerate(requests)
    ]
    cold_policy = make_policy(grouped)
    cold_decide = cold_policy.decide
    cold = timed([partial(cold_decide, w, s, **k) for w, s, k in fresh])

    authorizer = AllowAllAuthorizer()
    users = {p.name: User(username=p.name) for p in principals}
    handlers: dict[str, Any] = {n: StubHandler(u) for n, u in users.items()}  # duck-typed
    peer_calls = []
    for who, scope, _ in requests:
        resource, _, action = scope.rpartition(":")
        h, u = handlers[who.name], users[who.name]
        peer_calls.append(partial(authorizer.is_authorized, h, u, action, resource))
    peer = timed(peer_calls)

    text = default_policy_text()
    loads = []
    for _ in range(50):
        t0 = time.perf_counter_ns()
        parse_policy(text)
        loads.append(time.perf_counter_ns() - t0)
    load_ms = statistics.median(loads) / 1e6

    rows = [
        ("jupyter-secure `Policy.decide`, warm", warm),
        ("jupyter-secure `Policy.decide`, cold (unseen principal)", cold),
        ("jupyter_server `AllowAllAuthorizer.is_authorized` (decides nothing)", peer),
    ]
    lines = [
        f"Authorization decisions, 1 thread, {os.cpu_count()} cores, Python "
        f"{platform.python_version()} ({time.strftime('%Y-%m-%d')}, "
        f"`python bench/authz_bench.py --decisions {args.decisions}`)",
        "",
        f"{args.decisions:,} decisions over {args.users} principals in six roles; "
        f"{allowed / len(requests):.0%} allowed.",
        "",
        "| contender | p50 µs | p99 µs | p99.9 µs | mean µs | decisions/s | p99 vs ours (warm) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['p50_us']:.2f} | {r['p99_us']:.2f} | {r['p999_us']:.2f} | "
            f"{r['mean_us']:.2f} | {r['per_s']:,.0f} | {r['p99_us'] / warm['p99_us']:.2f}x |"
        )
    met = warm["p99_us"] <= 50 and cold["p99_us"] <= 50
    lines += [
        "",
        f"Policy load (parse, validate, compile the default file): {load_ms:.2f} ms median.",
        "",
        "Target: p99 per decision <= 50 µs (warm and cold). " + ("Met." if met else "NOT met."),
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "authz.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
