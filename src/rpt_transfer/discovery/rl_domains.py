"""The RL data domains of a model, from the datasets its card declares, through a curated table.

The Hub has no math/code/knowledge taxonomy (hf-hub.md §2.4), and a dataset's name is no proof of what it
holds, so the domains come only from `rl_datasets.yaml`: a hand-kept, versioned table of known RL datasets,
each with why it maps where it does. An id the table does not know stays unknown and is reported, never
guessed; a known id in no platform domain (instruction following, logic puzzles) is neither unknown nor a
domain, and its evidence says so. The table is checked when this module is imported: a malformed entry is a
bug in the package and fails loudly, naming the entry.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rpt_transfer.discovery.signals import Evidence

TABLE_FILE = "rl_datasets.yaml"
DomainName = Literal["math", "code", "knowledge"]
_DATASET_URL = re.compile(r"^(?:https?://)?(?:huggingface\.co|hf\.co)/datasets/")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class DatasetEntry(BaseModel):
    """One known dataset: the platform domains it covers and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domains: list[DomainName]
    """Platform domains the data covers; empty for data known to be in none of them (`note` says what)."""
    why: str = Field(min_length=1)
    """What the data is, in a phrase."""
    source: str = Field(min_length=1)
    """Where that was read (a research note and its source key)."""
    rl: bool = False
    """Published as RL training data, so declaring it is evidence of reinforcement post-training."""
    note: str | None = None
    """What else the data holds that no platform domain covers."""
    aliases: list[str] = []
    """Other ids the Hub resolves to the same repo (legacy canonical names such as `gsm8k`)."""

    @model_validator(mode="after")
    def _domains_explained(self) -> "DatasetEntry":
        if len(set(self.domains)) != len(self.domains):
            raise ValueError(f"domains {self.domains} repeat a domain")
        if not self.domains and not self.note:
            raise ValueError(
                "an entry with no domain needs a `note` saying what the data is (e.g. logic puzzles)"
            )
        return self


class RlDatasetTable(BaseModel):
    """The whole table: its version and the known datasets by Hub id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}\.\d+$")
    """`<date>.<serial>`, bumped on every change and recorded with each domain decision."""
    datasets: dict[str, DatasetEntry]
    """Known datasets by their Hub id (`org/name`, as the Hub spells it)."""

    @field_validator("datasets")
    @classmethod
    def _ids_unique(cls, datasets: dict[str, DatasetEntry]) -> dict[str, DatasetEntry]:
        seen: dict[str, str] = {}
        for repo_id, entry in datasets.items():
            if not _REPO_ID.match(repo_id):
                raise ValueError(f"{repo_id!r} is not a Hub dataset id (org/name)")
            for name in (repo_id, *entry.aliases):
                if name.casefold() in seen:
                    raise ValueError(
                        f"{name!r} of {repo_id} is already {seen[name.casefold()]} (ids and aliases)"
                    )
                seen[name.casefold()] = repo_id
        return datasets


def parse_table(text: str, origin: str = TABLE_FILE) -> RlDatasetTable:
    """The table in `text`, validated; a problem raises ValueError naming the entry and the field."""
    try:
        return RlDatasetTable.model_validate(yaml.safe_load(text))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{origin}: {where}: {first['msg']}") from None


_TABLE = parse_table(resources.files(__package__).joinpath(TABLE_FILE).read_text(encoding="utf-8"))
TABLE_VERSION: str = _TABLE.version
_BY_NAME = {name: repo_id for repo_id, e in _TABLE.datasets.items() for name in (repo_id, *e.aliases)}
_BY_FOLDED = {name.casefold(): repo_id for name, repo_id in _BY_NAME.items()}


class TableMatch(NamedTuple):
    """A declared id found in the table: the table's id, its entry, and how it matched."""

    id: str
    entry: DatasetEntry
    how: str  # "exact" | "alias" | "case-insensitive"


