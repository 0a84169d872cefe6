"""One domain's training prompts with their references, from a synthetic benchmark or a JSONL file.

The plan records what identifies the data (benchmark identity and split seed, or the file's sha256; never
its path), so a changed training set changes the train job's id and the same bytes anywhere give the same
id. A file is read where the study is planned (a local path, relative to the working directory, or a store
URI such as `s3://bucket/data/math.jsonl`); `stage_inputs` copies it into the store under its sha256 before
the first job (`rpt-transfer prepare`), and the train job reads that copy back through `load_examples`, so
a pod never needs the planner's files.

A Hub dataset (`hub:`) is identified by its repo and the commit its `revision` pointed at when the study was
planned (the planner asks the Hub for that commit and nothing else), with the split, fields, filters and
conversions that make rows into examples; the train job downloads the data files of exactly that commit
(parquet or JSON Lines, through huggingface_hub's cache) and makes the examples there.
"""

import json
import sys
from collections.abc import Callable, Sequence
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
    from rpt_transfer.revisions import Resolver
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


def data_identity(data: TrainData, resolver: "Resolver | None" = None) -> dict[str, Any]:
    """What enters the train job's id: a benchmark's identity, a file's hash, or a Hub dataset's commit.

    For `hub` data the commit comes with how its rows become examples (split, fields, filters, scorer); the
    Hub is asked only for the commit of a branch or tag (through `resolver`, or a new one), and no data file
    is read here.
    """
    if data.benchmark is not None:
        bench = benchmarks.get_benchmark(data.benchmark)
        return {"benchmark": bench.identity(), "examples": data.examples, "seed": data.seed}
    if data.hub is not None:
        return hub_identity(data, resolver)
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

    A file comes from its staged copy in the store, checked against the sha256 the plan recorded; a Hub
    dataset from its files at the planned commit.
    """
    if "hub" in identity:
        return load_hub_examples(identity), identity["scorer"]["name"]
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


def data_source_field(data: TrainData) -> str:
    """The spec field that names a run's data source: `benchmark`, `path` or `hub` (for error lines)."""
    return "hub" if data.hub is not None else "path" if data.path is not None else "benchmark"


def data_label(data: TrainData) -> str:
    """A run's training data for people (a job's context); ids carry `data_identity` instead."""
    if data.hub is not None:
        return f"{data.hub}@{data.revision} ({data.split})"
    return data.path or f"{data.benchmark} (training split)"


# Hub datasets ---------------------------------------------------------------------------------------------

HUB_LOADER_VERSION = 1
"""Version of how Hub rows become examples (fields, filters, shuffle, ids); part of the data identity."""
PIN_DATA = "pin it in the spec: `revision: <40-hex commit>`"
DATA_SUFFIXES = (".parquet", ".jsonl")
"""Data files a Hub dataset's split may have."""
_CHUNK = 4096
"""Rows turned into Python objects at a time (a code dataset's tests can be megabytes per row)."""


class Unconvertible(ValueError):
    """A row whose reference a `reference_format` cannot express; the row is left out, with the reason."""


