"""One domain's training prompts with their references, from a synthetic benchmark or a JSONL file.

The plan records what identifies the data (benchmark identity and split seed, or the file's sha256), so a
changed training set changes the train job's id; the train job reads it back through `load_examples`.
"""

import json
from pathlib import Path
from typing import Any, NamedTuple

from rpt_transfer import benchmarks
from rpt_transfer.errors import JobError, RptError
from rpt_transfer.hashing import sha256_hex, short_hash
from rpt_transfer.scoring import get_scorer
from rpt_transfer.training.config import TrainData

REQUIRED_FIELDS = ("id", "prompt", "reference")
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
    path = Path(data.path)
    try:
        digest = sha256_hex(path.read_bytes())
    except OSError as err:
        raise RptError(f"training data {path}: cannot read it ({err.strerror})") from None
    return {
        "path": str(path.resolve()),
        "sha256": digest,
        "examples": data.examples,
        "scorer": {"name": data.scorer, "version": get_scorer(data.scorer).version},
    }


def load_examples(identity: dict[str, Any]) -> tuple[list[TrainExample], str]:
    """The training examples and the scorer name of a data identity made by `data_identity`."""
    if "benchmark" in identity:
        from rpt_transfer.jobs.generate import benchmark_for

        bench = benchmark_for(identity["benchmark"])
        records = bench.source.generator(split_seed(identity["seed"], bench.name), identity["examples"])
        items = [bench.to_item(record) for record in records]
        return [TrainExample(i.id, bench.render_prompt(i), i.reference) for i in items], bench.scorer
    path = Path(identity["path"])
    try:
        data = path.read_bytes()
    except OSError as err:
        raise JobError(f"training data {path}: cannot read it ({err.strerror})") from None
    if sha256_hex(data) != identity["sha256"]:
        raise JobError(f"training data {path} changed since the study was planned; re-plan the study")
    examples = read_jsonl(path, data)
    return examples[: identity["examples"]] if identity["examples"] else examples, identity["scorer"]["name"]


def read_jsonl(path: Path, data: bytes) -> list[TrainExample]:
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
