"""The leaderboard's rows: the same numbers as the study reports, keyed by models and comparable settings.

Reports are real: `jobs.aggregate.write_report_folder` (what the aggregate job commits) on synthetic score
rows, committed to a file store at `reports/<study>/<job>/` as the job does. The store is built once per
session and copied for each test that writes to it.
"""

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rpt_transfer.analysis import PairInfo, write_report
from rpt_transfer.analysis.answer import answer_for
from rpt_transfer.analysis.domains import ALL_PAIRS, domain_effects
from rpt_transfer.analysis.leaderboard import LATEST_KEY, build_leaderboard, latest_leaderboard, locations
from rpt_transfer.analysis.leaderboard_pairs import PAIRS_FILE, ModelSource, PairsFile, pairs_file
from rpt_transfer.analysis.leaderboard_render import CSV, FILES, HTML, JSON
from rpt_transfer.analysis.leaderboard_rows import Row
from rpt_transfer.hashing import short_hash
from rpt_transfer.jobs.aggregate import write_report_folder
from rpt_transfer.store import Store

BENCHMARKS = {"gsm": ("math", 40), "algebra": ("math", 30), "mbpp": ("code", 30), "mmlu": ("knowledge", 50)}
"""Benchmark -> (domain, items)."""
SKILL = {
    "base": {"gsm": 0.40, "algebra": 0.35, "mbpp": 0.30, "mmlu": 0.50},
    "rpt-math": {"gsm": 0.75, "algebra": 0.65, "mbpp": 0.25, "mmlu": 0.40},
    "rpt-code": {"gsm": 0.45, "algebra": 0.35, "mbpp": 0.60, "mmlu": 0.55},
}
"""Model -> benchmark -> chance of a correct sample."""
SAMPLES = 2
BASE_SHA, MATH_SHA, CODE_SHA = "a" * 40, "b" * 40, "c" * 40
SOURCES = {
    "base": ModelSource(name="base", source="Qwen/Qwen2.5-1.5B", revision=BASE_SHA, parameters=1_543_714_304),
    "rpt-math": ModelSource(
        name="rpt-math", source="org/RPT-Math", revision=MATH_SHA, parameters=1_543_714_304
    ),
    "rpt-code": ModelSource(name="rpt-code", source="Org/RPT-Code", revision=CODE_SHA),
}
"""rpt-code's size is not counted: the registry (or nobody) knows it."""
MATH_PAIR = PairInfo(
    "math-grpo", rpt_model="rpt-math", base_model="base", rpt_domains=("math",), algorithm="grpo"
)
CODE_PAIR = PairInfo(
    "code-ppo", rpt_model="rpt-code", base_model="base", rpt_domains=("code",), algorithm="ppo"
)
STUDIES = {
    "alpha": ([MATH_PAIR, CODE_PAIR], 0.6, "2025-01-01T00:00:01Z"),
    "beta": ([MATH_PAIR], 1.0, "2025-02-01T00:00:01Z"),  # the same pair, sampled hotter: another row
    "gamma": ([MATH_PAIR], 0.6, "2025-03-01T00:00:01Z"),  # the same evaluation as alpha's: no new row
}
"""Study -> (pairs, temperature, report time)."""


def study_scores(study: str, temperature: float) -> pd.DataFrame:
    """Score rows of every model × benchmark; the same temperature gives the same rows (as cached jobs do)."""
    rng = np.random.default_rng(int(temperature * 10))
    shift = 0.0 if temperature < 1 else -0.1  # hotter sampling: a little worse everywhere
    rows = []
    for model, skill in SKILL.items():
        for bench, (domain, items) in BENCHMARKS.items():
            for item in range(items):
                for sample in range(SAMPLES):
                    correct = float(rng.random() < skill[bench] + shift)
                    flexible = max(correct, float(rng.random() < 0.1))  # lenient extraction finds a few more
                    rows.append(
                        {"study": study, "model": model, "benchmark": bench, "benchmark_domain": domain,
                         "item_id": f"{bench}-{item}", "sample_index": sample, "correct": correct,
                         "correct_flexible": flexible, "reason": None, "finish_reason": "stop"}
                    )  # fmt: skip
    return pd.DataFrame(rows)


