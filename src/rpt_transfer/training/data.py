"""One domain's training prompts with their references, from a synthetic benchmark or a JSONL file.

The plan records what identifies the data (benchmark identity and split seed, or the file's sha256; never
its path), so a changed training set changes the train job's id and the same bytes anywhere give the same
id. A file is read where the study is planned (a local path, relative to the working directory, or a store
URI such as `s3://bucket/data/math.jsonl`); `stage_inputs` copies it into the store under its sha256 before
the first job (`rpt-transfer prepare`), and the train job reads that copy back through `load_examples`, so
a pod never needs the planner's files.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from rpt_transfer import benchmarks
from rpt_transfer.errors import JobError, RptError, StoreError
from rpt_transfer.hashing import sha256_hex, short_hash
from rpt_transfer.scoring import get_scorer
from rpt_transfer.store import Store
from rpt_transfer.training.config import TrainData

if TYPE_CHECKING:
    from rpt_transfer.plan import Plan
    from rpt_transfer.spec import InterventionalStudy, ObservationalStudy

REQUIRED_FIELDS = ("id", "prompt", "reference")
STAGED_PREFIX = "inputs/sha256"
"""Store folder of staged training files, each named by its full sha256: written once, never changed."""
_ACCEPTED = "JSONL, one object with string fields id, prompt, reference per line"


class TrainExample(NamedTuple):
    """One training prompt: the user message and the reference its scorer checks."""

    id: str
    prompt: str
    reference: str


def split_seed(seed: int, benchmark: str) -> int:
    """Seed of a benchmark's RL training split: distinct from its test seed and from pre-training's."""
    return int(short_hash(["rl-train", seed, benchmark], length=8), 16)


def data_identity(data: TrainData) -> dict[str, Any]:
    """What enters the train job's id: the benchmark's identity and split, or the file's content hash."""
    if data.benchmark is not None:
        bench = benchmarks.get_benchmark(data.benchmark)
        return {"benchmark": bench.identity(), "examples": data.examples, "seed": data.seed}
    assert data.path is not None and data.scorer is not None
    content = read_source(data.path)
    read_jsonl(data.path, content)  # a malformed file fails here, before any job runs
    return {
        "sha256": sha256_hex(content),
        "examples": data.examples,
        "scorer": {"name": data.scorer, "version": get_scorer(data.scorer).version},
    }


def read_source(path: str) -> bytes:
    """The bytes of a training file: a local path, or a store URI (`s3://...`, `file://...`)."""
    try:
        if "://" in path:
            root, _, name = path.rpartition("/")
            return Store.from_uri(root).read_bytes(name)
        return Path(path).read_bytes()
    except StoreError as err:
        raise RptError(f"training data {path}: cannot read it ({err})") from None
    except OSError as err:
        raise RptError(f"training data {path}: cannot read it ({err.strerror or err})") from None
    except ValueError as err:  # a NUL byte: the OS refuses the path itself
        raise RptError(f"training data {path!r}: not a usable path ({err})") from None


def staged_key(sha256: str) -> str:
    """Store key of a staged training file."""
    return f"{STAGED_PREFIX}/{sha256}"


def stage_inputs(source: "Plan | ObservationalStudy | InterventionalStudy", store: Store) -> list[str]:
    """Copy the training files of a plan (or study) into the store under their sha256; the keys written.

    Idempotent: a file already staged is not read again, and concurrent stagers race on an exclusive
    create of the same bytes. A file that changed since its plan was made is refused (re-plan).
    """
    wanted: dict[str, str | None] = {}  # path -> the sha256 its plan recorded (None: a study, not yet hashed)
    for job in getattr(source, "jobs", []):
        if job.kind == "train" and "sha256" in job.inputs["data"]:
            wanted[job.context["data"]] = job.inputs["data"]["sha256"]
    for run in getattr(source, "train", []):
        if run.data.path is not None:
            wanted[run.data.path] = None
    written = []
    for path, planned in wanted.items():
        if planned is not None and store.exists(staged_key(planned)):
            continue
        content = read_source(path)
        digest = sha256_hex(content)
        if planned is not None and digest != planned:
            raise RptError(
                f"training data {path} changed since the study was planned (sha256 {digest[:12]}, the plan "
                f"has {planned[:12]}); re-plan the study"
            )
        if not store.exists(staged_key(digest)) and store.create_exclusive(staged_key(digest), content):
            written.append(staged_key(digest))
    return written


def load_examples(identity: dict[str, Any], store: Store) -> tuple[list[TrainExample], str]:
    """The training examples and the scorer name of a data identity made by `data_identity`.

    A file comes from its staged copy in the store, checked against the sha256 the plan recorded.
    """
    if "benchmark" in identity:
        from rpt_transfer.jobs.generate import benchmark_for

        bench = benchmark_for(identity["benchmark"])
        records = bench.source.generator(split_seed(identity["seed"], bench.name), identity["examples"])
        items = [bench.to_item(record) for record in records]
        return [TrainExample(i.id, bench.render_prompt(i), i.reference) for i in items], bench.scorer
    key = staged_key(identity["sha256"])
    if not store.exists(key):
        raise JobError(
            f"training data sha256 {identity['sha256']} is not in the store (no {store.key_uri(key)});"
            " run `rpt-transfer prepare` first, which copies a study's training files there"
        )
    content = store.read_bytes(key)
    if sha256_hex(content) != identity["sha256"]:
        raise JobError(
            f"training data {store.key_uri(key)} does not match its sha256; delete it and run "
            "`rpt-transfer prepare` again"
        )
    examples = read_jsonl(store.key_uri(key), content)
    return examples[: identity["examples"]] if identity["examples"] else examples, identity["scorer"]["name"]


def read_jsonl(path: str | Path, data: bytes) -> list[TrainExample]:
    """Parse a training file; the first bad line fails with its number, the field and what is accepted."""
    examples = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JobError(f"training data {path}: not UTF-8 text; accepted: {_ACCEPTED}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            problem = f"not JSON ({err.msg})"
            raise JobError(f"training data {path}:{number}: {problem}; accepted: {_ACCEPTED}") from None
        if not isinstance(row, dict):
            raise JobError(f"training data {path}:{number}: not an object; accepted: {_ACCEPTED}")
        for name in REQUIRED_FIELDS:
            if not isinstance(row.get(name), str) or not row[name]:
                raise JobError(
                    f"training data {path}:{number}: field {name!r} is missing or not a non-empty string; "
                    f"each line needs {', '.join(REQUIRED_FIELDS)}"
                )
        examples.append(TrainExample(row["id"], row["prompt"], row["reference"]))
    if not examples:
        raise JobError(f"training data {path}: no examples; accepted: {_ACCEPTED}")
    return examples
