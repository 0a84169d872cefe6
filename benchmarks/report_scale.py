"""Paper-scale report: seconds and peak memory of the real aggregate job over a synthetic store.

The store holds the paper study (studies/paper-observational.yaml: 28 models, 18 pairs, 16 benchmarks with
their real item counts, 16 samples per item on AIME and AMC: 448 score jobs, 719,600 rows at --scale 1),
planned by the real planner without network (models named by branch get a made-up commit, benchmark files
are stand-ins: planning only hashes them), with made-up outcomes (each model a skill per domain, RPT models
better on their trained domains). Every completion is `--chars` characters long and distinct, as reasoning
traces are; by default they share a text behind each row's own prefix, so the store compresses them to
almost nothing, and with --random-text they are random letters, stored at about 60% as real text is (the
job then reads and verifies gigabytes). The aggregate job then runs as it does in a pod (`rpt-transfer job
run`), in a child process whose wall time and peak RSS (`os.wait4`) are printed; with --mlflow it syncs
into a loopback `mlflow server` whose score runs exist already (made beforehand, as the score jobs make
them). With --baseline-src (the `src` folder of another checkout, e.g. `git archive HEAD src | tar -x -C
/tmp/base`) the same store is aggregated by that code too, side by side, with the ratio and which report
files differ.

    .venv/bin/python benchmarks/report_scale.py [--scale 1] [--chars 64] [--random-text] [--mlflow]
        [--pairs N] [--store DIR] [--baseline-src DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rpt_transfer.benchmarks import expand
from rpt_transfer.benchmarks.sources import DATA_ENV, DatasetSource
from rpt_transfer.hashing import canonical_json
from rpt_transfer.jobs.generate import PART
from rpt_transfer.jobs.rows import SCORE_SCHEMA
from rpt_transfer.plan import Job, Plan
from rpt_transfer.plan_store import current_plan, publish_plan
from rpt_transfer.planner import make_plan
from rpt_transfer.revisions import is_commit
from rpt_transfer.spec import ObservationalStudy, load_study
from rpt_transfer.store import Store

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "paper-observational.yaml"
MIN_ITEMS = 3
"""Fewest items a benchmark keeps at a small --scale (paired tests need a few)."""
FILLER_SEED = 7
ENGINE = canonical_json(
    {"device": "cuda", "dtype": "bfloat16", "engine": "transformers", "transformers": "4.51.3"}
)
CODE_SCORERS = ("code_function", "code_stdio", "polyglot")


class Built(NamedTuple):
    """A synthetic store: its plan (published in it), the aggregate job, and how many score rows it has."""

    store: Store
    plan: Plan
    aggregate: Job
    rows: int


def paper_study(pairs: int | None = None) -> ObservationalStudy:
    """The paper study (its first `pairs` pairs), every model named by branch pinned at a made-up commit."""
    study = load_study(STUDY)
    assert isinstance(study, ObservationalStudy)
    chosen = study.pairs[:pairs] if pairs is not None else study.pairs
    used = {name for pair in chosen for name in (pair.rpt, pair.base)}
    models = {
        name: model
        if not model.hub or is_commit(model.revision)
        else model.model_copy(
            update={"revision": hashlib.sha256(f"{model.hub}@{model.revision}".encode()).hexdigest()[:40]}
        )
        for name, model in study.models.items()
        if name in used
    }
    return study.model_copy(update={"pairs": chosen, "models": models})


def stand_in_data(root: Path, study: ObservationalStudy) -> Path:
    """A benchmark-data folder with a one-line stand-in at every local file the study's benchmarks name."""
    for bench in expand(study.benchmarks):
        if not isinstance(bench.source, DatasetSource):
            continue
        for name in bench.source.local_files:
            path = root / name
            if not path.suffix:
                path = path / "stand-in.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"stand-in for {name}\n", encoding="utf-8")
    return root


