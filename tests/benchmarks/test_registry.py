"""The contract every registered benchmark keeps (lm-eval's task contract, inspect_evals' gold-solver rule)."""

import re
from pathlib import Path

import pytest

from conftest import benchmark_data
from rpt_transfer.benchmarks import ALL_BENCHMARKS, DOMAINS, SUITES, expand, get_benchmark
from rpt_transfer.benchmarks.sources import DATA_ENV, DatasetSource
from rpt_transfer.errors import UnknownBenchmark
from rpt_transfer.scoring import get_scorer

NAMES = [bench.name for bench in ALL_BENCHMARKS]


@pytest.mark.parametrize("name", NAMES)
def test_static_contract(name: str) -> None:
    bench = get_benchmark(name)
    assert bench.domain in DOMAINS and bench.version and bench.description
    get_scorer(bench.scorer)
    if isinstance(bench.source, DatasetSource):
        assert re.fullmatch(r"[0-9a-f]{40}|UNPINNED", bench.source.revision)
        assert bench.source.count > 0 and bench.source.required


@pytest.fixture
def local_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    root = benchmark_data()
    monkeypatch.setenv(DATA_ENV, str(root))
    return root


def gold_completion(scorer: str, reference: str) -> str:
    return (
        f"Reasoning...\n\\boxed{{{reference}}}" if scorer == "math" else f"Reasoning...\nANSWER: {reference}"
    )


ANSWER_SCORED = [
    b.name for b in ALL_BENCHMARKS if isinstance(b.source, DatasetSource) and b.scorer in ("math", "choice")
]
"""Benchmarks whose reference is the answer itself; code benchmarks test their reference solutions in their own files."""


@pytest.mark.parametrize("name", ANSWER_SCORED)
def test_items_render_and_gold_scores_correct(name: str, local_data: Path) -> None:
    bench = get_benchmark(name)
    items = bench.items()
    assert len(items) == bench.size()
    assert len({item.id for item in items}) == len(items)
    verify = get_scorer(bench.scorer).verify
    wrong = 0
    for index, item in enumerate(items[:50]):
        assert bench.render_prompt(item).strip()
        assert verify(gold_completion(bench.scorer, item.reference), item.reference).correct == 1.0, item.id
        other = next(o for o in items[index + 1 :] + items[:index] if _unrelated(o.reference, item.reference))
        wrong += verify(gold_completion(bench.scorer, other.reference), item.reference).correct
    assert wrong == 0


def _unrelated(a: str, b: str) -> bool:
    """References that no scorer should take for each other ("x=5" and "5" are the same answer)."""
    return a.strip() not in b and b.strip() not in a


def test_data_identity_follows_the_source(local_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = get_benchmark("gsm8k")
    local = bench.identity()["data"]
    monkeypatch.delenv(DATA_ENV)
    assert bench.identity()["data"] == f"hf:openai/gsm8k@{bench.source.revision}"
    assert local.startswith("sha256:")


def test_missing_local_copy_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(Exception, match=r"gsm8k/test.jsonl: no local copy of openai/gsm8k"):
        get_benchmark("gsm8k").identity()


def test_local_file_with_missing_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q"}\n')
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(
        Exception, match=r"test.jsonl: record 0 lacks 'answer'; required fields: question, answer"
    ):
        get_benchmark("gsm8k").items()


def test_suites_expand_and_unknown_names() -> None:
    for suite, members in SUITES.items():
        assert [b.name for b in expand([suite])] == list(members)
    with pytest.raises(UnknownBenchmark, match="did you mean gsm8k"):
        get_benchmark("gsm8")