def text_reference(value: Any) -> str:
    """`reference_format: text`: a string as it is, a number as its text."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"is {_kind(value)}, not text or a number")


def stdio_tests_reference(value: Any) -> str:
    """`reference_format: stdio_tests`: JSON tests made into the reference the `code_stdio` scorer runs.

    Accepted: a list of `{"input", "output"}` objects (an optional `testtype`/`type` of `stdin` or
    `stdin_stdout`), or `{"inputs": [...], "outputs": [...]}`; each as JSON text or already parsed, inputs and
    outputs text (a list of lines is joined by newlines). Function-call tests (`fn_name`, `functional`),
    no tests, or tests that are not text raise `Unconvertible`, so that row is left out.
    """
    from rpt_transfer.scoring.code import stdio_reference

    tests = value
    if isinstance(value, str):
        try:
            tests = json.loads(value)
        except json.JSONDecodeError:
            raise Unconvertible("tests are not JSON") from None
    if isinstance(tests, dict):
        if tests.get("fn_name"):
            raise Unconvertible("function-call tests (fn_name)")
        inputs, outputs = tests.get("inputs"), tests.get("outputs")
        if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
            raise Unconvertible("a tests object without inputs and outputs lists of one length")
        cases = list(zip(inputs, outputs, strict=True))
    elif isinstance(tests, list):
        cases = []
        for case in tests:
            if not isinstance(case, dict) or "input" not in case or "output" not in case:
                raise Unconvertible("a test without input and output")
            kind = case.get("testtype") or case.get("type")
            if kind not in (None, "stdin", "stdin_stdout"):
                raise Unconvertible(f"{kind} tests")
            cases.append((case["input"], case["output"]))
    else:
        raise Unconvertible(f"tests are {_kind(tests)}")
    if not cases:
        raise Unconvertible("no tests")
    return stdio_reference([{"input": _lines(i, input_=True), "output": _lines(o)} for i, o in cases])


def _lines(value: Any, input_: bool = False) -> str:
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value) + ("\n" if input_ and value else "")
    if not isinstance(value, str):
        raise Unconvertible("tests whose input or output is not text")
    return value


REFERENCE_FORMATS: dict[str, tuple[int, Callable[[Any], str]]] = {
    "text": (1, text_reference),
    "stdio_tests": (1, stdio_tests_reference),
}
"""`reference_format` name -> (version, converter); the version enters the data identity."""


def hub_identity(data: TrainData, resolver: "Resolver | None" = None) -> dict[str, Any]:
    """A Hub dataset's identity: repo, the commit its revision names now, split, fields, filters, scorer."""
    from rpt_transfer.revisions import Resolver

    assert data.hub is not None and data.scorer is not None
    scorer = get_scorer(data.scorer)  # an unknown scorer fails before the Hub is asked
    commit = (resolver or Resolver()).commit(
        "dataset", data.hub, data.revision, who=f"hub dataset {data.hub}", pin=PIN_DATA
    )
    return {
        "hub": data.hub,
        "revision": commit,
        "split": data.split,
        "files": list(data.files) if data.files else None,
        "prompt_field": data.prompt_field,
        "prompt_suffix": data.prompt_suffix,
        "reference_field": data.reference_field,
        "reference_format": {
            "name": data.reference_format,
            "version": REFERENCE_FORMATS[data.reference_format][0],
        },
        "id_field": data.id_field,
        "where": dict(data.where),
        "exclude": {field: sorted(values, key=json.dumps) for field, values in data.exclude.items()},
        "shuffle_seed": data.seed if data.shuffle else None,
        "examples": data.examples,
        "scorer": {"name": data.scorer, "version": scorer.version},
        "loader": HUB_LOADER_VERSION,
    }


def load_hub_examples(identity: dict[str, Any]) -> list[TrainExample]:
    """The examples of a Hub data identity: its files at the planned commit, filtered, ordered, converted.

    Rows are read in file order (the files the spec names, else the split's, sorted by path) and numbered
    from 0; rows failing `where`/`exclude` are dropped, the rest shuffled when the spec asked, and converted
    in that order until `examples` are made. A missing field fails with the row, the field and what exists.
    """
    repo, commit, split = identity["hub"], identity["revision"], identity["split"]
    where = f"hub dataset {repo}@{commit[:12]}"
    names = identity["files"] or split_files(repo, commit, split, where)
    fields = {
        "prompt_field": identity["prompt_field"],
        "reference_field": identity["reference_field"],
        **({"id_field": identity["id_field"]} if identity["id_field"] else {}),
        **{f"where.{f}": f for f in identity["where"]},
        **{f"exclude.{f}": f for f in identity["exclude"]},
    }
    rows = HubRows([(name, download_data_file(repo, commit, name, where)) for name in names], where, fields)
    kept = rows.kept(identity["where"], identity["exclude"], split)
    if identity["shuffle_seed"] is not None:
        import numpy as np

        kept = [kept[i] for i in np.random.default_rng(identity["shuffle_seed"]).permutation(len(kept))]
    examples, dropped = _convert(rows, kept, identity, where)
    wanted = identity["examples"]
    if wanted and len(examples) < wanted:
        raise JobError(
            f"training data {where} ({split}): `examples` asks for {wanted:,}, but only {len(examples):,} "
            f"rows pass the filters and convert{_dropped_text(dropped)}; lower `examples` or widen filters"
        )
    print(
        f"training data {where}: {len(names)} file(s), {len(rows):,} rows in {split}, {len(kept):,} kept by "
        f"the filters, {len(examples):,} used{_dropped_text(dropped)}",
        file=sys.stderr,
        flush=True,
    )
    return examples


