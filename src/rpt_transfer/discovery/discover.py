"""`rpt-transfer discover`: list what is new under each configured base, decide each model, build the study.

Order of a run: refuse an offline Hub; read the registry (the store's committed runs); ask the Hub for every
configured base (an unknown base, a refused token or an unreachable Hub stop the run here, before anything
else); then, per base, page through the models whose card names it, newest first, until the watermark (the
newest creation time an earlier run saw, or `first_lookback_days` back); then decide again what the
registry marks retryable. `record` writes the run to the registry; the CLI calls it only after a submit
succeeded (or with nothing to submit), so a dry run writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from rpt_transfer.discovery import registry, rl_domains
from rpt_transfer.discovery.config import DiscoveryConfig
from rpt_transfer.discovery.decide import Via, examine, screen
from rpt_transfer.discovery.hub import Hub, Model
from rpt_transfer.discovery.registry import BaseRecord, Decision, Registry, RunRecord, format_time, parse_time
from rpt_transfer.discovery.study import build_study, study_name
from rpt_transfer.errors import RptError
from rpt_transfer.hashing import short_hash
from rpt_transfer.settings import resolve
from rpt_transfer.store import Store


class Found(NamedTuple):
    """What one run found: its record (not yet written), the decisions, and the study for the accepted."""

    run: RunRecord
    decisions: list[Decision]
    study_yaml: str | None
    store: Store
    scanned: dict[str, str]
    """Base -> the time the scan went back to (ISO 8601, Z), for the "nothing new" line."""

    @property
    def accepted(self) -> list[Decision]:
        """The decisions that make pairs of the study."""
        return [d for d in self.decisions if d.outcome == "accepted"]


def registry_store(config: DiscoveryConfig) -> Store:
    """The store of the registry: the template's `store`, else RPT_STORE, else the default (as studies)."""
    return Store.from_uri(resolve(config.study.get("store"), None).store_uri)


def find_new(config: DiscoveryConfig, config_file: Path, hub: Hub, now: datetime | None = None) -> Found:
    """Scan, decide and build the study; writes nothing."""
    now = now or datetime.now(UTC)
    hub.check_online()
    bases = [_base(hub, config_file, entry.hub, entry.revision) for entry in config.bases]
    store = registry_store(config)
    known = registry.read(store)
    table = rl_domains.TABLE_VERSION
    settled = known.settled(table)
    decisions: list[Decision] = []
    watermarks: dict[str, str] = {}
    scanned: dict[str, str] = {}
    for entry in config.bases:
        key = f"base_model:{entry.hub}"
        since = known.watermark(key) or now - timedelta(days=config.first_lookback_days)
        newest = since
        for model in hub.listing(entry.hub):
            created = model.created_at or now
            if created < since:
                break  # newest first: everything further down was seen by an earlier run
            newest = max(newest, created)
            if model.id.lower() in settled:
                continue
            settled.add(model.id.lower())
            earlier = known.decisions.get(model.id.lower())
            tries = earlier.attempts + 1 if earlier else 1
            via = Via(entry.hub)
            decisions.append(screen(model, via, config, tries) or examine(hub, model, via, config, tries))
        watermarks[key] = format_time(newest)
        scanned[entry.hub] = format_time(since)
    decisions += _retried(hub, config, known, table, settled)
    run = _run(config, config_file, now, table, watermarks, bases, len(decisions))
    accepted = [d for d in decisions if d.outcome == "accepted"]
    study_yaml = None
    if accepted:
        name = study_name(config, accepted, now)
        study_yaml = build_study(config, accepted, name, str(config_file))
        run = run.model_copy(update={"study": name})
    return Found(run, decisions, study_yaml, store, scanned)


def record(found: Found, workflow: str | None = None, namespace: str | None = None) -> str:
    """Write the run and its decisions to the registry (after a submit succeeded); returns its URI."""
    run = found.run.model_copy(update={"workflow": workflow, "namespace": namespace})
    return registry.record(found.store, run, found.decisions, found.study_yaml)


def _base(hub: Hub, config_file: Path, hub_id: str, revision: str) -> BaseRecord:
    """A configured base as the Hub has it; one line naming the config file when it does not."""
    try:
        model = hub.base(hub_id, revision)
    except LookupError as err:
        raise RptError(f"{config_file}: bases: {err}; fix or remove it") from None
    assert model.sha is not None
    return BaseRecord(hub=hub_id, revision=revision, sha=model.sha, params=model.params)


def _retried(
    hub: Hub, config: DiscoveryConfig, known: Registry, table: str, settled: set[str]
) -> list[Decision]:
    """Decide again what earlier runs left retryable (and this run's listings did not reach)."""
    decisions = []
    for old in known.to_retry(table):
        if old.id.lower() in settled:
            continue
        settled.add(old.id.lower())
        created = parse_time(old.created_at) if old.created_at else None
        listed = Model(
            id=old.id, created_at=created, tags=(), card_data=None, gated=False, private=False,
            params=old.params, sha=old.sha,
        )  # fmt: skip
        decisions.append(examine(hub, listed, Via(old.base), config, attempts=old.attempts + 1))
    return decisions


def _run(
    config: DiscoveryConfig,
    config_file: Path,
    now: datetime,
    table: str,
    watermarks: dict[str, str],
    bases: list[BaseRecord],
    count: int,
) -> RunRecord:
    digest = config.digest()
    return RunRecord(
        run_id=f"{now:%Y%m%dT%H%M%S}Z-{short_hash([digest, format_time(now)], 8)}",
        started_at=format_time(now),
        config_file=str(config_file),
        config_digest=digest,
        table_version=table,
        watermarks=watermarks,
        bases=bases,
        decisions=count,
    )


__all__ = ["Found", "find_new", "record", "registry_store"]
