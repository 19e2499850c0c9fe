"""The plug-in point for a named-entity model that a site supplies.

The engine ships rules, not models: names and addresses in prose are found
with word lists and an address grammar, which is as far as a shipped resource
goes. A site with a model (spaCy, a transformers pipeline, a hosted service
inside its own network) wraps it in an object with a ``find`` method and puts
it in :class:`~jupyter_secure.masking.config.DetectionConfig` as ``ner``.

Two things change when a model is present:

* its spans are merged with the rule spans in :func:`~.text.scan_text`;
* FREE_TEXT columns may be masked span by span (strategy ``spans``) for
  restricted roles. Without a model they are masked whole, because the rules
  alone are not trusted to find every name in prose (fail closed).

The engine never downloads or loads a model itself. Example adapter for a
spaCy pipeline the site has installed::

    class SpacyNer:
        name = "spacy:en_core_web_lg"
        labels = {"PERSON": "PERSON", "GPE": "STREET_ADDRESS", "FAC": "STREET_ADDRESS"}

        def __init__(self, nlp):
            self._nlp = nlp

        def find(self, text):
            for ent in self._nlp(text).ents:
                entity = self.labels.get(ent.label_)
                if entity:
                    yield NerSpan(ent.start_char, ent.end_char, entity, 0.8)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["NerModel", "NerSpan"]


@dataclass(frozen=True, slots=True)
class NerSpan:
    """One entity a model found: character offsets, an engine entity name, a score."""

    start: int
    end: int
    entity: str
    score: float = 0.8


@runtime_checkable
class NerModel(Protocol):
    """What the engine needs from a site-supplied model.

    ``entity`` in each span must be an engine entity name (``"PERSON"``,
    ``"STREET_ADDRESS"`` …); map the model's own labels in the adapter. Spans
    with unknown entities or offsets outside the text are ignored.
    """

    name: str

    def find(self, text: str) -> Iterable[NerSpan]:
        """Return the entities in ``text``."""
        ...
