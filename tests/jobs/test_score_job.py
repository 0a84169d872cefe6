"""The score job on hostile completions: every sample gets a row with a reason; the job never crashes."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import tiny_study
from rpt_transfer.benchmarks import get_benchmark
from rpt_transfer.jobs import run_job
from rpt_transfer.jobs.rows import GENERATION_SCHEMA, from_parquet, to_parquet
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store

HOSTILE = {
    "empty": "",
    "enormous": "ANSWER: 1" + " blah" * 1_000_000,
    "binary": "\x00\x01\x02\xff\xfe ANSWER: \x00",
    "undecodable": "\ufffd\ufffd ANSWER: \ufffd",
    "unclosed think": "<think> let me see, ANSWER: 3",
    "nested boxes": "\\boxed{" * 5000,
}


@pytest.mark.parametrize("benchmark", ["smoke_arith", "smoke_facts"])
def test_hostile_completions_are_scored_not_fatal(tmp_path: Path, benchmark: str) -> None:
    store_uri = f"file://{tmp_path / 'store'}"
    study = tiny_study(
        store_uri, benchmarks=[benchmark], limit=len(HOSTILE), resources={"shards": 1}, sampling={"n": 1}
    )
    plan = make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), store_uri, None)
    store = Store.from_uri(store_uri)
    items = get_benchmark(benchmark).items(limit=len(HOSTILE))
    for job in (j for j in plan.jobs if j.kind == "generate"):
        rows = [
            {
                "study": "mini",
                "job": job.id,
                "model": job.context["model"],
                "model_ref": "{}",
                "benchmark": benchmark,
                "item_id": item.id,
                "sample_index": 0,
                "prompt_hash": "0",
                "prompt": "p",
                "completion": completion,
                "finish_reason": "length" if name == "unclosed think" else "stop",
                "prompt_tokens": 1,
                "completion_tokens": 1,
                "error": None,
            }
            for item, (name, completion) in zip(items, HOSTILE.items(), strict=True)
        ]
        with store.begin(job.key, job_id=job.id, kind=job.kind, inputs=job.inputs) as writer:
            writer.put_bytes("part-00000.parquet", to_parquet(rows, GENERATION_SCHEMA))
    for job in (j for j in plan.jobs if j.kind == "score"):
        manifest = run_job(plan, job.id)
        assert manifest is not None
        scores = from_parquet(store.read_object(job.key, "part-00000.parquet")).to_pandas()
        assert len(scores) == len(HOSTILE)
        assert (scores["correct"] == 0).all()
        reasons = dict(
            zip(
                HOSTILE,
                scores.sort_values(
                    "item_id", key=lambda s: s.map({item.id: index for index, item in enumerate(items)})
                )["reason"],
                strict=True,
            )
        )
        assert reasons["empty"] == "no_answer"
        assert reasons["unclosed think"] in ("truncated", "no_answer")
        assert all(
            reason is not None or name in ("binary", "undecodable", "enormous")
            for name, reason in reasons.items()
        )
        assert not pd.isna(scores["explanation"]).any()
