"""The discovery config (defaults, studies/discovery.yaml) and the study built from accepted decisions."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from rpt_transfer import benchmarks
from rpt_transfer.discovery import DiscoveryConfig, load_config
from rpt_transfer.discovery.registry import Decision
from rpt_transfer.discovery.study import build_study, study_name
from rpt_transfer.errors import SpecError
from rpt_transfer.spec import NAME_PATTERN, parse_study

REPO = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"


def accepted(
    model: str, parent: str, domains: tuple[str, ...] = ("math",), algorithm: str | None = "grpo"
) -> Decision:
    return Decision(
        id=model, outcome="accepted", reason="test", base=parent, parent=parent, sha=SHA, relation="finetune",
        domains=list(domains), algorithm=algorithm,
    )  # fmt: skip


def test_the_default_config_follows_the_paper_bases_at_the_paper_commits() -> None:
    config = load_config(REPO / "studies" / "discovery.yaml")
    paper = yaml.safe_load((REPO / "studies" / "paper-observational.yaml").read_text())
    revisions = {m["hub"]: m["revision"] for m in paper["models"].values()}
    bases = {paper["models"][p["base"]]["hub"] for p in paper["pairs"]}
    assert {b.hub for b in config.bases} <= bases
    assert all(b.revision == revisions[b.hub] for b in config.bases)
    assert config.relations == ["finetune"] and config.max_params_b == 15
    chosen = {b.name for b in benchmarks.expand(config.template()["benchmarks"])}
    assert {b.name for b in benchmarks.expand(["paper-16"])} - chosen == {"usaco"}  # not on the Hub


def test_defaults_and_the_default_benchmarks() -> None:
    config = DiscoveryConfig.model_validate({"bases": [{"hub": "o/b"}]})
    assert (config.relations, config.first_lookback_days, config.study_prefix) == (
        ["finetune"],
        14,
        "discovered",
    )
    assert config.bases[0].revision == "main" and config.template() == {"benchmarks": ["paper-16"]}


def test_a_base_listed_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump({"bases": [{"hub": "o/b"}, {"hub": "O/B"}]}))
    with pytest.raises(SpecError, match=r"twice.yaml: bases: Value error, O/B is listed twice"):
        load_config(path)


def test_the_study_pairs_each_model_with_its_base_and_names_are_unique_and_readable() -> None:
    config = DiscoveryConfig.model_validate(
        {"bases": [{"hub": "org/Model", "revision": SHA, "prompt_mode": "raw"}, {"hub": "lab/Other-Base"}]}
    )
    decisions = [
        accepted("alice/Model", "org/Model", ("code", "math")),  # the same repo name as the base
        accepted("bob/Model", "org/Model", algorithm=None),
        accepted("carol/" + "Very-Long-Name-" * 5, "lab/Other-Base", ("knowledge",)),
    ]
    now = datetime(2026, 12, 7, 4, tzinfo=UTC)
    name = study_name(config, decisions, now)
    assert re.match(r"^discovered-20261207-[0-9a-f]{8}$", name)
    assert name == study_name(config, list(reversed(decisions)), now)  # the same pairs, the same name
    study = parse_study(build_study(config, decisions, name, "d.yaml"))
    assert all(re.match(NAME_PATTERN, n) for n in study.models)
    models = {n: (m.hub, m.revision, m.prompt_mode) for n, m in study.models.items()}
    assert models["model"] == ("org/Model", SHA, "raw") and models["alice-model"] == (
        "alice/Model",
        SHA,
        "raw",
    )
    assert models["other-base"] == ("lab/Other-Base", "main", "chat")
    pairs = {p.rpt: (p.base, p.domains, p.algorithm) for p in study.pairs}
    assert pairs["alice-model"] == ("model", ["code", "math"], "grpo")
    assert pairs["bob-model"] == ("model", ["math"], "rl")  # no algorithm named: `rl`
    (long,) = [n for n in pairs if n.startswith("very-long")]
    assert len(long) <= 63 and pairs[long][0] == "other-base"


def test_the_template_sets_the_study_fields_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    template = {"benchmarks": ["smoke_arith"], "limit": 3, "description": "mine", "resources": {"shards": 2}}
    config = DiscoveryConfig.model_validate({"bases": [{"hub": "o/b"}], "study": template})
    study = parse_study(build_study(config, [accepted("x/r", "o/b")], "n", "d.yaml"))
    assert (study.limit, study.description, study.resources.shards) == (3, "mine", 2)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"bases": [{"hub": "o/b"}], "study": {"sampling": {"temperatur": 1}}}))
    with pytest.raises(SpecError, match=r"bad.yaml: study: sampling.temperatur: unknown field"):
        load_config(path)
