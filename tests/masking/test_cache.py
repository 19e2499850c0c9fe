from __future__ import annotations

import pandas as pd
import pytest

from jupyter_secure.masking import DecisionCache, frame_signature


def test_signature_tracks_shape_dtypes_labels_and_sampled_values() -> None:
    frame = pd.DataFrame({"a": list(range(100)), "b": ["x"] * 100})
    base = frame_signature(frame)
    assert frame_signature(frame) == base
    edited = frame.copy()
    assert frame_signature(edited) != base  # another object
    edited2 = edited.copy()
    same_object = frame_signature(edited2)
    edited2.iloc[0, 0] = -1  # row 0 is always fingerprinted
    assert frame_signature(edited2) != same_object
    renamed = frame.rename(columns={"a": "c"})
    assert frame_signature(renamed)[3] != base[3]
    assert frame_signature(frame.astype({"a": "float64"}))[2] != base[2]


def test_lru_and_invalidate() -> None:
    cache = DecisionCache(maxsize=2)
    frame = pd.DataFrame({"a": [1]})
    signature = frame_signature(frame)
    calls = []
    for key in [(signature, "x"), (signature, "y"), ("other", "z")]:
        cache.get_or_compute(key, lambda k=key: calls.append(k) or k)
    assert len(cache) == 2
    assert cache.misses == 3
    assert cache.get_or_compute(("other", "z"), lambda: "new") == (("other", "z"), True)
    assert cache.invalidate(frame) == 1
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="maxsize"):
        DecisionCache(0)
