"""Generate job: one model on one shard of one benchmark, n samples per item, rows to Parquet."""

from rpt_transfer import benchmarks
from rpt_transfer.benchmarks import BenchmarkSpec
from rpt_transfer.errors import JobError, TransientJobError
from rpt_transfer.generation import GenerationBackend, GenRequest, GenResult, SamplingParams, load_backend
from rpt_transfer.hashing import canonical_json, sha256_hex, short_hash
from rpt_transfer.jobs.backends import BackendCache
from rpt_transfer.jobs.context import JobContext
from rpt_transfer.jobs.models import local_model_dir
from rpt_transfer.jobs.rows import GENERATION_SCHEMA, to_parquet
from rpt_transfer.plan import engine_options, group_key
from rpt_transfer.store import Manifest

PART = "part-00000.parquet"
PARAMETERS_NOTE = "model.parameters"
"""Runtime note of a generate manifest: the parameter count of the weights the backend loaded itself (HF)."""


def benchmark_for(identity: dict) -> BenchmarkSpec:
    """The registry's benchmark (at the dataset commits its plan resolved), refusing another version of it."""
    from rpt_transfer.revisions import benchmark_as_planned

    bench = benchmark_as_planned(benchmarks.get_benchmark(identity["name"]), identity)
    installed = bench.identity(identity.get("options"))
    if installed != identity:
        raise JobError(
            f"benchmark {bench.name}: the plan was made for {canonical_json(identity)} but this installation "
            f"has {canonical_json(installed)}; re-plan the study with this rpt-transfer and data"
        )
    return bench


def item_seed(base_seed: int, item_id: str) -> int:
    """Per-item seed: the same item gets the same samples in any shard or batch."""
    return int(short_hash([base_seed, item_id], length=8), 16) & 0x7FFFFFFF


def load(ctx: JobContext) -> GenerationBackend:
    """The plan's backend on the job's model: local weights fetched into the cache, or a server's address."""
    inputs = ctx.job.inputs
    options = engine_options(ctx.job.context)
    if inputs["backend"] == "openai":  # the server holds the weights
        return load_backend("openai", prompt_mode=inputs["prompt_mode"], **options)
    return load_backend(
        inputs["backend"],
        model_path=local_model_dir(inputs["model"], ctx.plan, ctx.store),
        prompt_mode=inputs["prompt_mode"],
        **options,
    )


def run(
    ctx: JobContext, backend: GenerationBackend | None = None, backends: BackendCache | None = None
) -> Manifest:
    """Generate completions for this shard and commit them; `backend` replaces the plan's (e.g. the fake).

    `backends` shares one loaded backend among the jobs of a group run in one process (`job run ID ...`).
    """
    inputs, context = ctx.job.inputs, ctx.job.context
    bench = benchmark_for(inputs["benchmark"])
    shard = inputs["shard"]
    items = bench.items(inputs["limit"], inputs["benchmark"].get("options"))[shard["start"] : shard["stop"]]
    params = SamplingParams.model_validate(inputs["sampling"])
    requests = [
        GenRequest(
            item.id, [{"role": "user", "content": bench.render_prompt(item)}], item_seed(params.seed, item.id)
        )
        for item in items
    ]
    if backend is None:
        key = group_key(ctx.job)
        assert key is not None
        backend = backends.get(key, lambda: load(ctx)) if backends is not None else load(ctx)
    ctx.progress.start(len(requests) * params.n, f"generate {context['model']} × {bench.name}")
    results = backend.generate(requests, params, on_progress=ctx.progress.advance)
    refuse_transient_failures(results)
    model_ref = canonical_json(inputs["model"])
    engine = canonical_json(backend.engine_versions())  # recorded, not in the id: see rows.py
    rows = [
        {
            "study": context["study"],
            "job": ctx.job.id,
            "model": context["model"],
            "model_ref": model_ref,
            "benchmark": bench.name,
            "item_id": r.request_id,
            "sample_index": r.sample_index,
            "prompt_hash": sha256_hex(r.prompt_text.encode())[:16],
            "prompt": r.prompt_text,
            "completion": r.completion,
            "finish_reason": r.finish_reason,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "error": r.error,
            "engine": engine,
        }
        for r in results
    ]
    with ctx.begin() as writer:
        writer.put_bytes(PART, to_parquet(rows, GENERATION_SCHEMA))
        for key, value in reproducibility(backend, params).items():
            writer.note_runtime(key, value)
        return writer.commit()


def reproducibility(backend: GenerationBackend, params: SamplingParams) -> dict[str, str]:
    """What a generate manifest's `runtime` records: the engine (versions, device, settings) and sampling.

    A backend may state the sampling it really sent more fully than the plan (vLLM's `effective_sampling`).
    """
    runtime = {f"engine.{key}": str(value) for key, value in backend.engine_versions().items()}
    effective = getattr(backend, "effective_sampling", None)
    sampling = effective(params) if callable(effective) else params.model_dump(mode="json")
    runtime["sampling"] = canonical_json(sampling)
    runtime["sample_seeds"] = "sample_seed(item_seed(sampling.seed, item_id), sample_index)"
    parameters = getattr(backend, "parameter_count", None)  # hf and vllm have the weights; a server does not
    if parameters is not None:
        runtime[PARAMETERS_NOTE] = str(parameters)
    return runtime


def refuse_transient_failures(results: list[GenResult]) -> None:
    """Fail the job, committing nothing, when a sample failed in a way that may pass.

    A server down or overloaded after every retry: committed, the sample would be scored 0 for good;
    failed, a retry of the job (Argo's, or `rpt-transfer run` again) generates it. Failures that would
    repeat (a prompt too long, a 400) stay error rows. The error is transient: `job run` exits 75 for it.
    """
    failed = [r for r in results if r.transient]
    if failed:
        raise TransientJobError(
            f"{len(failed)} of {len(results)} samples failed after every retry (first, item "
            f"{failed[0].request_id}: {failed[0].error}); nothing committed: run the job again once the "
            "server answers"
        )