def plan_offline(study: ObservationalStudy, store_uri: str, tracking_uri: str | None, data: Path) -> Plan:
    """The real planner's plan, with no Hub and stand-in benchmark files (planning hashes, never reads)."""
    saved = {key: os.environ.get(key) for key in (DATA_ENV, "HF_HUB_OFFLINE")}
    os.environ[DATA_ENV], os.environ["HF_HUB_OFFLINE"] = str(data), "1"
    try:
        return make_plan(study, store_uri, tracking_uri)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_store(
    root: Path,
    *,
    scale: float = 1.0,
    chars: int = 64,
    pairs: int | None = None,
    tracking_uri: str | None = None,
    seed: int = 0,
    random_text: bool = False,
) -> Built:
    """Plan the paper study into a store at `root` and commit a score job per model x benchmark.

    Completions are a shared text behind each row's own prefix (the store compresses them to almost
    nothing), or with `random_text` random letters (stored at ~60%, as real text roughly is).
    """
    study = paper_study(pairs)
    store_uri = f"file://{root / 'store'}"
    plan = plan_offline(study, store_uri, tracking_uri, stand_in_data(root / "data", study))
    store = Store.from_uri(store_uri)
    publish_plan(store, plan)
    aggregate = next(job for job in plan.jobs if job.kind == "aggregate")
    skills = model_skills(aggregate, seed)
    filler = filler_text(chars)
    total = 0
    for job in plan.jobs:
        if job.kind != "score" or store.is_done(job.key):
            continue
        table = score_table(plan, job, skills[job.context["model"]], scale, filler, seed, random_text)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        with store.begin(job.key, job_id=job.id, kind="score", inputs=job.inputs) as writer:
            writer.put_bytes(PART, sink.getvalue().to_pybytes())
            writer.commit()
        total += table.num_rows
    return Built(store, plan, aggregate, total)


def model_skills(aggregate: Job, seed: int) -> dict[str, dict[str, float]]:
    """Per model, its chance of a right answer per domain; RPT models gain on their trained domains."""
    skills: dict[str, dict[str, float]] = {}
    domains = ("math", "code", "knowledge")
    for pair in aggregate.inputs["pairs"]:
        for name in (pair["base"], pair["rpt"]):
            if name not in skills:
                rng = np.random.default_rng([seed, *name.encode()])
                skills[name] = {domain: rng.uniform(0.2, 0.75) for domain in domains}
        rng = np.random.default_rng([seed + 1, *pair["rpt"].encode()])
        base = skills[pair["base"]]
        skills[pair["rpt"]] = {
            d: base[d] + (0.12 if d in pair["domains"] else rng.uniform(-0.08, 0.05)) for d in domains
        }
    return skills


