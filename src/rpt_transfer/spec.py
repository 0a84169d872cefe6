"""The study spec: what a user writes in STUDY.yaml, as strict pydantic models.

Every model forbids unknown keys, so a misspelt field fails at load time with its file and dotted path
instead of being ignored. `load_study` reports every problem at once: field problems first, then (on a
spec whose fields are sound) the checks that span fields (`spec_checks`) and, for commands that plan or
run, whether this installation can run its backend and trainer (`runnable`).
"""

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rpt_transfer.benchmarks import Domain
from rpt_transfer.errors import SpecError
from rpt_transfer.generation.base import PromptMode, SamplingParams
from rpt_transfer.hashing import short_hash
from rpt_transfer.spec_checks import benchmark_name_problems, cross_check, non_finite, one_line, pydantic_line
from rpt_transfer.training.config import OpenRlhfSettings, TrainerName, TrainHyper, TrainSpec, merged_hyper

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
SEED_MAX = 2**32 - 1
"""Largest seed of a tiny model: numpy (under TRL and transformers) takes no larger one."""
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it (seven times faster), else PyYAML's own: plain data only."""
BackendName = Literal["hf", "vllm", "openai"]
"""Generation backends the spec language names; `runnable` asks the registry which this installation has."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TinyRecipe(_Strict):
    """A tiny causal LM the project pre-trains itself from synthetic benchmark data (offline stand-in)."""

    corpus: dict[str, Annotated[int, Field(ge=1)]]
    """Benchmark name -> number of training examples drawn from its generator (with a training seed)."""
    steps: int = Field(ge=1, le=100_000)
    """Optimiser steps."""
    seed: int = Field(default=0, ge=0, le=SEED_MAX)
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


class Endpoint(_Strict):
    """An OpenAI-compatible server (`vllm serve`, SGLang, `transformers serve`, a hosted API)."""

    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    """API root including `/v1`, e.g. `http://qwen-rl:8000/v1`."""
    model: str | None = Field(default=None, min_length=1)
    """The model name the server knows (`--served-model-name`); default: the Hub id, else the model's name."""


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
    endpoint: Endpoint | None = None
    """Backend `openai`: this model's own server or served name, over `resources.openai`."""

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
    top_k: int | None = Field(default=None, ge=0)
    """Sample from the k most likely tokens; 0 is off."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Most new tokens per sample."""
    n: int | None = Field(default=None, ge=1)
    """Samples per prompt."""
    seed: int | None = None
    """Base seed; each item derives its own."""
    stop: list[str] | None = None
    """Stop strings."""


class VllmEngine(_Strict):
    """vLLM engine settings (backend `vllm`).

    dtype and max_model_len enter generate job ids; the rest is recorded in every manifest and row (they
    change speed and memory, not what is sampled).
    """

    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Fraction of each GPU's memory vLLM may take for weights and KV cache."""
    max_model_len: int | None = Field(default=None, ge=16)
    """Longest prompt plus completion in tokens; None: the model's own context length."""
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    """Weights and activations; `auto` takes the checkpoint's (bf16 for most current models)."""
    enforce_eager: bool = False
    """Skip CUDA graph capture: slower decoding, faster start and less memory."""
    enable_prefix_caching: bool = True
    """Reuse the KV cache of shared prompt prefixes (every sample of one item shares its prompt)."""
    batch_invariant: bool = False
    """Set VLLM_BATCH_INVARIANT=1 (beta; compute capability 8.0+): a sample's tokens do not depend on the
    batch it ran in, on the same hardware and vLLM version."""

    def identity(self) -> dict[str, Any]:
        """The settings that change what is sampled (dtype, max_model_len), for generate job ids."""
        return {"dtype": self.dtype, "max_model_len": self.max_model_len}