def settings(temperature: float) -> dict[tuple[str, str], dict]:
    """Per (model, benchmark): the evaluation settings, as `jobs.aggregate.evaluation_settings` gives them."""
    return {
        (model, bench): {
            "sampling.temperature": temperature,
            "sampling.n": SAMPLES,
            "limit": None,
            "benchmark_version": "1",
            "scorer": "math@1",
            "prompt_mode": "chat",
            "backend": "hf",
        }
        for model in SKILL
        for bench in BENCHMARKS
    }


def commit_report(store: Store, study: str, created_at: str) -> str:
    """Write the study's report as the aggregate job does, commit it, and date its manifest."""
    pairs, temperature, _ = STUDIES[study]
    models = {name for pair in pairs for name in (pair.rpt_model, pair.base_model)}
    scores = study_scores(study, temperature)
    scores = scores[scores["model"].isin(models)]
    chosen = {cell: value for cell, value in settings(temperature).items() if cell[0] in models}
    key = commit_folder(
        store,
        study,
        lambda out: write_report_folder(
            out, study=study, scores=scores, pairs=pairs, provenance={"study": study}, settings=chosen,
            kind="observational", described=pairs_file(study, pairs, SOURCES, chosen),
        ),
    )  # fmt: skip
    redate(store, key, created_at)
    return key


def commit_folder(store: Store, study: str, write) -> str:
    """Commit what `write(folder)` writes as a report of `study` (the aggregate job's store layout)."""
    job_id = short_hash(study)
    key = f"reports/{study}/{job_id}"
    root = store.local_path()
    assert root is not None
    folder = root.parent / f"written-{study}"
    write(folder)
    with store.begin(key, job_id=job_id, kind="aggregate", inputs={"study": study}) as writer:
        writer.put_dir(folder)
    shutil.rmtree(folder)
    return key


def redate(store: Store, key: str, created_at: str) -> None:
    """Give a committed report a commit time of our choosing (reports are ordered by it)."""
    path = store.local_path() / key / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    manifest["created_at"] = created_at
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


@functools.cache
def reports_template(base: Path) -> Path:
    """A store with the three studies' reports and one report from before `pairs.json` (built once)."""
    root = base / "leaderboard-reports"
    store = Store.from_uri(str(root / "store"))
    for study, (_, _, created_at) in STUDIES.items():
        commit_report(store, study, created_at)
    old_scores = study_scores("old", 0.6)
    key = commit_folder(
        store,
        "old",
        lambda out: write_report(study="old", scores=old_scores, pairs=[MATH_PAIR, CODE_PAIR],
                                 provenance={}, out_dir=out),
    )  # fmt: skip
    redate(store, key, "2024-12-01T00:00:00Z")
    return root / "store"


