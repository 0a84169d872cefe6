"""The study spec: what a user writes in STUDY.yaml, as strict pydantic models.

Every model forbids unknown keys, so a misspelt field fails at load time with its file and dotted path
instead of being ignored. `load_study` reports every problem at once.
"""

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rpt_transfer import benchmarks
from rpt_transfer.benchmarks import Domain, SyntheticSource
from rpt_transfer.errors import RptError, SpecError
from rpt_transfer.generation.base import PromptMode, SamplingParams
from rpt_transfer.training.config import (
    TrainData,
    TrainerName,
    TrainHyper,
    TrainSpec,
    check_hyper,
    merged_hyper,
)

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TinyRecipe(_Strict):
    """A tiny causal LM the project pre-trains itself from synthetic benchmark data (offline stand-in)."""

    corpus: dict[str, Annotated[int, Field(ge=1)]]
    """Benchmark name -> number of training examples drawn from its generator (with a training seed)."""
    steps: int = Field(ge=1, le=100_000)
    """Optimiser steps."""
    seed: int = 0
    """Seed for weights, corpus sampling and batch order."""
    init: str | None = None
    """Name of another tiny model in this study to continue from, instead of fresh weights."""
    learning_rate: float = Field(default=3e-3, gt=0, lt=1)
    """AdamW learning rate."""
    batch_size: int = Field(default=32, ge=1, le=1024)
    """Sequences per step."""
    hidden_size: int = Field(default=64, ge=8, le=1024, multiple_of=4)
    """Width of the transformer."""
    layers: int = Field(default=2, ge=1, le=12)
    """Number of transformer blocks."""


class ModelSpec(_Strict):
    """Where a model's weights come from: exactly one of `hub`, `path` or `tiny`."""

    hub: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    """Hugging Face Hub repository id, e.g. `Qwen/Qwen2.5-Math-7B`."""
    revision: str | None = None
    """Hub commit (40 hex) for reproducible ids; a branch or tag is accepted with a warning."""
    path: str | None = None
    """A checkpoint in the store (a key such as `checkpoints/<job>` or a full store URI)."""
    tiny: TinyRecipe | None = None
    """A tiny model built by the project (smoke study, tests)."""
    prompt_mode: PromptMode = "chat"
    """`chat`: apply the tokenizer's chat template; `raw`: send the prompt text as it is."""

    @model_validator(mode="after")
    def _one_source(self) -> "ModelSpec":
        given = [key for key in ("hub", "path", "tiny") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of hub, path or tiny (got {', '.join(given) or 'none'})")
        if self.hub is not None and not self.revision:
            raise ValueError("a hub model needs `revision` (a 40-hex commit)")
        if self.hub is None and self.revision is not None:
            raise ValueError("`revision` applies only to hub models")
        return self

    def pinned(self) -> bool:
        """Whether the weights are fixed by content (a hub commit, a store checkpoint or a tiny recipe)."""
        return self.hub is None or bool(self.revision and _COMMIT.match(self.revision))


class PairSpec(_Strict):
    """An RPT model paired with the base model it was post-trained from."""

    name: str = Field(pattern=NAME_PATTERN)
    """Short name used in reports and MLflow."""
    rpt: str
    """Name of the RPT model in `models`."""
    base: str
    """Name of its base model in `models`."""
    domains: list[Domain] = Field(min_length=1)
    """Domains of the RPT training data: benchmarks of these domains are `seen`, the others `unseen`."""
    algorithm: str = Field(min_length=1)
    """The RPT algorithm, e.g. `grpo`, `ppo`, `dapo`."""


class SamplingOverride(_Strict):
    """Per-benchmark changes to the study's sampling; unset fields keep the study value."""

    temperature: float | None = Field(default=None, ge=0)
    """Sampling temperature; 0 is greedy."""
    top_p: float | None = Field(default=None, gt=0, le=1)
    """Nucleus sampling mass."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Most new tokens per sample."""
    n: int | None = Field(default=None, ge=1)
    """Samples per prompt."""
    seed: int | None = None
    """Base seed; each item derives its own."""
    stop: list[str] | None = None
    """Stop strings."""


class Resources(_Strict):
    """How generation jobs are cut and placed."""

    shards: int = Field(default=1, ge=1, le=1024)
    """Generation jobs per (model, benchmark); items are split into contiguous shards."""
    gpus_per_job: int = Field(default=0, ge=0, le=8)
    """GPUs each generation job requests on a cluster (0 locally)."""
    backend: Literal["hf", "vllm"] = "hf"
    """Generation backend: `hf` (transformers, CPU or one GPU) or `vllm` (GPU cluster)."""
    batch_size: int = Field(default=16, ge=1, le=4096)
    """Prompts per forward batch for the `hf` backend."""


class _StudyBase(_Strict):
    study: str = Field(pattern=NAME_PATTERN)
    """Study name: names the MLflow experiment and the report folder."""
    description: str = ""
    """Free text shown in the report."""
    store: str | None = None
    """Store root URI (`file://...`, a path, or `s3://bucket/prefix`); else RPT_STORE, else ./.rpt/store."""
    tracking_uri: str | None = None
    """MLflow tracking URI; else MLFLOW_TRACKING_URI, else a SQLite file in a local store."""
    models: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ModelSpec] = Field(min_length=1)
    """Every model of the study by name."""
    benchmarks: list[str] = Field(min_length=1)
    """Benchmark or suite names."""
    limit: int | None = Field(default=None, ge=1)
    """Evaluate only the first `limit` items of each benchmark (quick runs)."""
    sampling: SamplingParams = SamplingParams()
    """Sampling for every benchmark."""
    overrides: dict[str, SamplingOverride] = {}
    """Benchmark name -> sampling changes for that benchmark."""
    benchmark_options: dict[str, dict[str, Any]] = {}
    """Benchmark name -> its sub-task selection (e.g. LegalBench `tasks`), checked by the benchmark."""
    resources: Resources = Resources()
    """Sharding and placement of generation jobs."""

    def sampling_for(self, benchmark: str, repeats: int = 1) -> SamplingParams:
        """Sampling for one benchmark: the study's, its repeats unless the study sets n, then its override."""
        sampling = self.sampling
        if "n" not in sampling.model_fields_set:
            sampling = sampling.model_copy(update={"n": repeats})
        override = self.overrides.get(benchmark)
        if override is not None:
            sampling = sampling.model_copy(update=override.model_dump(exclude_none=True))
        return sampling


