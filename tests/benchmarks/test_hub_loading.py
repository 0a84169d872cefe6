"""Loading from the Hub: the pinned coordinates reach `datasets`, and multi-config benchmarks tag their rows.

The Hub is not reachable here, so the one function that calls `datasets.load_dataset` is replaced by a
recording stand-in; everything around it (our code) runs for real.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from rpt_transfer.benchmarks import get_benchmark, sources
from rpt_transfer.errors import RptError


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    calls: list[tuple] = []

    def fake_load(hf_id: str, config: str | None, split: str, revision: str) -> Iterator[dict[str, Any]]:
        calls.append((hf_id, config, split, revision))
        if hf_id == "openai/gsm8k":
            yield {"question": "What is 2+2?", "answer": "2+2=4\n#### 4"}
        elif hf_id == "nguha/legalbench":
            yield {"index": 0, "answer": "Yes", "text": f"facts for {config}"}

    monkeypatch.delenv(sources.DATA_ENV, raising=False)
    monkeypatch.setattr(sources, "load_hub", fake_load)
    return calls


def test_single_dataset_uses_the_pinned_revision(hub: list[tuple]) -> None:
    bench = get_benchmark("gsm8k")
    (item,) = bench.items()
    assert item.reference == "4"
    assert hub == [("openai/gsm8k", "main", "test", bench.source.revision)]
    assert bench.identity()["data"] == f"hf:openai/gsm8k@{bench.source.revision}"


def test_multi_config_benchmark_loads_each_task(hub: list[tuple]) -> None:
    bench = get_benchmark("legalbench")
    items = bench.items(options={"tasks": ["hearsay", "proa"]})
    assert {config for _, config, _, _ in hub} >= {"hearsay", "proa"}
    assert all(revision == bench.source.revision for *_, revision in hub)
    assert {item.id for item in items} == {"legalbench-hearsay-0", "legalbench-proa-0"}


def test_without_datasets_the_message_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)
    with pytest.raises(RptError, match=r"needs the `datasets` package \(pip install 'rpt-transfer\[hub\]'\)"):
        list(sources.load_hub("openai/gsm8k", "main", "test", "0" * 40))
