"""Checks of a study that span fields, and the one-line form every spec problem takes.

pydantic checks each field on its own; these check what only the whole study tells: names that must refer
to models and benchmarks, benchmark options, training data, tiny-model lineage, and numbers that JSON (so
job ids) cannot hold. They cover what planning takes from the spec itself, so planning fails only on what
lies outside it (the Hub, local benchmark copies, a training file's content), which `validate` finds by
planning. Each problem is one line, `field.path: problem (got X); accepted: ...`, so `validate` can list
them all and `plan` and `run` can refuse with the first.
"""

import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rpt_transfer import benchmarks
from rpt_transfer.benchmarks import SyntheticSource
from rpt_transfer.errors import RptError
from rpt_transfer.training.config import TRAINER_ALGORITHMS, TrainData, check_hyper

if TYPE_CHECKING:
    from rpt_transfer.spec import InterventionalStudy, ObservationalStudy

_PLAIN_KEY = re.compile(r"^[\w.-]+$")
_GOT_LIMIT = 120
"""Longest `(got ...)` shown; a pasted document as a value must not flood the terminal."""
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}
"""Every character `str.splitlines` breaks at, mapped to its escape."""
_DATA_ACCEPTED = "accepted: a JSONL file of id, prompt, reference: a local path, or an s3:// or file:// URI"


def location(parts: Sequence[Any]) -> str:
    """A dotted field path, `models.base.tiny.seed` or `train[0].data`; odd keys are quoted on one line."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            text += f".{part}"
        else:
            text += f"[{part!r}]"
    return text.lstrip(".") or "(top level)"


def got(value: Any) -> str:
    """`(got X)` for a message: the value's repr on one line, cut to a readable length."""
    shown = one_line(repr(value))
    return f"(got {shown[:_GOT_LIMIT]}...)" if len(shown) > _GOT_LIMIT else f"(got {shown})"


def one_line(text: str) -> str:
    """The text with each character that would break it into lines written as its escape, as repr does."""
    return text.translate(_LINE_BREAKS)


def names(values: Any) -> str:
    """Accepted names, sorted, for the end of a message."""
    return ", ".join(sorted(values)) or "(none)"


def pydantic_line(error: Any, strip: int = 1) -> tuple[str, str]:
    """A pydantic error as (field path, one-line problem), dropping the wrapper field and the union's tag."""
    loc = list(error["loc"][strip:])
    if loc and loc[0] in ("observational", "interventional"):
        loc = loc[1:]
    where = location(loc)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        message = "`kind` must be `observational` or `interventional`"
        where = "kind"
    given = error.get("input")
    plain = error["type"] in ("missing", "extra_forbidden") or isinstance(given, dict)
    return where, f"{where}: {message}{'' if plain else ' ' + got(given)}"


