"""`rpt-transfer discover` against the loopback fake Hub: what it decides about each kind of model, and why.

The Hub population is tests/discovery/hub_scene.py; the registry is a local store (RPT_STORE). These runs
are dry runs or call the registry directly; `--submit` against the Kubernetes double is in
test_discover_submit.py.
"""

from pathlib import Path

import hub_scene
import pytest
import yaml
from hub_scene import (
    ACCEPTED,
    BASE,
    BASE2,
    BIG,
    DAPO,
    DPO,
    GATED,
    GRPO,
    LISTED,
    MYSTERY,
    OLD,
    ORPHAN,
    QUANTIZED,
    SFT,
    cli,
    config,
    listing_pages,
    populate,
)

import servers_hub
from rpt_transfer.discovery import find_new, load, record
from rpt_transfer.discovery.discover import registry_store
from rpt_transfer.discovery.hub import Hub
from rpt_transfer.discovery.rl_domains import TABLE_VERSION
from rpt_transfer.spec import parse_study
from servers_hub import FakeHub

fake_hub = servers_hub.fake_hub
store_env = hub_scene.store_env


@pytest.fixture
def scene(fake_hub: FakeHub, store_env: Path, tmp_path: Path) -> tuple[FakeHub, dict[str, str], Path]:
    """The populated fake Hub (two models a page), its commits, and a config of both bases."""
    fake_hub.page_size = 2
    return fake_hub, populate(fake_hub), config(tmp_path / "discovery.yaml")


def decide(path: Path):  # a Found
    from rpt_transfer.discovery import load_config

    return find_new(load_config(path), path, Hub())


def test_each_kind_of_model_gets_its_decision_with_the_evidence(scene: tuple) -> None:
    _, sha, path = scene
    found = decide(path)
    by_id = {d.id: d for d in found.decisions}
    assert OLD not in by_id and ORPHAN not in by_id  # behind the look-back; no base on its card: not listed
    assert set(by_id) == {GRPO, LISTED, QUANTIZED, DPO, GATED, MYSTERY, SFT, BIG, DAPO}
    outcome = {model: d.outcome for model, d in by_id.items()}
    assert {m for m, o in outcome.items() if o == "accepted"} == set(ACCEPTED)

    grpo = by_id[GRPO]
    assert (grpo.sha, grpo.relation, grpo.parent, grpo.algorithm) == (sha[GRPO], "finetune", BASE, "grpo")
    assert (
        grpo.domains == ["math"] and grpo.datasets == ["openai/gsm8k"] and grpo.table_version == TABLE_VERSION
    )
    assert grpo.params == 1_500_000_000 and grpo.created_at and grpo.created_at.endswith("Z")
    seen = {(e.kind, e.value) for e in grpo.evidence}
    assert ("relation", f"base_model:{BASE}") in seen  # the listing that found it
    assert ("tag", "grpo") in seen and ("dataset", "openai/gsm8k") in seen
    assert any(e.kind == "relation" and e.value.startswith("baseModels: finetune") for e in grpo.evidence)

    listed = by_id[LISTED]  # `base_model: [BASE]` in its card: one parent, a fine-tune
    assert (listed.parent, listed.relation, listed.domains) == (BASE, "finetune", ["code"])

    quantized = by_id[QUANTIZED]
    assert quantized.outcome == "rejected" and quantized.relation == "quantized"
    assert (
        quantized.reason.startswith(f"relation quantized to {BASE}: not one")
        and "(relations: finetune)" in quantized.reason
    )
    assert quantized.sha is None  # decided from the listing: no model_info asked

    dpo = by_id[DPO]
    assert dpo.outcome == "rejected" and "dpo" in dpo.reason
    assert any(e.against and e.value == "dpo" for e in dpo.evidence)

    gated = by_id[GATED]
    assert gated.outcome == "skipped" and gated.reason.startswith("gated (manual)")

    mystery = by_id[MYSTERY]
    assert mystery.outcome == "skipped" and mystery.retryable
    assert mystery.unknown_datasets == ["frank/secret-rl-mix"] and "frank/secret-rl-mix" in mystery.reason

    assert by_id[SFT].outcome == "rejected" and "no RL signal" in by_id[SFT].reason
    big = by_id[BIG]
    assert big.outcome == "skipped" and "20.0B parameters, over max_params_b 15" in big.reason

    dapo = by_id[DAPO]
    assert (dapo.parent, dapo.algorithm, dapo.domains) == (BASE2, "dapo", ["math"])


