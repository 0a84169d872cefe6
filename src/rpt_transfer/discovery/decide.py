"""One candidate model, one decision with its evidence: accepted, rejected or skipped (docs/discovery.md).

Cheap checks first: what the listing already says (a relation not followed, no RL signal, private, gated,
too large) decides without another request (`screen`). A survivor costs one `model_info` and one README
download (`examine`): then its declared parent and relation (`lineage`), its RL evidence (`signals`) and
its RL data domains (`rl_domains`). Each step that ends the decision says why, and the evidence gathered
so far goes with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from rpt_transfer.discovery import lineage, rl_domains, signals
from rpt_transfer.discovery.config import DiscoveryConfig
from rpt_transfer.discovery.hub import Hub, Model, Unusable
from rpt_transfer.discovery.registry import Decision, EvidenceRecord, Outcome, format_time


class Via(NamedTuple):
    """How discovery came to a candidate: the configured base whose listing showed it."""

    base: str

    def evidence(self) -> signals.Evidence:
        """The listing itself, as evidence: the Hub's `base_model:<base>` tag put the model there."""
        tag = f"base_model:{self.base}"
        return signals.Evidence(
            "relation", tag, f"listed by the Hub filter {tag}: its card names {self.base}"
        )


class _Draft:
    """A decision being made: who, how found, what is known so far and the evidence gathered."""

    def __init__(self, model: Model, via: Via, attempts: int) -> None:
        self.model, self.via, self.attempts = model, via, attempts
        self.evidence: list[EvidenceRecord] = [_record(via.evidence())]
        self.fields: dict[str, Any] = {}

    def add(self, evidence: Iterable[signals.Evidence], against: bool = False) -> None:
        self.evidence += [_record(e, against) for e in evidence if _record(e, against) not in self.evidence]

    def end(self, outcome: Outcome, reason: str, retryable: bool = False) -> Decision:
        model = self.model
        return Decision(
            id=model.id,
            outcome=outcome,
            reason=reason,
            base=self.via.base,
            sha=model.sha,
            retryable=retryable,
            params=model.params,
            created_at=format_time(model.created_at) if model.created_at else None,
            evidence=self.evidence,
            attempts=self.attempts,
            decided_at=format_time(datetime.now(UTC)),
            **self.fields,
        )


def screen(model: Model, via: Via, config: DiscoveryConfig, attempts: int = 1) -> Decision | None:
    """A decision from the listing alone, or None when the model is worth a closer look."""
    draft = _Draft(model, via, attempts)
    found = lineage.parentage(model.id, None, model.tags, model.card_data)
    if found.relation is not None and found.relation not in config.relations:
        draft.add(found.evidence)
        draft.fields.update(relation=found.relation, parent=via.base)
        return draft.end("rejected", _relation_refused(found.relation, via.base, config))
    if not signals.prefilter(model.id, model.tags):
        return draft.end("rejected", "no RL signal among its tags or in its name (card not read)")
    return _unusable(draft, config)


def examine(hub: Hub, listed: Model, via: Via, config: DiscoveryConfig, attempts: int = 1) -> Decision:
    """The full decision: model info at its current commit, parent, RL evidence, domains."""
    try:
        model = hub.info(listed.id)
    except Unusable as err:
        return _Draft(listed, via, attempts).end("skipped", err.reason, err.retryable)
    draft = _Draft(model._replace(created_at=model.created_at or listed.created_at), via, attempts)
    ended = _unusable(draft, config)
    if ended is not None:
        return ended
    if model.params is None:
        return draft.end("skipped", "no parameter count: the Hub has no safetensors metadata for it")
    ended = _lineage(draft, config)
    if ended is not None:
        return ended
    try:
        readme = hub.readme(model.id, model.sha or "main")
    except Unusable as err:
        return draft.end("skipped", err.reason, err.retryable)
    finding = signals.rl_finding(model.id, model.tags, model.card_data, readme)
    draft.add(finding.evidence)
    draft.add(finding.against, against=True)
    draft.fields.update(algorithm=finding.algorithm, confidence=finding.confidence)
    if not finding.rl:
        return draft.end("rejected", _not_rl(finding))
    return _domains(draft)


