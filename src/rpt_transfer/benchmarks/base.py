"""What a benchmark is: where its records come from, how a record becomes an item, and how it is scored.

A benchmark module holds data only (source, prompt template, record mapping, scorer name); scoring code lives
in `rpt_transfer.scoring`, so evaluation and RL rewards share one verifier per answer type.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel

from rpt_transfer.benchmarks.sources import DatasetSource
from rpt_transfer.hashing import short_hash

Domain = Literal["math", "code", "knowledge"]
_FINGERPRINT_ITEMS = 32
"""Items and documents hashed into the pre-training fingerprint of a benchmark with pre-training hooks."""
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

    def data_id(self) -> str:
        """Content id of the records, so job ids change whenever the data does."""
        return short_hash([dict(r) for r in self.records()])

    def records(self) -> Iterator[Mapping[str, Any]]:
        """The records, in a fixed order."""
        return self.generator(self.seed, self.count)


class Subset(NamedTuple):
    """A benchmark's sub-task selection: which records count, and how many there are without loading."""

    options: type[BaseModel]
    """Pydantic model of the options a study may set (extra fields forbidden)."""
    keep: Callable[[Mapping[str, Any], BaseModel], bool]
    """Whether a record belongs to the selection."""
    count: Callable[[BaseModel], int]
    """Number of records the selection keeps."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark as the registry knows it; every field that can move a result is part of job ids."""

    name: str
    version: str
    domain: Domain
    source: SyntheticSource | DatasetSource
    to_item: Callable[[Mapping[str, Any]], Item]
    prompt: str
    """A `str.format` template over the item's prompt_vars; states the answer format expected."""
    scorer: str
    """Name of the verifier in `rpt_transfer.scoring`."""
    repeats: int = 1
    """Default samples per item (n) when the study does not set n."""
    description: str = ""
    subset: Subset | None = None
    """Sub-task selection (LegalBench tasks, FinBen subsets, ...), when the benchmark has one."""
    demonstration: Callable[[Item], str] | None = None
    """The completion a tiny model is pre-trained on for an item; None means `ANSWER: <reference>`.
    Changing what it returns changes pre-training, so it must come with a new `version`."""
    documents: Callable[[int, int], list[str]] | None = None
    """Extra pre-training texts as `documents(seed, count)` for a corpus of `count` demonstrations (e.g.
    the fact statements of a synthetic world the questions ask about); None means none. Like
    `demonstration`, a change to what it returns must come with a new `version`."""

    def parse_options(self, options: Mapping[str, Any] | None) -> BaseModel | None:
        """Validated options (defaults when None); a benchmark without a subset takes none."""
        if self.subset is None:
            if options:
                raise ValueError(f"benchmark {self.name} takes no options")
            return None
        return self.subset.options.model_validate(dict(options or {}))

    def items(self, limit: int | None = None, options: Mapping[str, Any] | None = None) -> list[Item]:
        """Items in source order (only the selected sub-tasks), optionally the first `limit`."""
        chosen = self.parse_options(options)
        records = self.source.records()
        if self.subset is not None and chosen is not None:
            records = (r for r in records if self.subset.keep(r, chosen))
        items = [self.to_item(record) for record in records]
        return items[:limit] if limit is not None else items

    def size(self, limit: int | None = None, options: Mapping[str, Any] | None = None) -> int:
        """Number of items, known without loading the data (planning must stay cheap)."""
        chosen = self.parse_options(options)
        total = self.source.count if self.subset is None or chosen is None else self.subset.count(chosen)
        return total if limit is None else min(total, limit)

    def render_prompt(self, item: Item) -> str:
        """The user message for one item."""
        return self.prompt.format(**item.prompt_vars)

    def demonstrate(self, item: Item) -> str:
        """The completion pre-training shows after this item's prompt."""
        return self.demonstration(item) if self.demonstration is not None else f"ANSWER: {item.reference}"

    def identity(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What enters job ids: name, version, data identity, prompt template, scorer and options."""
        identity = {
            "name": self.name,
            "version": self.version,
            "data": self.source.data_id(),
            "prompt_sha": short_hash(self.prompt),
            "scorer": self.scorer,
        }
        if self.demonstration is not None or self.documents is not None:
            identity["pretrain"] = self._pretrain_fingerprint()
        chosen = self.parse_options(options)
        if chosen is not None:
            identity["options"] = chosen.model_dump(mode="json")
        return identity

    def _pretrain_fingerprint(self) -> str:
        """A cheap content hash of the pre-training hooks' output, a guard for a forgotten version bump.

        Only benchmarks with hooks get it, so the identities (and job ids) of the others stay unchanged.
        """
        demonstrations = [self.demonstrate(item) for item in self.items(limit=_FINGERPRINT_ITEMS)]
        documents = self.documents(0, _FINGERPRINT_ITEMS) if self.documents is not None else []
        return short_hash([demonstrations, documents])


def held_out(percent: int, *parts: object) -> bool:
    """Whether a synthetic problem (named by `parts`) belongs to the test split, about `percent` in 100.

    The split is a fixed function of the problem's content, so records drawn with a training seed can skip
    every test problem however many are drawn: train and test never share a problem.
    """
    return int(short_hash(["held-out", *parts], length=8), 16) % 100 < percent


def stable_id(prefix: str, *parts: str) -> str:
    """Item id from content when the dataset has none, e.g. `gsm8k-3f9a1c2e`."""
    return f"{prefix}-{short_hash(list(parts), length=8)}"