def test_only_candidates_cost_a_model_info_and_readme_and_listings_page_to_the_look_back(
    scene: tuple,
) -> None:
    hub, sha, path = scene
    decide(path)
    info = {r.path for r in hub.requests if r.path.startswith("/api/models/") and "/revision/" not in r.path}
    assert info == {f"/api/models/{m}" for m in (GRPO, LISTED, DPO, MYSTERY, DAPO)}
    readmes = {r.path for r in hub.file_requests() if r.method == "GET"}
    assert readmes == {f"/{m}/resolve/{sha[m]}/README.md" for m in (GRPO, LISTED, DPO, MYSTERY, DAPO)}
    pages = list(listing_pages(hub))
    first = [q for q in pages if "cursor" not in q]
    assert len(first) == 2 and all("sort=createdAt" in q and "expand=baseModels" not in q for q in first)
    # base 1 lists 8 children, 2 a page, the old one last: 3 more pages; base 2's two fit on one
    assert sum("cursor" in q for q in pages) == 3


def test_a_dry_run_prints_a_study_that_parses_and_writes_nothing(
    scene: tuple, store_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, sha, path = scene
    code, out, err = cli(capsys, "discover", "--config", str(path))
    assert code == 0, err
    study = parse_study(out, "stdout")
    assert study.study.startswith("discovered-") and study.benchmarks == ["smoke_arith"]
    pinned = {m.hub: m.revision for m in study.models.values()}
    assert pinned == {BASE: "main", BASE2: "main", **{m: sha[m] for m in ACCEPTED}}
    pairs = {p.rpt: (p.base, p.domains, p.algorithm) for p in study.pairs}
    assert pairs == {
        "r1-1.5b-grpo-math": ("deepseek-r1-distill-qwen-1.5b", ["math"], "grpo"),
        "r1-1.5b-code-rl": ("deepseek-r1-distill-qwen-1.5b", ["code"], "grpo"),
        "qwen3-4b-dapo-math": ("qwen3-4b", ["math"], "dapo"),
    }
    assert "decisions: 3 accepted, 3 rejected, 3 skipped (1 rejected from the listing alone" in err
    assert "dry run: nothing submitted or recorded" in err
    assert not store_env.exists()


def test_out_writes_the_study_file_and_stdout_stays_empty(
    scene: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, path = scene
    target = tmp_path / "new" / "study.yaml"
    code, out, err = cli(capsys, "discover", "--config", str(path), "--out", str(target))
    assert code == 0 and out == "", err
    assert len(parse_study(target.read_text(), str(target)).pairs) == 3


def test_a_second_run_decides_nothing_again(scene: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    hub, _, path = scene
    first = decide(path)
    record(first)
    assert {d.id for d in load(first.store)} == {d.id for d in first.decisions}
    asked = len(hub.requests)
    code, out, err = cli(capsys, "discover", "--config", str(path))
    assert code == 0 and out == ""
    assert err.startswith("nothing new: no model created since ") and len(err.strip().splitlines()) == 1
    later = hub.requests[asked:]
    assert not [r for r in later if r.path.startswith("/api/models/") and "/revision/" not in r.path]
    assert not [r for r in later if "/resolve/" in r.path]


def test_a_new_model_after_a_recorded_run_is_the_only_one_decided(scene: tuple) -> None:
    hub, _, path = scene
    record(decide(path))
    from hub_scene import GRPO_TEXT, ago, trl

    hub.add_model(
        "zoe/R1-1.5B-GRPO-New", created_at=ago(), card=trl("grpo", BASE, ["openai/gsm8k"]), body=GRPO_TEXT
    )
    found = decide(path)
    assert [d.id for d in found.decisions] == ["zoe/R1-1.5B-GRPO-New"]
    assert found.accepted and found.study_yaml is not None
    assert [p.rpt for p in parse_study(found.study_yaml).pairs] == ["r1-1.5b-grpo-new"]


def test_unknown_datasets_are_decided_again_under_a_newer_table(scene: tuple) -> None:
    _, sha, path = scene
    first = decide(path)
    older = {
        "outcome": "skipped",
        "retryable": True,
        "table_version": "2000-01-01.1",
        "unknown_datasets": ["x/y"],
    }
    stale = [d.model_copy(update=older) if d.id == GRPO else d for d in first.decisions]
    record(first._replace(decisions=stale))
    again = decide(path)  # the listing stops at the watermark; the retry asks for GRPO by its id
    assert [(d.id, d.outcome, d.attempts, d.sha) for d in again.decisions] == [
        (GRPO, "accepted", 2, sha[GRPO])
    ]


def test_registry_store_follows_the_template_then_rpt_store(tmp_path: Path, store_env: Path) -> None:
    from rpt_transfer.discovery import load_config

    assert registry_store(load_config(config(tmp_path / "a.yaml"))).uri == store_env.resolve().as_uri()
    other = tmp_path / "elsewhere"
    chosen = load_config(
        config(tmp_path / "b.yaml", study={"benchmarks": ["smoke_arith"], "store": str(other)})
    )
    assert registry_store(chosen).uri == other.resolve().as_uri()


def test_the_study_yaml_names_its_source(scene: tuple) -> None:
    _, _, path = scene
    text = decide(path).study_yaml
    assert text is not None and f"from {path}" in text.splitlines()[0]
    assert yaml.safe_load(text)["kind"] == "observational"
