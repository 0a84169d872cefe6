"""Accepted decisions become one observational study: each new model pinned to its commit, beside its base.

The bases keep the config's revision and prompt mode, and the settings come from the config's template, so
the base models' jobs have the same ids as in every earlier study with those settings and the store's cache
answers them without a GPU-second. The study is checked with the spec's own parser before anyone sees it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import yaml

from rpt_transfer.discovery.config import DiscoveryConfig
from rpt_transfer.discovery.registry import Decision
from rpt_transfer.hashing import short_hash
from rpt_transfer.spec import parse_study

_NAME_MAX = 63
_NOT_NAME = re.compile(r"[^a-z0-9_.-]+")


def study_name(config: DiscoveryConfig, accepted: list[Decision], now: datetime) -> str:
    """`<prefix>-<UTC date>-<8 hex of the pinned pairs>`: the same pairs on one day give the same name."""
    pinned = sorted(f"{d.id}@{d.sha}" for d in accepted)
    return f"{config.study_prefix}-{now:%Y%m%d}-{short_hash(pinned, 8)}"


def build_study(config: DiscoveryConfig, accepted: list[Decision], name: str, source: str) -> str:
    """The study YAML of the accepted models against their bases (checked with `parse_study`)."""
    if not accepted:
        raise ValueError("a study needs at least one accepted model")
    names = _Names()
    models: dict[str, dict[str, Any]] = {}
    base_names: dict[str, str] = {}
    for base in config.bases:
        if any(d.parent == base.hub for d in accepted):
            base_names[base.hub] = names.of(base.hub)
            models[base_names[base.hub]] = {
                "hub": base.hub,
                "revision": base.revision,
                "prompt_mode": base.prompt_mode,
            }
    pairs = []
    for decision in sorted(accepted, key=lambda d: (d.parent or "", d.id.lower())):
        base = config.base(decision.parent or "")
        assert base is not None, f"accepted {decision.id} without a configured parent"
        rpt = names.of(decision.id)
        models[rpt] = {"hub": decision.id, "revision": decision.sha, "prompt_mode": base.prompt_mode}
        pairs.append(
            {
                "name": rpt,
                "rpt": rpt,
                "base": base_names[base.hub],
                "domains": list(decision.domains),
                "algorithm": decision.algorithm or "rl",
            }
        )
    template = config.template()
    description = template.pop("description", None) or (
        f"RPT models found on the Hub by rpt-transfer discover: {len(pairs)} new pair(s)."
    )
    study = {"study": name, "kind": "observational", "description": description, "models": models}
    study.update(pairs=pairs, **template)
    header = (
        f"# Written by `rpt-transfer discover` from {source}.\n"
        "# Each new model is pinned to the commit it was decided at, each base is at the config's revision;\n"
        "# why each model is here: the registry in the store (discovery/runs/, docs/discovery.md).\n"
    )
    text = header + yaml.safe_dump(study, sort_keys=False, width=110)
    parse_study(text, f"the study discovery built from {source}")
    return text


class _Names:
    """Readable, unique model names (spec NAME_PATTERN) from Hub ids: the repo name, else org and name."""

    def __init__(self) -> None:
        self._owner: dict[str, str] = {}

    def of(self, hub_id: str) -> str:
        org, _, repo = hub_id.partition("/")
        for candidate in (_slug(repo), _slug(f"{org}-{repo}")):
            if len(candidate) <= _NAME_MAX and self._owner.setdefault(candidate, hub_id) == hub_id:
                return candidate
        hashed = f"{_slug(repo)[: _NAME_MAX - 9].rstrip('-_.')}-{short_hash(hub_id, 8)}"
        self._owner[hashed] = hub_id
        return hashed


def _slug(text: str) -> str:
    slug = _NOT_NAME.sub("-", text.lower()).strip("-_.")
    return slug or "model"


__all__ = ["build_study", "study_name"]
