"""A good dataset spec for the privacy tests, and a way to break one field of it."""

from __future__ import annotations

import copy
from typing import Any

GOOD: dict[str, Any] = {
    "name": "patients",
    "measure": "rho",
    "per_user_budget": "0.5",
    "dataset_cap": "5",
    "privacy_unit": {"id_column": "patient_id", "max_rows_per_person": 3},
    "columns": {
        "age": {"type": "numeric", "lower": 0, "upper": 120},
        "charges": {"type": "numeric", "lower": 0, "upper": 50000.0},
        "sex": {"type": "category", "categories": ["F", "M"]},
    },
}


def with_change(path: str, value: object) -> dict[str, Any]:
    spec = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = spec
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return spec
