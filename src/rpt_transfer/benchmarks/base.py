"""What a benchmark is: where its records come from, how a record becomes an item, and how it is scored.

A benchmark module holds data only (source, prompt template, record mapping, scorer name); scoring code lives
in `rpt_transfer.scoring`, so evaluation and RL rewards share one verifier per answer type.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rpt_transfer.hashing import short_hash

Domain = Literal["math", "code", "knowledge"]
DOMAINS: tuple[Domain, ...] = ("math", "code", "knowledge")


@dataclass(frozen=True)
class Item:
    """One benchmark question: the variables its prompt needs and the reference its scorer checks."""

    id: str
    prompt_vars: Mapping[str, str]
    reference: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SyntheticSource:
    """Records made by a seeded generator: offline, versioned by its name, seed and count."""

    generator: Callable[[int, int], Iterator[Mapping[str, Any]]]
    """Called as generator(seed, count); yields `count` records."""
    seed: int
    count: int

    def revision(self) -> str:
        """Content id of the records, so job ids change whenever the data does."""
        return short_hash([dict(r) for r in self.records()])

    def records(self) -> Iterator[Mapping[str, Any]]:
        """The records, in a fixed order."""
        return self.generator(self.seed, self.count)


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark as the registry knows it; every field that can move a result is part of job ids."""

    name: str
    version: str
    domain: Domain
    source: SyntheticSource
    to_item: Callable[[Mapping[str, Any]], Item]
    prompt: str
    """A `str.format` template over the item's prompt_vars; states the answer format expected."""
    scorer: str
    """Name of the verifier in `rpt_transfer.scoring`."""
    repeats: int = 1
    """Default samples per item (n) when the study does not say."""
    description: str = ""

    def items(self, limit: int | None = None) -> list[Item]:
        """Items in source order, optionally the first `limit`."""
        items = [self.to_item(record) for record in self.source.records()]
        return items[:limit] if limit is not None else items

    def size(self, limit: int | None = None) -> int:
        """Number of items, known without loading the data (planning must stay cheap)."""
        return self.source.count if limit is None else min(self.source.count, limit)

    def render_prompt(self, item: Item) -> str:
        """The user message for one item."""
        return self.prompt.format(**item.prompt_vars)

    def identity(self) -> dict[str, Any]:
        """What enters job ids: name, version, dataset revision and the prompt template."""
        return {
            "name": self.name,
            "version": self.version,
            "dataset_revision": self.source.revision(),
            "prompt_sha": short_hash(self.prompt),
            "scorer": self.scorer,
        }


def stable_id(prefix: str, *parts: str) -> str:
    """Item id from content when the dataset has none, e.g. `gsm8k-3f9a1c2e`."""
    return f"{prefix}-{short_hash(list(parts), length=8)}"