def _convert(
    rows: "HubRows", order: list[int], identity: dict[str, Any], where: str
) -> tuple[list[TrainExample], dict[str, int]]:
    """Examples from rows in `order` until `examples` are made; rows that do not convert are skipped."""
    format_name = identity["reference_format"]["name"]
    convert = REFERENCE_FORMATS[format_name][1]
    split, wanted = identity["split"], identity["examples"] or len(order)
    prompt_field, reference_field, id_field = (
        identity["prompt_field"],
        identity["reference_field"],
        identity["id_field"],
    )
    examples: list[TrainExample] = []
    dropped: dict[str, int] = {}
    seen: dict[str, int] = {}
    for start in range(0, len(order), _CHUNK):
        numbers = order[start : start + _CHUNK]
        for number, row in zip(numbers, rows.fetch(numbers), strict=True):
            at = f"training data {where} {split} row {number}"
            prompt = _prompt_text(_field(row, prompt_field, at), prompt_field, at) + identity["prompt_suffix"]
            try:
                reference = convert(_field(row, reference_field, at))
            except Unconvertible as why:
                dropped[str(why)] = dropped.get(str(why), 0) + 1
                continue
            except TypeError as err:
                raise JobError(
                    f"{at}: field {reference_field!r} {err}; accepted with reference_format {format_name}: "
                    f"{_FORMAT_ACCEPTS[format_name]}"
                ) from None
            key = _row_id(_field(row, id_field, at), id_field, at) if id_field else f"{split}-{number}"
            if key in seen:
                raise JobError(
                    f"{at}: id {key!r} (field {id_field!r}) is also row {seen[key]}'s; ids must differ"
                )
            seen[key] = number
            examples.append(TrainExample(key, prompt, reference))
            if len(examples) == wanted:
                return examples, dropped
    return examples, dropped


_FORMAT_ACCEPTS = {
    "text": "a non-empty string or a number",
    "stdio_tests": "JSON tests, a list of {input, output} or {inputs, outputs}",
}


def _dropped_text(dropped: dict[str, int]) -> str:
    if not dropped:
        return ""
    reasons = ", ".join(f"{count:,} {why}" for why, count in sorted(dropped.items(), key=lambda x: -x[1]))
    return f" ({sum(dropped.values()):,} left out by reference_format: {reasons})"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "empty text" if not value.strip() else "text"
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(type(value), type(value).__name__)


def _field(row: dict[str, Any], path: str, at: str) -> Any:
    """The value at a dotted path of a row; a missing or null one fails naming what exists there."""
    value: Any = row
    walked: list[str] = []
    for key in path.split("."):
        if not isinstance(value, dict):
            raise JobError(f"{at}: no field {path!r}: {'.'.join(walked)} is {_kind(value)}, not an object")
        if value.get(key) is None:
            has = ", ".join(sorted(k for k, v in value.items() if v is not None)) or "nothing"
            holder = ".".join(walked) if walked else "the row"
            raise JobError(f"{at}: no field {path!r} (missing or null); {holder} has: {has}")
        value = value[key]
        walked.append(key)
    return value


def _prompt_text(value: Any, path: str, at: str) -> str:
    """A prompt field's text: a string, or the content of the last user message of a list of messages."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        users = [m.get("content") for m in value if m.get("role") == "user"]
        if users and isinstance(users[-1], str) and users[-1].strip():
            return users[-1]
        roles = ", ".join(str(m.get("role")) for m in value) or "none"
        raise JobError(
            f"{at}: field {path!r} is a list of messages without a user message with text (roles: {roles}); "
            "accepted: text, or chat messages whose last user message holds the prompt"
        )
    raise JobError(
        f"{at}: field {path!r} is {_kind(value)}; accepted: text, or chat messages whose last user message "
        "holds the prompt"
    )


def _row_id(value: Any, path: str, at: str) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise JobError(f"{at}: field {path!r} is {_kind(value)}; accepted as an id: text or an integer")


def split_files(repo: str, commit: str, split: str, where: str) -> list[str]:
    """The split's data files at a commit, sorted: parquet or jsonl files whose path names the split.

    A path names the split when one of its words (cut at `/`, `-`, `_`, `.`, spaces and digits) is the split,
    as in `train.parquet`, `data/train-00000-of-00002.parquet` or `train/part_0.jsonl`.
    """
    import re

    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    from rpt_transfer.revisions import hub_endpoint

    try:
        tree = HfApi(endpoint=hub_endpoint()).list_repo_tree(
            repo, repo_type="dataset", revision=commit, recursive=True
        )
        names = sorted(entry.path for entry in tree if isinstance(entry, RepoFile))
    except Exception as err:  # the Hub client raises many types; one line naming the dataset is what helps
        raise _download_error(err, where, "cannot list its files") from None
    data = [name for name in names if name.endswith(DATA_SUFFIXES)]
    chosen = [n for n in data if split in re.split(r"[/\-_.\s0-9]+", n.lower().removesuffix(".parquet"))]
    if not chosen:
        shown = ", ".join(data[:10]) + (f" and {len(data) - 10} more" if len(data) > 10 else "") or "none"
        raise JobError(
            f"training data {where}: no {split!r} data file (parquet or jsonl) at that commit; its data "
            f"files: {shown}; name the split's files in `files`, or pick another `split`"
        )
    return chosen


def download_data_file(repo: str, commit: str, name: str, where: str) -> Path:
    """One data file of the dataset at the commit, through huggingface_hub's cache."""
    from huggingface_hub import hf_hub_download

    from rpt_transfer.revisions import hub_endpoint

    if not name.endswith(DATA_SUFFIXES):
        raise JobError(f"training data {where}: {name} is not a data file; accepted: parquet or jsonl files")
    try:
        return Path(
            hf_hub_download(repo, name, repo_type="dataset", revision=commit, endpoint=hub_endpoint())
        )
    except Exception as err:  # as above: one line, the file named
        raise _download_error(err, where, f"cannot download {name}") from None


