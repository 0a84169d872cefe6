"""Stored generations for score and aggregate tests: the generate job's own code, with the fake backend."""

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from conftest import tiny_study
from rpt_transfer.benchmarks import get_benchmark
from rpt_transfer.generation import FakeBackend, GenRequest
from rpt_transfer.jobs import generate
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.progress import Progress
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store

Script = Callable[[GenRequest, int], str]


def mini_plan(store_uri: str, benchmarks: list[str], limit: int, n: int) -> Plan:
    """The tiny observational study (models `base` and `rpt`, pair `p`) on these benchmarks."""
    study = tiny_study(store_uri, benchmarks=benchmarks, limit=limit, sampling={"n": n, "max_tokens": 64})
    return make_plan(parse_study(yaml.safe_dump(study), "mini.yaml"), store_uri, None)


def store_generations(
    plan: Plan, script: Script, engines: Mapping[str, dict[str, str]] | None = None
) -> None:
    """Run every generate job of the plan with a fake backend (claiming `engines[model]`, if given)."""
    store = Store.from_uri(plan.store)
    for job in (job for job in plan.jobs if job.kind == "generate"):
        engine = (engines or {}).get(job.context["model"])
        ctx = JobContext(plan=plan, job=job, store=store, progress=Progress(f"generate {job.id}"))
        generate.run(ctx, backend=FakeBackend(script, engine=engine))


def answers(right: Callable[[str, str], str], wrong: Mapping[int, str]) -> Script:
    """Sample 0 answers right (from the item's reference); sample i > 0 gives `wrong[i]`."""
    references: dict[str, str] = {}

    def script(request: GenRequest, sample: int) -> str:
        if sample in wrong:
            return wrong[sample]
        benchmark = request.request_id.rsplit("-", 2)[0]  # item ids are "<benchmark>-<seed>-<index>"
        if request.request_id not in references:
            references.update({item.id: item.reference for item in get_benchmark(benchmark).items()})
        return right(benchmark, references[request.request_id])

    return script


def right_answer(benchmark: str, reference: str) -> str:
    """A completion that the benchmark's scorer accepts (for the smoke and canary_code benchmarks)."""
    if benchmark != "canary_code":
        return f"Let me think. ANSWER: {reference}"
    spec = json.loads(reference)
    cases = [line.removeprefix("assert ").split(" == ") for line in spec["test"].splitlines()]
    table = {call.split("(", 1)[1].rstrip(")"): value for call, value in cases}
    return f"def {spec['entry_point']}(x):\n    return {{{', '.join(f'{k}: {v}' for k, v in table.items())}}}[x]\n"


def score_rows_of(store: Store, key: str) -> list[dict]:
    """Every row of a finished job's parts, read as the manifest lists them."""
    import io

    import pyarrow.parquet as pq

    manifest = store.manifest(key)
    assert manifest is not None, f"{key} is not done"
    rows = []
    for obj in manifest.objects:
        rows += pq.read_table(io.BytesIO(store.read_object(key, obj.name))).to_pylist()
    return sorted(rows, key=lambda row: (row["generation_job"], row["item_id"], row["sample_index"]))


def local_root(store_uri: str) -> Path:
    """The folder of a file:// store."""
    return Path(store_uri.removeprefix("file://"))