class OpenAISettings(Endpoint):
    """Backend `openai`: the default server of every model, the client's limits and where the key lives."""

    api_key_env: str | None = Field(default="OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Environment variable holding the API key (never stored, logged or sent to MLflow); null: no key."""
    concurrency: int = Field(default=8, ge=1, le=1024)
    """Requests in flight at once, per generate job."""
    timeout_s: float = Field(default=600.0, gt=0, le=86_400)
    """Seconds one request may take before it counts as failed (and is retried)."""
    max_retries: int = Field(default=6, ge=0, le=20)
    """Retries of a request after 429, 5xx, a dropped connection or a timeout; never after other 4xx."""


class Resources(_Strict):
    """How generation jobs are cut, placed and run."""

    shards: int = Field(default=1, ge=1, le=1024)
    """Generation jobs per (model, benchmark); items are split into contiguous shards."""
    gpus_per_job: int = Field(default=0, ge=0, le=8)
    """GPUs each generation job requests on a cluster (0 locally); vLLM's tensor parallel size."""
    backend: BackendName = "hf"
    """Generation backend: `hf` (transformers, CPU or one GPU), `vllm` (GPU pods) or `openai` (a server)."""
    batch_size: int = Field(default=16, ge=1, le=4096)
    """Prompts per forward batch for the `hf` backend."""
    vllm: VllmEngine = VllmEngine()
    """Engine settings of the `vllm` backend."""
    openai: OpenAISettings = OpenAISettings()
    """Server and client settings of the `openai` backend."""
    expected_completion_tokens: int | None = Field(default=None, ge=1)
    """Mean completion length that `plan --estimate` assumes for models without finished generate jobs."""


class ScoringSpec(_Strict):
    """How score jobs treat verdicts that say nothing about the model; only changed fields enter job ids."""

    missing_toolchains: Literal["fail", "exclude"] = "fail"
    """A sample whose verdict is `toolchain_missing` (a compiler or test library the scoring machine
    lacks): `fail` stops the score job without output; `exclude` commits those rows with that reason, and
    the report leaves them out of every accuracy and says how many. Never counted 0 (training counts the
    same verdict as a failed reward, which stops a run when frequent: see training/rewards.py)."""

    def identity(self) -> dict[str, Any]:
        """The fields that differ from their defaults, for score job inputs (so default ids stay put)."""
        return self.model_dump(mode="json", exclude_defaults=True)


RESERVED_STUDY_NAMES = ("leaderboard",)
"""Names no study may take: `rpt-transfer/leaderboard` is the leaderboard's own MLflow experiment."""


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
    sampling_defaults: Literal["spec", "model"] = "spec"
    """`model`: temperature, top_p and top_k come from each model's generation_config.json where it sets
    them (resolved at plan time, so the numbers enter job ids); `spec`: `sampling` for every model."""
    overrides: dict[str, SamplingOverride] = {}
    """Benchmark name -> sampling changes for that benchmark."""
    benchmark_options: dict[str, dict[str, Any]] = {}
    """Benchmark name -> its sub-task selection (e.g. LegalBench `tasks`), checked by the benchmark."""
    resources: Resources = Resources()
    """Sharding and placement of generation jobs."""
    scoring: ScoringSpec = ScoringSpec()
    """How score jobs treat samples they cannot score here (missing toolchains)."""

    @field_validator("study")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_STUDY_NAMES:
            raise ValueError(
                f"'{name}' is reserved: rpt-transfer/{name} is the leaderboard's MLflow experiment"
            )
        return name

    def server_of(self, name: str) -> tuple[str | None, str, bool]:
        """Backend openai: model `name`'s base URL and served name, and whether the URL is its own.

        Its `endpoint` first, then `resources.openai`; the served name falls back to the Hub id, then the
        name. A model the study trains has no entry in `models`: the study's server serves it.
        """
        model = self.models.get(name)
        endpoint = model.endpoint if model is not None else None
        settings = self.resources.openai
        own = endpoint.base_url if endpoint is not None else None
        served = (endpoint.model if endpoint is not None else None) or settings.model
        hub = model.hub if model is not None else None
        return own or settings.base_url, served or hub or name, own is not None

    def digest(self) -> str:
        """Hash of the spec's content: a plan's `spec_sha`.

        Fields at their defaults are left out, so a field added later with a default does not make every
        stored plan look made from another spec.
        """
        return short_hash(self.model_dump(mode="json", exclude_defaults=True))

    def sampling_for(
        self, benchmark: str, repeats: int = 1, model_defaults: dict[str, Any] | None = None
    ) -> SamplingParams:
        """Sampling for one benchmark.

        The study's, with the benchmark's repeats unless the study sets n, then the model's own defaults
        (`sampling_defaults: model`), then the benchmark's override.
        """
        sampling = self.sampling
        if "n" not in sampling.model_fields_set:
            sampling = sampling.model_copy(update={"n": repeats})
        if model_defaults:
            sampling = SamplingParams.model_validate({**sampling.model_dump(), **model_defaults})
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
    openrlhf: OpenRlhfSettings = OpenRlhfSettings()
    """GPUs, nodes and engine settings of the `openrlhf` trainer (docs/training-openrlhf.md)."""
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


def load_study(path: Path | str, *, runnable: bool = False) -> ObservationalStudy | InterventionalStudy:
    """Read and check a study file; every problem is reported at once in one SpecError.

    With `runnable`, a backend or trainer that this installation cannot run is a problem too (`validate`,
    `plan` and `run` ask for it; reading back the spec of a study run elsewhere does not).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such study file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the study file ({err})") from None
    return parse_study(text, str(path), runnable=runnable)


def parse_study(
    text: str, source: str = "<string>", *, runnable: bool = False
) -> ObservationalStudy | InterventionalStudy:
    """Check study YAML text; `source` names the file in messages (specs read back from the store too)."""
    data = _parse_yaml(text, source)
    infinite = dict(non_finite(data))
    try:
        study = _StudyFile.model_validate({"study": data}).study
    except ValidationError as err:
        lines = [pydantic_line(e) for e in err.errors()]
        problems = list(infinite.values()) + [line for where, line in lines if where not in infinite]
        problems += benchmark_name_problems(data, {where for where, _ in lines})
        raise problems_error(source, problems) from None
    problems = list(infinite.values()) + cross_check(study)
    if runnable:
        from rpt_transfer.runnable import study_problems

        problems += study_problems(study)
    if problems:
        raise problems_error(source, problems)
    return study


def _parse_yaml(text: str, name: str) -> Any:
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise SpecError(f"{name}: malformed YAML{where}: {one_line(problem)}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{name}: expected a mapping with `study`, `kind`, `models`, ... at the top level")
    return data


def problems_error(source: str, problems: list[str]) -> SpecError:
    """One SpecError for problems of one file: each a line `source: field: problem`, the first its message."""
    lines = [one_line(p if p.startswith(f"{source}: ") else f"{source}: {p}") for p in problems]
    more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
    return SpecError(lines[0] + more, problems=lines)