def _download_error(err: Exception, where: str, what: str) -> JobError:
    """One line for a failed Hub call: missing things are the user's to fix, the rest may pass."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from rpt_transfer.errors import TransientJobError

    reason = " ".join(str(err).split())[:200]
    if isinstance(err, EntryNotFoundError):
        return JobError(f"training data {where}: {what}: no such file at that commit")
    if isinstance(err, RepositoryNotFoundError | RevisionNotFoundError):
        return JobError(f"training data {where}: {what}: {type(err).__name__} (private? set HF_TOKEN)")
    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, HfHubHTTPError) and status is not None and int(status) < 500 and int(status) != 429:
        return JobError(f"training data {where}: {what}: HTTP {status} ({reason})")
    return TransientJobError(f"training data {where}: {what} ({type(err).__name__}: {reason})")


class HubRows:
    """A split's rows over its files, numbered from 0 in file order; read column-wise, built when asked.

    Parquet files are read as Arrow tables holding only the columns the fields need (a missing column fails
    naming the file and the columns it has); JSON Lines files as objects.
    """

    def __init__(self, files: Sequence[tuple[str, Path]], where: str, fields: dict[str, str]) -> None:
        self.where = where
        self.roots = sorted({path.split(".")[0] for path in fields.values()})
        self.parts: list[tuple[int, Any]] = []  # (first row number, Arrow table or list of row objects)
        total = 0
        for name, path in files:
            part = self._read(name, path, fields)
            self.parts.append((total, part))
            total += len(part)
        self.total = total

    def __len__(self) -> int:
        return self.total

    def _read(self, name: str, path: Path, fields: dict[str, str]) -> Any:
        where = f"training data {self.where} file {name}"
        if name.endswith(".parquet"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                columns = pq.read_schema(path).names
                missing = [(spec, f) for spec, f in fields.items() if f.split(".")[0] not in columns]
                if missing:
                    spec, field = missing[0]
                    raise JobError(
                        f"{where}: no column {field.split('.')[0]!r} (needed by {spec} {field!r}); its "
                        f"columns: {', '.join(columns)}"
                    )
                return pq.read_table(path, columns=self.roots)
            except (OSError, pa.ArrowException) as err:
                raise JobError(f"{where}: not a readable parquet file ({err})") from None
        rows = []
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise JobError(
                        f"{where}:{number}: not JSON ({err.msg}); accepted: one object per line"
                    ) from None
                if not isinstance(row, dict):
                    raise JobError(f"{where}:{number}: not an object; accepted: one object per line")
                rows.append(row)
        return rows

    def fetch(self, numbers: Sequence[int]) -> list[dict[str, Any]]:
        """The rows with these numbers, in that order (only the columns the fields name, for parquet)."""
        found: dict[int, dict[str, Any]] = {}
        for start, part in self.parts:
            local = [n - start for n in numbers if start <= n < start + len(part)]
            if not local:
                continue
            rows = [part[i] for i in local] if isinstance(part, list) else part.take(local).to_pylist()
            found.update((start + i, row) for i, row in zip(local, rows, strict=True))
        return [found[n] for n in numbers]

    def kept(self, where: dict[str, Any], exclude: dict[str, list[Any]], split: str) -> list[int]:
        """Row numbers, in order, whose `where` fields equal and `exclude` fields avoid the given values."""
        if not where and not exclude:
            return list(range(self.total))
        kept = []
        for start in range(0, self.total, _CHUNK):
            numbers = list(range(start, min(start + _CHUNK, self.total)))
            for number, row in zip(numbers, self.fetch(numbers), strict=True):
                at = f"training data {self.where} {split} row {number}"
                if all(_equal(_field(row, f, at), v) for f, v in where.items()) and not any(
                    any(_equal(_field(row, f, at), v) for v in values) for f, values in exclude.items()
                ):
                    kept.append(number)
        return kept


def _equal(got: Any, wanted: Any) -> bool:
    """Filter equality: same JSON value (so `true` never equals 1, nor "1" equal 1)."""
    return (type(got) is type(wanted) and got == wanted) or (
        isinstance(got, int | float) and isinstance(wanted, int | float)
        and not isinstance(got, bool) and not isinstance(wanted, bool) and got == wanted
    )  # fmt: skip