class DomainFinding(NamedTuple):
    """The RL data domains of one model, with the datasets behind them."""

    domains: tuple[str, ...]  # subset of ("code", "knowledge", "math"), sorted; empty if none known
    datasets: tuple[str, ...]  # the declared dataset ids, normalised, deduplicated, in order
    unknown: tuple[str, ...]  # declared ids the table does not know (reported, never guessed)
    evidence: tuple[Evidence, ...]  # one per known dataset: which id mapped to which domains and why


def lookup(dataset_id: str) -> TableMatch | None:
    """The table entry for an id: exact first, then an alias, then the same id in other letter case.

    The Hub resolves ids case-insensitively, so `PRIME-RL/eurus-2-rl-data` is the same repo; the evidence
    says when only the case-insensitive match found it.
    """
    if dataset_id in _TABLE.datasets:
        return TableMatch(dataset_id, _TABLE.datasets[dataset_id], "exact")
    if dataset_id in _BY_NAME:
        return TableMatch(_BY_NAME[dataset_id], _TABLE.datasets[_BY_NAME[dataset_id]], "alias")
    repo_id = _BY_FOLDED.get(dataset_id.casefold())
    return None if repo_id is None else TableMatch(repo_id, _TABLE.datasets[repo_id], "case-insensitive")


def normalise_dataset_id(value: Any) -> str | None:
    """A declared dataset as a Hub id: stripped, without a `https://huggingface.co/datasets/` prefix."""
    if not isinstance(value, str):
        return None
    text = _DATASET_URL.sub("", value.strip()).strip("/")
    return text or None


def _unique(values: Iterable[Any]) -> tuple[str, ...]:
    """Normalised ids in first-seen order; one spelling per id (the Hub treats ids case-insensitively)."""
    kept: dict[str, str] = {}
    for value in values:
        dataset_id = normalise_dataset_id(value)
        if dataset_id is not None:
            kept.setdefault(dataset_id.casefold(), dataset_id)
    return tuple(kept.values())


def declared_datasets(tags: Sequence[str], card_data: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The dataset ids a model declares: its `dataset:<id>` tags, then its card's `datasets` (str or list).

    Both are read because the Hub derives the tags from the card, but only for ids it recognises, and a
    caller may hold list-level tags without the card or the card without tags.
    """
    from_tags = [tag.removeprefix("dataset:") for tag in tags if tag.startswith("dataset:")]
    declared = (card_data or {}).get("datasets")
    from_card = (
        [declared] if isinstance(declared, str) else list(declared) if isinstance(declared, list) else []
    )
    return _unique([*from_tags, *from_card])


def _evidence(dataset_id: str, match: TableMatch) -> Evidence:
    entry = match.entry
    found = {"exact": "", "alias": f" (an alias of {match.id})"}.get(
        match.how, f" (matched {match.id} ignoring letter case)"
    )
    if entry.domains:
        detail = f"{dataset_id}{found} is {'+'.join(entry.domains)} data: {entry.why}"
        detail += f"; {entry.note}" if entry.note else ""
    else:
        detail = f"{dataset_id}{found} is known but in no platform domain ({entry.note}): {entry.why}"
    return Evidence("dataset", dataset_id, f"{detail} [rl_datasets.yaml {TABLE_VERSION}; {entry.source}]")


def infer_domains(dataset_ids: Sequence[str]) -> DomainFinding:
    """Domains of the declared datasets the table knows; the rest are listed as unknown, not guessed."""
    datasets = _unique(dataset_ids)
    domains: set[str] = set()
    unknown: list[str] = []
    evidence: list[Evidence] = []
    for dataset_id in datasets:
        match = lookup(dataset_id)
        if match is None:
            unknown.append(dataset_id)
            continue
        domains.update(match.entry.domains)
        evidence.append(_evidence(dataset_id, match))
    return DomainFinding(tuple(sorted(domains)), datasets, tuple(unknown), tuple(evidence))
