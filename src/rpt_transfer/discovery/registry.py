"""The discovery registry in the store: every decision ever recorded, with its evidence, and the watermarks.

Each `discover --submit` run that decided anything commits one folder, `discovery/runs/<run-id>/`, with the
store's manifest protocol (exactly one commit wins; readers trust only manifests): `decisions.jsonl` (one
`Decision` per model), `run.json` (a `RunRecord`: watermarks, bases, the study it submitted) and, when it
submitted one, `study.yaml`. The registry is the union of committed runs, read in run order: a model's
latest decision stands, and a model with a decision is never decided again unless that decision is
retryable (docs/discovery.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from rpt_transfer.store import Store

PREFIX = "discovery/runs"
KIND = "discovery"
MAX_ATTEMPTS = 3
"""Decisions of a broken repo are tried again this many times in all, one run each."""
Outcome = Literal["accepted", "rejected", "skipped"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceRecord(_Frozen):
    """One fact a decision rests on (a `signals.Evidence` as stored)."""

    kind: str
    """What kind of fact: tag, card_text, arxiv, library, name, dataset, relation, card_field."""
    value: str
    """The fact itself, e.g. `grpo` or `base_model:finetune:Qwen/Qwen3-4B`."""
    detail: str
    """Why it counts, in one sentence."""
    against: bool = False
    """True for a fact that speaks against reinforcement post-training (DPO only, SFT only, ...)."""


class Decision(_Frozen):
    """What discovery decided about one model, and why."""

    id: str
    """Hub id of the model."""
    outcome: Outcome
    """accepted (a new RPT pair), rejected (not one), skipped (could be, but cannot be used or told)."""
    reason: str
    """One line: why."""
    base: str
    """The configured base whose descendants listed it."""
    sha: str | None = None
    """The commit the decision looked at (every accepted model is pinned to it); None if never asked."""
    retryable: bool = False
    """Whether a later run decides it again (a broken repo, unknown datasets under another table version)."""
    relation: str | None = None
    """How the card relates it to its parent: finetune, adapter, quantized, merge."""
    parent: str | None = None
    """The declared parent that is a configured base (the pair's base), else the first declared one."""
    algorithm: str | None = None
    """The RL algorithm the evidence names (grpo, ppo, ...), `rl` when only RL itself is evident."""
    confidence: str | None = None
    """How sure the RL finding is: high, medium, low, none."""
    domains: list[str] = []
    """RL data domains from the declared datasets (math, code, knowledge)."""
    datasets: list[str] = []
    """The dataset ids the card declares."""
    unknown_datasets: list[str] = []
    """Declared datasets the curated table does not know (reported, never guessed)."""
    params: int | None = None
    """Parameter count (safetensors total)."""
    created_at: str | None = None
    """When the repo was created on the Hub (ISO 8601, Z)."""
    evidence: list[EvidenceRecord] = []
    """Every fact the decision rests on."""
    table_version: str | None = None
    """Version of the RL dataset table used for the domains."""
    attempts: int = 1
    """How many runs have decided this model."""
    decided_at: str = ""
    """When (ISO 8601, Z)."""


class BaseRecord(_Frozen):
    """A configured base as a run found it."""

    hub: str
    revision: str
    sha: str
    params: int | None = None


class RunRecord(_Frozen):
    """One recorded run: when, with which config, up to where it looked, and what it submitted."""

    run_id: str
    started_at: str
    config_file: str
    config_digest: str
    table_version: str
    watermarks: dict[str, str]
    """`base_model:<relation>:<base>` -> the newest creation time seen (ISO 8601, Z)."""
    bases: list[BaseRecord]
    decisions: int
    study: str | None = None
    """Name of the study submitted, if any."""
    workflow: str | None = None
    namespace: str | None = None


class Registry(NamedTuple):
    """The committed runs, oldest first, and each model's latest decision."""

    runs: list[RunRecord]
    decisions: dict[str, Decision]
    """Lower-cased Hub id -> its latest decision."""

    def watermark(self, key: str) -> datetime | None:
        """The newest creation time any run saw for `base_model:<relation>:<base>`, or None."""
        marks = [run.watermarks[key] for run in self.runs if key in run.watermarks]
        return max((parse_time(mark) for mark in marks), default=None)

    def settled(self, table_version: str) -> set[str]:
        """Lower-cased ids that are not to be decided again."""
        return {key for key, d in self.decisions.items() if not retry_now(d, table_version)}

    def to_retry(self, table_version: str) -> list[Decision]:
        """Decisions to make again in this run."""
        return [d for d in self.decisions.values() if retry_now(d, table_version)]


def retry_now(decision: Decision, table_version: str) -> bool:
    """Unknown datasets are retried once the table has a new version; a broken repo up to MAX_ATTEMPTS."""
    if not decision.retryable:
        return False
    if decision.unknown_datasets:
        return decision.table_version != table_version
    return decision.attempts < MAX_ATTEMPTS


def read(store: Store) -> Registry:
    """Every committed run, oldest first, and the latest decision per model."""
    runs: list[RunRecord] = []
    decisions: dict[str, Decision] = {}
    for run_id in _committed(store):
        folder = f"{PREFIX}/{run_id}"
        runs.append(RunRecord.model_validate_json(store.read_object(folder, "run.json")))
        for line in store.read_object(folder, "decisions.jsonl").decode().splitlines():
            if line.strip():
                decision = Decision.model_validate_json(line)
                decisions[decision.id.lower()] = decision
    return Registry(runs, decisions)


def load(store: Store) -> list[Decision]:
    """Each model's latest decision, in the order they were first made."""
    return list(read(store).decisions.values())


def model_sizes(store: Store) -> dict[str, int]:
    """`hub_id@sha` -> parameter count of every accepted model and of every base a run recorded."""
    registry = read(store)
    sizes = {f"{b.hub}@{b.sha}": b.params for run in registry.runs for b in run.bases if b.params}
    for d in registry.decisions.values():
        if d.outcome == "accepted" and d.sha and d.params:
            sizes[f"{d.id}@{d.sha}"] = d.params
    return sizes


def record(store: Store, run: RunRecord, decisions: list[Decision], study_yaml: str | None) -> str:
    """Commit one run's folder; returns its URI. Nothing is visible to readers before the commit."""
    folder = f"{PREFIX}/{run.run_id}"
    inputs = {"config_digest": run.config_digest, "table_version": run.table_version}
    with store.begin(folder, job_id=run.run_id, kind=KIND, inputs=inputs) as writer:
        writer.put_bytes("decisions.jsonl", "".join(d.model_dump_json() + "\n" for d in decisions).encode())
        writer.put_bytes("run.json", run.model_dump_json(indent=2).encode())
        if study_yaml is not None:
            writer.put_bytes("study.yaml", study_yaml.encode())
    return store.key_uri(folder)


def _committed(store: Store) -> list[str]:
    """Run ids with a manifest, in order (run ids start with their UTC time)."""
    ids = set()
    for key in store.list_keys(PREFIX):
        parts = key.removeprefix(f"{PREFIX}/").split("/")
        if len(parts) == 2 and parts[1] == "MANIFEST.json":
            ids.add(parts[0])
    return sorted(ids)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as stored here (`...Z`), timezone-aware."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def format_time(when: datetime) -> str:
    """A timezone-aware time as stored here: ISO 8601 in UTC with `Z`, milliseconds as the Hub writes."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


__all__ = [
    "BaseRecord",
    "Decision",
    "EvidenceRecord",
    "Registry",
    "RunRecord",
    "load",
    "model_sizes",
    "read",
    "record",
]