@pytest.fixture
def store(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A copy of the reports store, for this test to build leaderboards in."""
    target = tmp_path / "store"
    shutil.copytree(reports_template(tmp_path_factory.getbasetemp()), target)
    return Store.from_uri(str(target))


def report_table(store: Store, study: str, name: str) -> pd.DataFrame:
    (key,) = [
        k.rsplit("/", 1)[0] for k in store.list_keys(f"reports/{study}") if k.endswith("/MANIFEST.json")
    ]
    return pd.read_csv(store.local_path() / store.object_key(key, f"{name}.csv"))


def by_hand(scores: pd.DataFrame, pair: PairInfo, seen: bool) -> float:
    """The item-weighted gain, from raw score rows: per benchmark, mean over items of the per-item mean."""
    total = weight = 0.0
    for bench, (domain, items) in BENCHMARKS.items():
        if (domain in pair.rpt_domains) != seen:
            continue
        rows = scores[scores["benchmark"] == bench]
        accuracy = {
            model: rows[rows["model"] == model].groupby("item_id")["correct"].mean().mean()
            for model in (pair.rpt_model, pair.base_model)
        }
        total += items * (accuracy[pair.rpt_model] - accuracy[pair.base_model])
        weight += items
    return total / weight


def rows_of(built, pair: str) -> list:
    return [row for row in built.rows if row.pair == pair]


def test_a_row_is_the_reports_numbers_and_recomputes_by_hand(store: Store) -> None:
    built = build_leaderboard(store, sizes={})
    (code,) = rows_of(built, "code-ppo")
    scores = study_scores("alpha", 0.6)
    assert code.gain_trained == pytest.approx(by_hand(scores, CODE_PAIR, seen=True), abs=1e-12)
    assert code.gain_other == pytest.approx(by_hand(scores, CODE_PAIR, seen=False), abs=1e-12)
    domains = report_table(store, "alpha", "domains").set_index(["pair", "group"])
    seen, unseen = domains.loc[("code-ppo", "seen")], domains.loc[("code-ppo", "unseen")]
    assert (code.gain_trained, code.gain_trained_low, code.gain_trained_high) == pytest.approx(
        (seen["delta_weighted"], seen["delta_weighted_low"], seen["delta_weighted_high"]), rel=1e-12
    )
    assert (code.odds_ratio_trained, code.p_trained) == pytest.approx(
        (seen["cmh_odds_ratio"], seen["cmh_p_value"]), rel=1e-12
    )
    assert (code.gain_other, code.odds_ratio_other, code.p_other) == pytest.approx(
        (unseen["delta_weighted"], unseen["cmh_odds_ratio"], unseen["cmh_p_value"]), rel=1e-12
    )
    index = (
        report_table(store, "alpha", "transferability")
        .set_index(["pair", "target"])
        .loc[("code-ppo", "unseen")]
    )
    assert code.transferability_index == pytest.approx(index["transferability_index"], rel=1e-12)
    assert code.ti_status == index["status"]
    flexible = report_table(store, "alpha", "domains_flexible").set_index(["pair", "group"])
    assert code.gain_trained_flexible == pytest.approx(flexible.loc[("code-ppo", "seen"), "delta_weighted"])
    assert code.gain_other_flexible == pytest.approx(flexible.loc[("code-ppo", "unseen"), "delta_weighted"])
    assert code.gain_trained_flexible != code.gain_trained  # the flexible numbers are their own
    assert (code.algorithm, code.rl_domains, code.study, code.evaluated) == (
        "ppo",
        ["code"],
        "alpha",
        "2025-01-01",
    )
    assert (code.rpt_source, code.rpt_revision, code.base_source) == (
        "Org/RPT-Code",
        CODE_SHA,
        "Qwen/Qwen2.5-1.5B",
    )


def test_other_settings_are_another_row_the_same_settings_are_not(store: Store) -> None:
    built = build_leaderboard(store, sizes={})
    math_rows = sorted(rows_of(built, "math-grpo"), key=lambda row: row.setting)
    assert [row.setting for row in math_rows] == ["temperature=0.6", "temperature=1.0"]
    cool, hot = math_rows
    assert cool.fingerprint != hot.fingerprint and cool.key != hot.key
    assert (cool.study, cool.also_in) == ("gamma", ["alpha"])  # the newest report of the same evaluation
    assert (hot.study, hot.also_in) == ("beta", [])
    hot_domains = report_table(store, "beta", "domains").set_index(["pair", "group"])
    assert (
        hot.gain_trained == hot_domains.loc[("math-grpo", "seen"), "delta_weighted"]
    )  # its own, not averaged
    assert hot.gain_trained != cool.gain_trained
    assert len(built.rows) == 3


def test_reports_without_pairs_json_are_named_in_the_notes(store: Store) -> None:
    built = build_leaderboard(store, sizes={})
    (note,) = built.notes
    assert note.startswith("reports/old/") and f"written before reports recorded {PAIRS_FILE}" in note
    assert "old" not in {row.study for row in built.rows}
    page = (store.local_path() / store.object_key(built.prefix, HTML)).read_text()
    assert note in page


def test_sizes_from_the_generate_job_then_the_registry_else_blank(store: Store) -> None:
    blank = build_leaderboard(store, sizes={})
    assert {row.pair: row.parameters for row in blank.rows} == {"math-grpo": 1_543_714_304, "code-ppo": None}
    registry = {f"org/rpt-code@{CODE_SHA}": 7_615_616_512, f"org/rpt-math@{MATH_SHA}": 1}
    known = build_leaderboard(store, sizes=registry)
    sizes = {row.pair: row.parameters for row in known.rows}
    assert sizes == {"math-grpo": 1_543_714_304, "code-ppo": 7_615_616_512}  # counted beats registry
    assert known.digest != blank.digest  # a size learned later is a new leaderboard


def test_the_answer_pools_every_row(store: Store) -> None:
    built = build_leaderboard(store, sizes={})
    parts = []
    for row in built.rows:
        effects = report_table(store, row.study, "effects")
        parts.append(effects[effects["pair"] == row.pair].assign(pair=row.key))
    pooled = domain_effects(pd.concat(parts, ignore_index=True))
    expected = answer_for(pooled)
    assert built.answer.evidence == expected.evidence and built.answer.verdict == expected.verdict
    assert built.answer.evidence.startswith("3 pairs pooled")
    assert "this study" not in built.answer.sentence
    seen = pooled[(pooled["pair"] == ALL_PAIRS) & (pooled["group"] == "seen")].iloc[0]
    assert built.metrics["gain_trained"] == seen["delta_weighted"]
    assert built.metrics["n_rows"] == 3
    assert {row.verdict for row in built.rows} <= {
        "transferred",
        "hurt",
        "not_transferred",
        "no_trained_gain",
    }


def test_files_are_committed_once_and_the_newest_is_named(store: Store) -> None:
    first = build_leaderboard(store, sizes={})
    assert first.created and first.prefix == f"leaderboard/{first.digest}"
    manifest = store.manifest(first.prefix)
    assert {info.name for info in manifest.objects} == set(FILES)
    again = build_leaderboard(store, sizes={})
    assert (again.digest, again.created) == (first.digest, False)
    assert store.manifest(first.prefix) == manifest
    assert latest_leaderboard(store) == first.prefix
    other = build_leaderboard(store, sizes={f"org/rpt-code@{CODE_SHA}": 5})
    assert latest_leaderboard(store) == other.prefix != first.prefix
    assert store.read_bytes(LATEST_KEY).decode().strip() == other.digest


def test_json_and_csv_hold_every_row(store: Store) -> None:
    built = build_leaderboard(store, sizes={})
    document = json.loads(store.read_object(built.prefix, JSON))
    assert document["format_version"] == 1
    assert [row["key"] for row in document["rows"]] == [row.key for row in built.rows]
    assert Row.model_validate(document["rows"][0]) == built.rows[0]
    assert document["answer"]["sentence"] == built.answer.sentence
    assert {r["study"] for r in document["reports"]} == {"alpha", "beta", "gamma", "old"}
    labels = {column["id"]: column["label"] for column in document["columns"]}
    assert labels["gain_other"] == "Gain on other domains" and labels["ti"] == "Transferability"
    frame = pd.read_csv(store.local_path() / store.object_key(built.prefix, CSV))
    assert len(frame) == 3 and frame["gain_other"].tolist() == pytest.approx(
        [r.gain_other for r in built.rows]
    )
    assert set(frame["rl_domains"]) == {"math", "code"}


def test_pairs_json_round_trips_and_names_what_differs() -> None:
    chosen = settings(0.6)
    chosen[("rpt-math", "gsm")] = {**chosen[("rpt-math", "gsm")], "prompt_mode": "raw"}
    described = pairs_file("s", [MATH_PAIR], SOURCES, chosen)
    assert PairsFile.from_json(described.to_json().encode(), "here") == described
    (record,) = described.pairs
    assert record.settings["sampling.temperature"] == 0.6
    assert record.settings["benchmarks"] == "algebra,gsm,mbpp,mmlu"
    assert record.settings["prompt_mode [gsm, rpt]"] == "raw"
    assert record.fingerprint != pairs_file("s", [MATH_PAIR], SOURCES, settings(0.6)).pairs[0].fingerprint
    renamed = PairInfo("other-name", "rpt-math", "base", ("math",), "grpo")
    assert pairs_file("t", [renamed], SOURCES, chosen).pairs[0].fingerprint == record.fingerprint


def test_an_s3_store_works_the_same(s3_store_uri: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    template = reports_template(tmp_path_factory.getbasetemp())
    s3 = Store.from_uri(s3_store_uri)
    for path in sorted(p for p in template.rglob("*") if p.is_file()):
        s3.write_bytes(path.relative_to(template).as_posix(), path.read_bytes())
    built = build_leaderboard(s3)
    assert built.created and len(built.rows) == 3 and len(built.notes) == 1
    assert latest_leaderboard(s3) == built.prefix
    where = locations(s3, built.prefix)[HTML]
    assert where.startswith(f"{s3_store_uri}/{built.prefix}/attempt-") and where.endswith(HTML)
    assert b"RPT transfer leaderboard" in s3.read_object(built.prefix, HTML)
    assert not build_leaderboard(s3).created