def filler_text(chars: int) -> str:
    """Word-like text to pad completions to `chars` (each row's own prefix keeps completions distinct)."""
    rng = np.random.default_rng(FILLER_SEED)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=k)) for k in rng.integers(2, 9, 512)]
    text = " ".join(words)
    return (text * (chars // len(text) + 1))[:chars]


def random_completions(rng: np.random.Generator, rows: int, chars: int) -> pa.Array:
    """`rows` strings of `chars` random lower-case letters and spaces, built in one buffer."""
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz      ", dtype=np.uint8)
    data = alphabet[np.frombuffer(rng.bytes(rows * chars), dtype=np.uint8) % len(alphabet)]
    offsets = np.arange(0, (rows + 1) * chars, chars, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data)).cast(pa.string())


def score_table(
    plan: Plan,
    job: Job,
    skill: dict[str, float],
    scale: float,
    filler: str,
    seed: int,
    random_text: bool = False,
) -> pa.Table:
    """The score rows of one job: every column of today's SCORE_SCHEMA (columns we do not fill are null)."""
    generates = [plan.job(dep) for dep in job.deps]
    first = generates[0].inputs
    size, samples = sum(g.context["items"] for g in generates), int(first["sampling"]["n"])
    items = max(MIN_ITEMS, min(size, round(size * scale)))
    model, bench = job.context["model"], job.context["benchmark"]
    domain, scorer = job.context["tags"]["benchmark_domain"], job.inputs["scorer"]["name"]
    item = np.repeat(np.arange(items), samples)
    sample = np.tile(np.arange(samples, dtype=np.int32), items)
    difficulty = np.random.default_rng([seed, *bench.encode()]).uniform(-0.3, 0.4, items)
    rng = np.random.default_rng([seed + 2, *f"{model}/{bench}".encode()])
    chance = np.clip(skill[domain] - difficulty[item], 0.02, 0.98)
    correct = (rng.random(len(item)) < chance).astype(float)
    if model == "qwen2.5-coder-7b" and bench == "codeforces":
        correct[:] = 0.0  # a base accuracy of 0: the relative delta has no value
    truncated = rng.random(len(item)) < 0.02
    no_answer = (correct == 0) & (truncated | (rng.random(len(item)) < 0.08))
    flexible = np.maximum(correct, (no_answer & (rng.random(len(item)) < 0.5)).astype(float))
    item_ids = pa.array([f"{bench}-{i:05d}" for i in range(items)]).take(pa.array(item))
    prefix = pc.binary_join_element_wise(item_ids, pa.array(sample.astype(str)), pa.scalar(f" {model} "))
    if random_text:  # as incompressible as text is: the store holds (and the job reads) ~60% of it
        completion = random_completions(rng, len(item), len(filler))
    else:
        completion = pc.utf8_slice_codeunits(
            pc.binary_join_element_wise(prefix, pa.scalar(filler), pa.scalar(" ")), 0, len(filler)
        )
    shard = np.minimum(item * len(generates) // items, len(generates) - 1)
    reason = np.where(no_answer, "no_answer", None)
    columns: dict[str, Any] = {
        "study": pa.array([plan.study] * len(item)),
        "job": pa.array([job.id] * len(item)),
        "model": pa.array([model] * len(item)),
        "model_ref": pa.array([canonical_json(first["model"])] * len(item)),
        "benchmark": pa.array([bench] * len(item)),
        "item_id": item_ids,
        "sample_index": pa.array(sample),
        "prompt_hash": pc.utf8_slice_codeunits(pc.binary_join_element_wise(item_ids, "-prompt", ""), 0, 16),
        "completion": completion,
        "finish_reason": pa.array(np.where(truncated, "length", "stop")),
        "prompt_tokens": pa.array(np.full(len(item), 200, dtype=np.int32)),
        "completion_tokens": pa.array(np.full(len(item), max(1, len(filler) // 4), dtype=np.int32)),
        "engine": pa.array([ENGINE] * len(item)),
        "generation_job": pa.array([generates[s].id for s in shard]),
        "benchmark_domain": pa.array([domain] * len(item)),
        "scorer": pa.array([scorer] * len(item)),
        "extracted": pa.array(np.where(no_answer, None, np.where(correct > 0, "42", "41")).tolist()),
        "correct": pa.array(correct),
        "reason": pa.array(reason.tolist(), pa.string()),
        "explanation": pa.array(np.where(no_answer, "no final answer found", None).tolist(), pa.string()),
        "toolchain": pa.array([canonical_json({"scorer": scorer, "python": "3.12"})] * len(item)),
        "correct_flexible": pa.array(flexible),
        "extracted_flexible": pa.array(np.where(flexible > 0, "42", None).tolist(), pa.string()),
        "format_followed": pa.array(~no_answer),
        "isolation": pa.array(["namespaces" if scorer in CODE_SCORERS else None] * len(item), pa.string()),
        "rerun": pa.array(np.zeros(len(item), dtype=bool)),
    }
    arrays = [
        columns[f.name].cast(f.type) if f.name in columns else pa.nulls(len(item), f.type)
        for f in SCORE_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=SCORE_SCHEMA)


def stored_rows(built: Built) -> int:
    """Score rows the plan's finished score jobs hold (from the Parquet footers)."""
    total = 0
    for job in built.plan.jobs:
        manifest = built.store.manifest(job.key) if job.kind == "score" else None
        for obj in manifest.objects if manifest is not None else ():
            total += pq.read_metadata(pa.BufferReader(built.store.read_object(job.key, obj.name))).num_rows
    return total


class Timed(NamedTuple):
    """One aggregate run: wall seconds and the child's peak resident memory."""

    seconds: float
    peak_gb: float
    report: Path


def run_aggregate(built: Built, out: Path, src: Path | None = None, tracking_uri: str | None = None) -> Timed:
    """Run the aggregate job in a child process (`src`: another checkout's code) and copy its report."""
    store, aggregate = built.store, built.aggregate
    store.delete_job(aggregate.key)  # the job runs only where its manifest is absent
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "RPT_STORE": store.uri}
    env["MLFLOW_TRACKING_URI"] = tracking_uri or "none"
    if src is not None:
        env["PYTHONPATH"] = str(src)
    plan_uri = store.key_uri(built.plan.key)
    argv = [sys.executable, "-m", "rpt_transfer", "job", "run", aggregate.id, "--plan", plan_uri]
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(
            f"aggregate job failed ({child.returncode}):\n{stderr.decode(errors='replace')[-3000:]}"
        )
    shutil.rmtree(out, ignore_errors=True)
    store.download(aggregate.key, out)
    return Timed(seconds, usage.ru_maxrss * 1024 / 1e9, out)


def report_differences(first: Path, second: Path) -> list[str]:
    """Files of two report folders that differ or exist in one only (the manifest excluded)."""
    names = {p.relative_to(first) for p in first.rglob("*") if p.is_file()}
    names |= {p.relative_to(second) for p in second.rglob("*") if p.is_file()}
    return sorted(
        str(name)
        for name in names
        if name.name != "MANIFEST.json"
        and not (
            (first / name).is_file()
            and (second / name).is_file()
            and filecmp.cmp(first / name, second / name, shallow=False)
        )
    )


@contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    """A loopback `mlflow server` (SQLite, proxied local artifacts), stopped with its workers at exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with (root / "server.log").open("wb") as log:
        server = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mlflow server did not start; see {root / 'server.log'}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def existing_score_runs(built: Built, tracking_uri: str) -> None:
    """The MLflow runs the score jobs made after their commits, so the aggregate job re-syncs them."""
    from rpt_transfer.tracking import open_tracker
    from rpt_transfer.tracking_sync import sync_score

    tracker = open_tracker(tracking_uri, built.store)
    parent = tracker.study_run(built.plan.study)
    for job in built.plan.jobs:
        if job.kind == "score":
            sync_score(tracker, built.plan, built.store, job, parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="share of each benchmark's items (1: all)")
    parser.add_argument("--chars", type=int, default=64, help="characters per completion")
    parser.add_argument("--pairs", type=int, default=None, help="only the study's first N pairs")
    parser.add_argument("--random-text", action="store_true", help="incompressible completions")
    parser.add_argument("--mlflow", action="store_true", help="sync into a loopback mlflow server too")
    parser.add_argument("--store", type=Path, default=None, help="folder to build in (kept; reused if built)")
    parser.add_argument(
        "--baseline-src", type=Path, default=None, help="`src` of another checkout to compare"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each code, the fastest shown")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.store or Path(tempfile.mkdtemp(prefix="rpt-report-scale-"))
    server = mlflow_server(root / "mlflow") if args.mlflow and not args.build_only else _nothing()
    with server as tracking_uri:
        tracking_uri = tracking_uri or os.environ.get("RPT_REPORT_SCALE_TRACKING")
        start = time.perf_counter()
        if args.build_only:
            build_here(args, root, tracking_uri)
            return
        built = build_with(args, root, tracking_uri)
        rows = stored_rows(built)
        print(
            f"store {root}: {sum(j.kind == 'score' for j in built.plan.jobs)} score jobs, {rows:,} rows, "
            f"{args.chars:,}-char completions (built in {time.perf_counter() - start:.1f} s); "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
        )
        if tracking_uri is not None:
            start = time.perf_counter()
            existing_score_runs(built, tracking_uri)
            print(f"mlflow {tracking_uri}: score runs made in {time.perf_counter() - start:.1f} s")
        codes = {"this checkout": None}
        if args.baseline_src is not None:
            codes = {f"baseline {args.baseline_src}": args.baseline_src.resolve(), **codes}
        results: dict[str, Timed] = {}
        for name, src in codes.items():
            runs = [
                run_aggregate(built, root / f"report-{len(results)}", src, tracking_uri)
                for _ in range(args.repeat)
            ]
            results[name] = min(runs, key=lambda timed: timed.seconds)
            best = results[name]
            print(
                f"{name}: aggregate {best.seconds:.1f} s, peak {best.peak_gb:.2f} GB "
                f"(runs: {', '.join(f'{r.seconds:.1f} s' for r in runs)}; load {os.getloadavg()[0]:.1f})"
            )
    if len(results) == 2:
        (base, mine) = results.values()
        print(
            f"ratio baseline / this checkout: {base.seconds / mine.seconds:.2f}x time, "
            f"{base.peak_gb / mine.peak_gb:.2f}x peak memory"
        )
        differ = report_differences(base.report, mine.report)
        print("report files identical" if not differ else f"report files that differ: {', '.join(differ)}")
    print(f"self peak (building): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


def build_here(args: argparse.Namespace, root: Path, tracking_uri: str | None) -> Built:
    """Build the store with this checkout's code, as the command line asks."""
    return build_store(
        root,
        scale=args.scale,
        chars=args.chars,
        pairs=args.pairs,
        tracking_uri=tracking_uri,
        random_text=args.random_text,
    )


def build_with(args: argparse.Namespace, root: Path, tracking_uri: str | None) -> Built:
    """Build the store here, or with the baseline's code (a store both versions can read: older code
    may refuse manifests or plans written by newer code, while newer code reads older stores)."""
    if args.baseline_src is None:
        return build_here(args, root, tracking_uri)
    argv = [sys.executable, __file__, "--build-only", "--store", str(root), "--scale", str(args.scale)]
    argv += ["--chars", str(args.chars)] + (["--pairs", str(args.pairs)] if args.pairs is not None else [])
    argv += ["--random-text"] if args.random_text else []
    env = {**os.environ, "PYTHONPATH": str(args.baseline_src.resolve())}
    if tracking_uri is not None:
        env["RPT_REPORT_SCALE_TRACKING"] = tracking_uri
    subprocess.run(argv, env=env, check=True)
    store = Store.from_uri(f"file://{root / 'store'}")
    plan = current_plan(store, paper_study(args.pairs).study)
    aggregate = next(job for job in plan.jobs if job.kind == "aggregate")
    return Built(store, plan, aggregate, 0)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