def _unusable(draft: _Draft, config: DiscoveryConfig) -> Decision | None:
    """Private, gated or too large: skipped, since evaluation pods could not use it (or not afford it)."""
    model = draft.model
    if model.private:
        return draft.end("skipped", "private: evaluation pods could not download it")
    if model.gated:
        draft.add([signals.Evidence("card_field", f"gated: {model.gated}", "the Hub gates its files")])
        return draft.end("skipped", f"gated ({model.gated}): its weights need an access request")
    limit = config.max_params_b
    if limit is not None and model.params is not None and model.params > limit * 1e9:
        return draft.end(
            "skipped", f"too large: {model.params / 1e9:.1f}B parameters, over max_params_b {limit:g}"
        )
    return None


def _lineage(draft: _Draft, config: DiscoveryConfig) -> Decision | None:
    """The declared parent must be a configured base, by a relation the config follows."""
    model = draft.model
    found = lineage.parentage(model.id, model.base_models, model.tags, model.card_data)
    draft.add(found.evidence)
    configured = [parent for parent in found.parents if config.base(parent) is not None]
    parent = configured[0] if configured else (found.parents[0] if found.parents else None)
    base = config.base(parent) if parent else None
    draft.fields.update(relation=found.relation, parent=base.hub if base else parent)
    if found.relation is None:
        return draft.end("rejected", "no base model on its card (no base_model field, tag or baseModels)")
    if found.relation not in config.relations:
        return draft.end("rejected", _relation_refused(found.relation, parent, config))
    if not configured:
        return draft.end(
            "rejected", f"its declared parent {', '.join(found.parents)} is not a configured base"
        )
    if len(configured) > 1:
        return draft.end(
            "rejected", f"it declares several configured bases ({', '.join(configured)}): ambiguous"
        )
    return None


def _relation_refused(relation: str, parent: str | None, config: DiscoveryConfig) -> str:
    followed = ", ".join(config.relations)
    return f"relation {relation} to {parent}: not one discovery follows (relations: {followed})"


def _not_rl(finding: signals.RlFinding) -> str:
    if finding.against:
        why = "; ".join(f"{e.value}: {e.detail}" for e in finding.against[:2])
        return f"no reinforcement post-training ({finding.confidence} RL evidence, and against it: {why})"
    if finding.evidence:
        return f"RL evidence too weak ({finding.confidence}): {finding.evidence[0].detail}"
    return "no reinforcement post-training evident on its card, tags or name"


def _domains(draft: _Draft) -> Decision:
    """RL data domains from the declared datasets; anything unknown is reported, never guessed."""
    model = draft.model
    declared = rl_domains.declared_datasets(model.tags, model.card_data)
    found = rl_domains.infer_domains(declared)
    draft.add(found.evidence)
    draft.fields.update(
        domains=list(found.domains),
        datasets=list(found.datasets),
        unknown_datasets=list(found.unknown),
        table_version=rl_domains.TABLE_VERSION,
    )
    if not found.datasets:
        return draft.end("skipped", "RL domains unknown: its card declares no datasets")
    if found.unknown:
        unknown = ", ".join(found.unknown)
        table = f"rl_datasets.yaml {rl_domains.TABLE_VERSION}"
        return draft.end("skipped", f"RL domains unknown: {table} does not know {unknown}", retryable=True)
    if not found.domains:
        return draft.end("skipped", "its declared datasets are in no platform domain (math, code, knowledge)")
    algorithm = draft.fields.get("algorithm") or "rl"
    return draft.end(
        "accepted", f"{algorithm} on {'+'.join(found.domains)} data, from {draft.fields['parent']}"
    )


def _record(evidence: signals.Evidence, against: bool = False) -> EvidenceRecord:
    return EvidenceRecord(kind=evidence.kind, value=evidence.value, detail=evidence.detail, against=against)


__all__ = ["Via", "examine", "screen"]