class ObservationalStudy(_StudyBase):
    """Released RPT models against their bases on the same benchmarks."""

    kind: Literal["observational"]
    """Study kind."""
    pairs: list[PairSpec] = Field(min_length=1)
    """The RPT/base pairs to compare."""


class InterventionalStudy(_StudyBase):
    """RPT-train one base model on one domain at a time, then evaluate every checkpoint everywhere."""

    kind: Literal["interventional"]
    """Study kind."""
    base: str
    """Name of the base model in `models`: every run starts from it, and it is evaluated beside them."""
    trainer: TrainerName = "trl"
    """Trainer backend: `trl` on one machine (CPU or one GPU), `openrlhf` on a cluster."""
    training: TrainHyper
    """Hyperparameters shared by every run (the paper kept them identical across domains)."""
    train: list[TrainSpec] = Field(min_length=1)
    """One entry per single-domain training run."""

    def hyper_for(self, run: TrainSpec) -> TrainHyper:
        """The hyperparameters of one run: the study's, with the run's changes."""
        return merged_hyper(self.training, run.hyperparameters)


Study = Annotated[ObservationalStudy | InterventionalStudy, Field(discriminator="kind")]


class _StudyFile(BaseModel):
    study: Study


def load_study(path: Path | str) -> ObservationalStudy | InterventionalStudy:
    """Read and check a study file; every problem is reported at once in one SpecError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such study file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the study file ({err})") from None
    return parse_study(text, str(path))


def parse_study(text: str, source: str = "<string>") -> ObservationalStudy | InterventionalStudy:
    """Check study YAML text; `source` names the file in messages (specs read back from the store too)."""
    data = _parse_yaml(text, source)
    try:
        study = _StudyFile.model_validate({"study": data}).study
    except ValidationError as err:
        raise _spec_error(source, [_pydantic_line(e) for e in err.errors()]) from None
    problems = cross_check(study)
    if problems:
        raise _spec_error(source, problems)
    return study


def cross_check(study: ObservationalStudy | InterventionalStudy) -> list[str]:
    """Checks that span fields: names that must refer to models, benchmarks and tiny-model lineage."""
    problems: list[str] = []
    known_benchmarks: set[str] = set()
    for index, name in enumerate(study.benchmarks):
        try:
            known_benchmarks |= {b.name for b in benchmarks.expand([name])}
        except RptError as err:
            problems.append(f"benchmarks[{index}]: {err}")
    for name in study.overrides:
        if name not in known_benchmarks:
            problems.append(
                f"overrides.{name}: not a benchmark of this study; accepted: {_names(known_benchmarks)}"
            )
    problems += _check_models(study)
    if isinstance(study, ObservationalStudy):
        for index, pair in enumerate(study.pairs):
            for role in ("rpt", "base"):
                if getattr(pair, role) not in study.models:
                    problems.append(
                        f"pairs[{index}].{role}: unknown model {getattr(pair, role)!r}; "
                        f"accepted: {_names(study.models)}"
                    )
        names = [pair.name for pair in study.pairs]
        problems += [
            f"pairs: duplicate pair name {n!r}" for n in sorted({n for n in names if names.count(n) > 1})
        ]
    else:
        problems += _check_training(study)
    return problems


def _check_training(study: InterventionalStudy) -> list[str]:
    problems = []
    if study.base not in study.models:
        problems.append(f"base: unknown model {study.base!r}; accepted: {_names(study.models)}")
    names = [run.name for run in study.train]
    problems += [f"train: duplicate run name {n!r}" for n in sorted({n for n in names if names.count(n) > 1})]
    for index, run in enumerate(study.train):
        where = f"train[{index}]"
        if run.name in study.models:
            problems.append(f"{where}.name: {run.name!r} is already a model in `models`; pick another name")
        problems += check_hyper(study.training, run.hyperparameters, f"{where}.hyperparameters")
        problems += _check_train_data(run.data, f"{where}.data")
    return problems


def _check_train_data(data: TrainData, where: str) -> list[str]:
    if data.benchmark is not None:
        try:
            bench = benchmarks.get_benchmark(data.benchmark)
        except RptError as err:
            return [f"{where}.benchmark: {err}"]
        if not isinstance(bench.source, SyntheticSource):
            synthetic = [b.name for b in benchmarks.ALL_BENCHMARKS if isinstance(b.source, SyntheticSource)]
            return [
                f"{where}.benchmark: {bench.name} has no training split (its items are test data); "
                f"accepted: a synthetic benchmark ({_names(synthetic)}) or a `path` to a training set"
            ]
        return []
    from rpt_transfer.scoring import SCORERS

    problems = []
    if data.scorer not in SCORERS:
        problems.append(f"{where}.scorer: unknown scorer {data.scorer!r}; accepted: {_names(SCORERS)}")
    if data.path is not None and "://" not in data.path and not Path(data.path).is_file():
        problems.append(
            f"{where}.path: no such file {data.path!r}; accepted: a JSONL file of id, prompt, reference"
        )
    return problems


def _check_options(study: ObservationalStudy | InterventionalStudy, known: set[str]) -> list[str]:
    problems = []
    for name, options in study.benchmark_options.items():
        if name not in known:
            continue
        try:
            benchmarks.get_benchmark(name).parse_options(options)
        except ValidationError as err:
            for error in err.errors():
                problems.append(f"benchmark_options.{name}.{_pydantic_line(error, strip=0)}")
        except ValueError as err:
            problems.append(f"benchmark_options.{name}: {err}")
    return problems


def _check_models(study: ObservationalStudy | InterventionalStudy) -> list[str]:
    problems: list[str] = []
    for name, model in study.models.items():
        if model.tiny is None:
            continue
        for corpus_name in model.tiny.corpus:
            try:
                benchmarks.get_benchmark(corpus_name)
            except RptError as err:
                problems.append(f"models.{name}.tiny.corpus.{corpus_name}: {err}")
        init = model.tiny.init
        if init is not None and (init not in study.models or study.models[init].tiny is None):
            tiny_names = [n for n, m in study.models.items() if m.tiny is not None and n != name]
            problems.append(
                f"models.{name}.tiny.init: {init!r} is not a tiny model; accepted: {_names(tiny_names)}"
            )
    if not problems:
        problems += _init_cycles(study)
    return problems


def _init_cycles(study: ObservationalStudy | InterventionalStudy) -> list[str]:
    for start in study.models:
        seen, current = {start}, study.models[start]
        while current.tiny is not None and current.tiny.init is not None:
            if current.tiny.init in seen:
                return [f"models.{start}.tiny.init: models initialise from each other in a cycle"]
            seen.add(current.tiny.init)
            current = study.models[current.tiny.init]
    return []


def _names(names: Any) -> str:
    return ", ".join(sorted(names)) or "(none)"


def _parse_yaml(text: str, name: str) -> Any:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise SpecError(f"{name}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{name}: expected a mapping with `study`, `kind`, `models`, ... at the top level")
    return data


def _pydantic_line(error: Any, strip: int = 1) -> str:
    loc = list(error["loc"][strip:])  # drop the wrapper field, then the union's tag
    if loc and loc[0] in ("observational", "interventional"):
        loc = loc[1:]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] == "union_tag_invalid" or error["type"] == "union_tag_not_found":
        message = "`kind` must be `observational` or `interventional`"
        where = "kind"
    given = error.get("input")
    shown = (
        ""
        if error["type"] in ("missing", "extra_forbidden") or isinstance(given, dict)
        else f" (got {given!r})"
    )
    return f"{where}: {message}{shown}"


def _spec_error(source: str, problems: list[str]) -> SpecError:
    lines = [f"{source}: {problem}" for problem in problems]
    more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
    return SpecError(lines[0] + more, problems=lines)