def non_finite(data: Any, parts: tuple[Any, ...] = ()) -> Iterator[tuple[str, str]]:
    """Every NaN or infinity in the YAML (`.nan`, `.inf`), as (field path, problem): JSON cannot hold them."""
    if isinstance(data, float) and not math.isfinite(data):
        where = location(parts)
        yield where, f"{where}: not a finite number {got(data)}; accepted: a finite number"
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from non_finite(value, (*parts, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from non_finite(value, (*parts, index))


def benchmark_name_problems(data: Any, flagged: set[str]) -> list[str]:
    """Unknown benchmark names of a spec whose fields failed to validate, reported in the same run.

    The other cross-field checks need a sound spec; benchmark names only need the raw list, and a typo
    there is the mistake people make most.
    """
    listed = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(listed, list) or any(where.startswith("benchmarks") for where in flagged):
        return []
    problems = []
    for index, name in enumerate(listed):
        if not isinstance(name, str):
            continue
        try:
            benchmarks.expand([name])
        except RptError as err:
            problems.append(f"benchmarks[{index}]: {err}")
    return problems


def cross_check(study: "ObservationalStudy | InterventionalStudy") -> list[str]:
    """Checks that span fields: names that must refer to models and benchmarks, options, data, lineage."""
    problems: list[str] = []
    known: set[str] = set()
    for index, name in enumerate(study.benchmarks):
        try:
            known |= {b.name for b in benchmarks.expand([name])}
        except RptError as err:
            problems.append(f"benchmarks[{index}]: {err}")
    for field in ("overrides", "benchmark_options"):
        for name in getattr(study, field):
            if name not in known:
                where = location([field, name])
                problems.append(f"{where}: not a benchmark of this study; accepted: {names(known)}")
    problems += _check_options(study, known)
    problems += _check_models(study)
    problems += _check_resources(study, known)
    if study.kind == "observational":
        problems += _check_pairs(study)
    else:
        problems += _check_training(study)
    return problems


def _check_resources(study: "ObservationalStudy | InterventionalStudy", known: set[str]) -> list[str]:
    """Engine settings that fit the chosen backend: GPUs, context length, a server for every model."""
    resources = study.resources
    backend = resources.backend
    problems = []
    for section in ("vllm", "openai"):
        if section != backend and getattr(resources, section).model_fields_set:
            problems.append(
                f"resources.{section}: settings of backend {section}, but resources.backend is {backend!r}; "
                f"accepted: remove them or set resources.backend: {section}"
            )
    if backend == "vllm" and resources.gpus_per_job < 1:
        problems.append(
            "resources.gpus_per_job: the vllm backend runs on GPUs and uses this as its tensor parallel "
            "size (got 0); accepted: 1 to 8"
        )
    if backend == "openai" and resources.gpus_per_job > 0:
        problems.append(
            f"resources.gpus_per_job: the openai backend runs no model here, its server does "
            f"{got(resources.gpus_per_job)}; accepted: 0"
        )
    if backend == "hf" and resources.gpus_per_job > 1:
        problems.append(
            f"resources.gpus_per_job: the hf backend uses at most one GPU {got(resources.gpus_per_job)}; "
            "accepted: 0 or 1, or resources.backend: vllm for tensor parallelism"
        )
    limit = resources.vllm.max_model_len
    if backend == "vllm" and limit is not None:
        longest = {
            name: study.sampling_for(name, benchmarks.get_benchmark(name).repeats).max_tokens
            for name in known
        }
        worst = max(longest.values(), default=0)
        if worst >= limit:
            over = sorted(name for name, tokens in longest.items() if tokens >= limit)
            problems.append(
                f"resources.vllm.max_model_len: leaves no room for a prompt beside max_tokens {worst} (of "
                f"{', '.join(over)}) {got(limit)}; accepted: more than {worst}, or null for the model's own"
            )
    for name, model in study.models.items():
        if model.endpoint is not None and backend != "openai":
            problems.append(
                f"models.{name}.endpoint: a server for backend openai, but resources.backend is "
                f"{backend!r}; accepted: remove it or set resources.backend: openai"
            )
    serverless = [name for name in _evaluated(study) if study.server_of(name)[0] is None]
    if backend == "openai" and serverless:  # one line for all: the study-wide URL fixes every one
        problems.append(
            f"resources.openai.base_url: backend openai needs a server for models {', '.join(serverless)}; "
            "accepted: an http(s) URL ending in /v1 here, or in models.<name>.endpoint.base_url"
        )
    return problems


def _evaluated(study: "ObservationalStudy | InterventionalStudy") -> list[str]:
    """Models that get generate jobs: those of the pairs, or the base and every trained model."""
    if study.kind == "interventional":
        return [study.base, *(run.name for run in study.train)]
    named = (name for pair in study.pairs for name in (pair.rpt, pair.base))
    return [name for name in dict.fromkeys(named) if name in study.models]  # others: _check_pairs


def _check_pairs(study: "ObservationalStudy") -> list[str]:
    problems = []
    for index, pair in enumerate(study.pairs):
        for role in ("rpt", "base"):
            name = getattr(pair, role)
            if name not in study.models:
                accepted = names(study.models)
                problems.append(f"pairs[{index}].{role}: unknown model {name!r}; accepted: {accepted}")
    listed = [pair.name for pair in study.pairs]
    return problems + [
        f"pairs: duplicate pair name {n!r}" for n in sorted({n for n in listed if listed.count(n) > 1})
    ]


def _check_options(study: "ObservationalStudy | InterventionalStudy", known: set[str]) -> list[str]:
    """Each benchmark's options, checked by the benchmark exactly as planning will parse them."""
    from pydantic import ValidationError

    with_options = [b.name for b in benchmarks.ALL_BENCHMARKS if b.subset is not None]
    problems = []
    for name, options in study.benchmark_options.items():
        if name not in known:
            continue
        bench = benchmarks.get_benchmark(name)
        where = location(["benchmark_options", name])
        if bench.subset is None:
            if options:
                problems.append(
                    f"{where}: {name} takes no options {got(options)}; "
                    f"accepted: options only for {names(with_options)}"
                )
            continue
        try:
            bench.parse_options(options)
        except ValidationError as err:
            problems += [f"{where}.{pydantic_line(e, strip=0)[1]}" for e in err.errors()]
    return problems


def _check_training(study: "InterventionalStudy") -> list[str]:
    problems = []
    if study.base not in study.models:
        problems.append(f"base: unknown model {study.base!r}; accepted: {names(study.models)}")
    listed = [run.name for run in study.train]
    twice = sorted({n for n in listed if listed.count(n) > 1})
    problems += [f"train: duplicate run name {n!r}" for n in twice]
    for index, run in enumerate(study.train):
        where = f"train[{index}]"
        if run.name in study.models:
            problems.append(f"{where}.name: {run.name!r} is already a model in `models`; pick another name")
        problems += check_hyper(study.training, run.hyperparameters, f"{where}.hyperparameters")
        problems += _check_train_data(run.data, f"{where}.data")
        accepted = TRAINER_ALGORITHMS[study.trainer]
        if run.algorithm not in accepted:
            problems.append(
                f"{where}.algorithm: {run.algorithm} needs trainer openrlhf (trainer is {study.trainer}); "
                f"accepted with {study.trainer}: {', '.join(accepted)}"
            )
    return problems + _check_openrlhf(study)


def _check_openrlhf(study: "InterventionalStudy") -> list[str]:
    """OpenRLHF settings only with that trainer, and engines that divide its GPUs."""
    settings = study.openrlhf
    if study.trainer != "openrlhf":
        if settings.model_fields_set:
            return [f"openrlhf: settings of trainer openrlhf, but trainer is {study.trainer!r}; remove them"]
        return []
    problems = []
    if settings.gpus() % settings.vllm_tensor_parallel:
        problems.append(
            f"openrlhf.vllm_tensor_parallel: {settings.vllm_tensor_parallel} does not divide the run's "
            f"{settings.gpus()} GPUs (nodes x gpus_per_node); accepted: a divisor of {settings.gpus()}"
        )
    from rpt_transfer.training.openrlhf_flags import actor_placement, extra_arg_problems

    actors = settings.gpus()
    if not settings.colocate:
        try:
            nodes, per_node = actor_placement(settings)
            actors = nodes * per_node
        except ValueError as err:
            problems.append(f"openrlhf.vllm_engines: {err}; accepted: fewer engines, or colocate: true")
    for index, run in enumerate(study.train):
        hyper = study.hyper_for(run)
        if hyper.prompts_per_step * hyper.rollouts_per_prompt < actors:
            problems.append(
                f"train[{index}]: a step's {hyper.prompts_per_step} prompts x {hyper.rollouts_per_prompt} "
                f"rollouts leave some of the run's {actors} training GPUs without a sample; accepted: at "
                f"least {actors} samples per step, or fewer GPUs (openrlhf.nodes, gpus_per_node)"
            )
    problems += extra_arg_problems(settings.extra_args, "openrlhf.extra_args")
    return problems


def _synthetic() -> list[str]:
    return [b.name for b in benchmarks.ALL_BENCHMARKS if isinstance(b.source, SyntheticSource)]


def _check_train_data(data: TrainData, where: str) -> list[str]:
    if data.benchmark is not None:
        try:
            bench = benchmarks.get_benchmark(data.benchmark)
        except RptError as err:
            return [f"{where}.benchmark: {err}"]
        if not isinstance(bench.source, SyntheticSource):
            return [
                f"{where}.benchmark: {bench.name} has no training split (its items are test data); "
                f"accepted: a synthetic benchmark ({names(_synthetic())}) or a `path` to a training set"
            ]
        return []
    from rpt_transfer.scoring import SCORERS

    problems = []
    if data.scorer not in SCORERS:
        problems.append(f"{where}.scorer: unknown scorer {data.scorer!r}; accepted: {names(SCORERS)}")
    if data.path is not None:
        problems += _check_data_file(data.path, f"{where}.path")
    return problems


def _check_data_file(path: str, where: str) -> list[str]:
    """A local training file must exist and be readable (planning hashes its bytes); a URI is read then."""
    if "\x00" in path:  # no file system or store takes it, and the OS refuses it before any lookup
        return [f"{where}: not a usable path (it holds a NUL byte) {got(path)}; {_DATA_ACCEPTED}"]
    if "://" in path:  # a store URI is read (and hashed) when the plan is built, which validate does too
        scheme = path.partition("://")[0].lower()
        return [] if scheme in ("s3", "file") else [f"{where}: unsupported URI {got(path)}; {_DATA_ACCEPTED}"]
    try:
        file = Path(path)
        if not file.is_file():
            return [f"{where}: no such file {got(path)}; {_DATA_ACCEPTED}"]
        if not os.access(file, os.R_OK):
            return [f"{where}: cannot read the file {got(path)}; {_DATA_ACCEPTED}"]
    except (OSError, ValueError) as err:  # a NUL byte or an over-long name: the OS refuses the path itself
        return [f"{where}: not a usable path ({err}) {got(path)}; {_DATA_ACCEPTED}"]
    return []


def _check_models(study: "ObservationalStudy | InterventionalStudy") -> list[str]:
    problems: list[str] = []
    for name, model in study.models.items():
        if model.tiny is None:
            continue
        for corpus_name in model.tiny.corpus:
            where = location(["models", name, "tiny", "corpus", corpus_name])
            try:
                bench = benchmarks.get_benchmark(corpus_name)
            except RptError as err:
                problems.append(f"{where}: {err}")
                continue
            if not isinstance(bench.source, SyntheticSource):
                problems.append(
                    f"{where}: {bench.name} has no generator to draw pre-training text from (its items are "
                    f"test data); accepted: a synthetic benchmark ({names(_synthetic())})"
                )
        init = model.tiny.init
        if init is not None and (init not in study.models or study.models[init].tiny is None):
            tiny_names = [n for n, m in study.models.items() if m.tiny is not None and n != name]
            problems.append(
                f"models.{name}.tiny.init: {init!r} is not a tiny model; accepted: {names(tiny_names)}"
            )
    if not problems:
        problems += _init_cycles(study)
    return problems


def _init_cycles(study: "ObservationalStudy | InterventionalStudy") -> list[str]:
    for start in study.models:
        seen, current = {start}, study.models[start]
        while current.tiny is not None and current.tiny.init is not None:
            if current.tiny.init in seen:
                return [f"models.{start}.tiny.init: models initialise from each other in a cycle"]
            seen.add(current.tiny.init)
            current = study.models[current.tiny.init]
    return []
