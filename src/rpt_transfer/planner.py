"""Study to jobs: the planner that turns a checked spec into content-addressed jobs and their edges.

A job's id hashes everything that determines its output (see `plan.make_job`); names people read sit in
its `context`. Hub branches are resolved to commits and training files hashed here, at plan time.
"""

from typing import Any

from rpt_transfer import benchmarks
from rpt_transfer.benchmarks import BenchmarkSpec
from rpt_transfer.benchmarks.sources import NoData
from rpt_transfer.errors import PlanError, RptError
from rpt_transfer.generation.base import backend_version
from rpt_transfer.model_defaults import ModelDefaults, read_model_defaults
from rpt_transfer.plan import (
    REPORT_VERSION,
    RPT_TRAINER_VERSION,
    STAGES,
    TINY_TRAINER_VERSION,
    Job,
    Plan,
    make_job,
)
from rpt_transfer.revisions import Resolver, is_commit, resolve_benchmark, resolve_model
from rpt_transfer.scoring import get_scorer
from rpt_transfer.spec import InterventionalStudy, ModelSpec, ObservationalStudy, PairSpec
from rpt_transfer.training.config import TrainSpec
from rpt_transfer.training.data import data_identity, data_label, data_source_field


class _Planner:
    """Builds jobs for one study, memoising model builds so each model is made once.

    Hub branches and tags (models, and datasets without a pinned revision) are resolved to commits here,
    each distinct one once per plan; ids carry the commit, the context the name the spec wrote.
    """

    def __init__(self, study: ObservationalStudy | InterventionalStudy, store_uri: str = "") -> None:
        self.study = study
        self.store_uri = store_uri
        self.defaults: dict[str, ModelDefaults] = {}
        self.jobs: dict[str, Job] = {}
        self.model_refs: dict[str, tuple[dict[str, Any], list[str]]] = {}
        self.hub = Resolver()
        self.benchmarks: dict[str, BenchmarkSpec] = {}

    def bench_identity(self, bench: BenchmarkSpec, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """A benchmark's identity for job ids, with unpinned Hub datasets at their current commits."""
        if bench.name not in self.benchmarks:
            self.benchmarks[bench.name] = resolve_benchmark(self.hub, bench)
        try:
            return self.benchmarks[bench.name].identity(options)
        except NoData as err:
            leave_out = f"or leave {bench.name} out of the study's benchmarks"
            raise PlanError(f"benchmark {bench.name}: {err}; {leave_out}") from None

    def revision_context(self, name: str, key: str = "model_revision") -> dict[str, str]:
        """The revision a Hub model's spec names (branch, tag or commit), for people; ids carry the commit."""
        model = self.study.models.get(name)
        return {key: model.revision} if model is not None and model.hub and model.revision else {}

    def add(self, job: Job) -> Job:
        self.jobs.setdefault(job.id, job)
        return job

    def model_ref(self, name: str) -> tuple[dict[str, Any], list[str]]:
        """Identity of a model's weights and the jobs that produce them."""
        if name not in self.model_refs:
            run = self.train_runs().get(name)
            self.model_refs[name] = self._train(run) if run else self._resolve(name, self.study.models[name])
        return self.model_refs[name]

    def train_runs(self) -> dict[str, TrainSpec]:
        """The study's training runs by the name of the model each produces."""
        study = self.study
        return {run.name: run for run in study.train} if isinstance(study, InterventionalStudy) else {}

    def prompt_mode(self, name: str) -> str:
        """How prompts reach a model; a trained model keeps its base model's."""
        study = self.study
        if name in self.train_runs():
            assert isinstance(study, InterventionalStudy)
            name = study.base
        return study.models[name].prompt_mode

    def sampling_defaults(self, name: str) -> ModelDefaults | None:
        """The model's own sampling defaults when the study asks for them (`sampling_defaults: model`).

        A trained model has its base model's: trainers keep the base's generation_config.json.
        """
        if self.study.sampling_defaults != "model":
            return None
        study = self.study
        source = study.base if isinstance(study, InterventionalStudy) and name in self.train_runs() else name
        if source not in self.defaults:
            ref, _ = self.model_ref(source)
            self.defaults[source] = read_model_defaults(source, study.models[source], ref, self.store_uri)
        return self.defaults[source]

    def engine(self, name: str) -> dict[str, Any]:
        """The backend's settings for one model's generate jobs: in their context, not their ids.

        Jobs with equal (model, backend, prompt mode, engine) share one loaded backend in a pod.
        """
        resources = self.study.resources
        if resources.backend == "vllm":
            return {"tensor_parallel_size": resources.gpus_per_job, **resources.vllm.model_dump(mode="json")}
        if resources.backend == "openai":
            base_url, served, _ = self.study.server_of(name)
            return {**resources.openai.model_dump(mode="json"), "base_url": base_url, "model": served}
        return {"batch_size": resources.batch_size}

    def _train(self, run: TrainSpec) -> tuple[dict[str, Any], list[str]]:
        study = self.study
        assert isinstance(study, InterventionalStudy)
        base_ref, deps = self.model_ref(study.base)
        try:
            data = data_identity(run.data, self.hub)
        except RptError as err:  # the file is read (a Hub revision resolved) here: name the spec field
            where = f"train[{study.train.index(run)}].data.{data_source_field(run.data)}"
            raise PlanError(f"{where}: {err}") from None
        inputs = {
            "base": base_ref,
            "prompt_mode": self.prompt_mode(study.base),
            "data": data,
            "algorithm": run.algorithm,
            "hyperparameters": study.hyper_for(run).identity(),
            "seed": run.seed,
            "trainer": trainer_identity(study),
        }
        context = {
            "study": study.study,
            "model": run.name,
            "base_model": study.base,
            **self.revision_context(study.base, "base_revision"),
            "domain": run.domain,
            "data": data_label(run.data),
            "tags": {
                "model": run.name,
                "role": "train",
                "base_model": study.base,
                "train_domain": run.domain,
                "rpt_algorithm": run.algorithm,
            },
            **trainer_context(study),
        }
        job = self.add(make_job("train", inputs, deps, context, study.study))
        return {"job": job.id}, [job.id]

    def _resolve(self, name: str, model: ModelSpec) -> tuple[dict[str, Any], list[str]]:
        if model.hub is not None:
            assert model.revision is not None
            moving = [n for n, m in self.study.models.items() if m.hub and not is_commit(m.revision)]
            commit = resolve_model(self.hub, name, model.hub, model.revision, moving)
            return {"hub": model.hub, "revision": commit}, []
        if model.path is not None:
            return {"store_path": model.path}, []
        assert model.tiny is not None
        recipe = model.tiny.model_dump(exclude={"init", "corpus"})
        corpus = {
            b: {"benchmark": self.bench_identity(benchmarks.get_benchmark(b)), "count": n}
            for b, n in sorted(model.tiny.corpus.items())
        }
        init_ref, deps = (None, [])
        if model.tiny.init is not None:
            init_ref, deps = self.model_ref(model.tiny.init)
        inputs = {
            "recipe": recipe,
            "corpus": corpus,
            "init": init_ref,
            "trainer": TINY_TRAINER_VERSION,
            "prompt_mode": model.prompt_mode,
        }
        job = self.add(
            make_job("pretrain", inputs, deps, {"study": self.study.study, "model": name}, self.study.study)
        )
        return {"job": job.id}, [job.id]

    def evaluate(self, name: str, bench: BenchmarkSpec, tags: dict[str, str]) -> Job:
        """Generate jobs (one per shard) and the score job of one model on one benchmark."""
        ref, model_deps = self.model_ref(name)
        defaults = self.sampling_defaults(name)
        sampling = self.study.sampling_for(bench.name, bench.repeats, defaults.values if defaults else None)
        resources = self.study.resources
        options = self.study.benchmark_options.get(bench.name)
        identity = self.bench_identity(bench, options)
        size = bench.size(self.study.limit, options)
        shards = min(self.study.resources.shards, size) or 1
        context = {"study": self.study.study, "model": name, "benchmark": bench.name}
        context |= self.revision_context(name)
        generate_ids = []
        for shard in range(shards):
            start, stop = shard * size // shards, (shard + 1) * size // shards
            inputs = {
                "model": ref,
                "prompt_mode": self.prompt_mode(name),
                "benchmark": identity,
                "limit": self.study.limit,
                "sampling": sampling.identity(),
                "shard": {"index": shard, "count": shards, "start": start, "stop": stop},
                "backend": resources.backend,
                "backend_version": backend_version(resources.backend),  # engines: recorded only
            }
            if resources.backend == "vllm":  # what it samples depends on these; the rest is recorded only
                inputs["engine"] = resources.vllm.identity()
            shard_context = {
                **context,
                "items": stop - start,
                "engine": self.engine(name),
                "gpus": resources.gpus_per_job,
            }
            if defaults is not None:
                shard_context["sampling_defaults"] = defaults.provenance()
            generate_ids.append(
                self.add(make_job("generate", inputs, model_deps, shard_context, self.study.study)).id
            )
        scorer_version = get_scorer(bench.scorer).version
        inputs = {
            "generations": generate_ids,
            "benchmark": identity,
            "scorer": {"name": bench.scorer, "version": scorer_version},
        }
        scoring = self.study.scoring.identity()
        if scoring:  # only when not the default, so the ids of studies that leave it out stay as they were
            inputs["scoring"] = scoring
        return self.add(make_job("score", inputs, generate_ids, {**context, "tags": tags}, self.study.study))


def study_pairs(study: ObservationalStudy | InterventionalStudy) -> list[PairSpec]:
    """The (RPT, base) comparisons of a study; each training run of an interventional one is a pair."""
    if isinstance(study, ObservationalStudy):
        return list(study.pairs)
    return [
        PairSpec(name=run.name, rpt=run.name, base=study.base, domains=[run.domain], algorithm=run.algorithm)
        for run in study.train
    ]


def _model_tags(planner: _Planner, pairs: list[PairSpec], name: str, bench: BenchmarkSpec) -> dict[str, str]:
    """MLflow tags of one (model, benchmark) run: role, base, RPT domains, benchmark domain, seen/unseen.

    A model trained by this study also carries `checkpoint_job`, the tag of its training run.
    """
    as_rpt = [pair for pair in pairs if pair.rpt == name]
    tags = {"model": name, "benchmark": bench.name, "benchmark_domain": bench.domain}
    if as_rpt:
        domains = sorted({d for pair in as_rpt for d in pair.domains})
        tags |= {
            "role": "rpt",
            "base_model": as_rpt[0].base,
            "rpt_domains": ",".join(domains),
            "rpt_algorithm": as_rpt[0].algorithm,
            "seen": "seen" if bench.domain in domains else "unseen",
        }
    else:
        tags |= {"role": "base", "seen": "n/a"}
    if name in planner.train_runs():
        tags |= {"checkpoint_job": planner.model_ref(name)[0]["job"], "train_domain": tags["rpt_domains"]}
    return tags


def make_plan(
    study: ObservationalStudy | InterventionalStudy, store_uri: str, tracking_uri: str | None
) -> Plan:
    """The plan of a study: pretrain, train, generate, score and aggregate jobs with their edges."""
    planner = _Planner(study, store_uri)
    bench_list = benchmarks.expand(study.benchmarks)
    pairs = study_pairs(study)
    model_names = list(dict.fromkeys(name for pair in pairs for name in (pair.base, pair.rpt)))
    scores = [
        planner.evaluate(name, bench, _model_tags(planner, pairs, name, bench))
        for name in model_names
        for bench in bench_list
    ]
    inputs = {
        "study": study.study,
        "scores": sorted(job.id for job in scores),
        "pairs": [pair.model_dump(mode="json") for pair in pairs],
        "report": REPORT_VERSION,
    }
    if study.sampling_defaults != "spec":  # the report says where each model's sampling came from
        inputs["sampling_defaults"] = study.sampling_defaults
    context = {
        "study": study.study,
        "kind": study.kind,
        "description": study.description,
        "domains": {bench.name: bench.domain for bench in bench_list},
    }
    planner.add(make_job("aggregate", inputs, [job.id for job in scores], context, study.study))
    ordered = sorted(planner.jobs.values(), key=lambda job: STAGES.index(job.kind))
    return Plan(
        study=study.study,
        spec_sha=study.digest(),
        store=store_uri,
        tracking_uri=tracking_uri,
        jobs=_topological(ordered),
    )


def _topological(jobs: list[Job]) -> list[Job]:
    """Jobs after their dependencies (pretrain chains need it within one stage), stable otherwise."""
    by_id = {job.id: job for job in jobs}
    done: dict[str, Job] = {}

    def visit(job: Job) -> None:
        if job.id in done:
            return
        for dep in job.deps:
            visit(by_id[dep])
        done[job.id] = job

    for job in jobs:
        visit(job)
    return list(done.values())


def trainer_identity(study: InterventionalStudy) -> dict[str, Any]:
    """The trainer part of a train job's id: backend and version, and OpenRLHF flags that change learning.

    OpenRLHF's placement (nodes, GPUs, engines) is context: the same run on more GPUs is the same run.
    """
    identity: dict[str, Any] = {"backend": study.trainer, "version": RPT_TRAINER_VERSION}
    if study.trainer == "openrlhf" and study.openrlhf.extra_args:
        identity["extra_args"] = dict(sorted(study.openrlhf.extra_args.items()))
    return identity


def trainer_context(study: InterventionalStudy) -> dict[str, Any]:
    """What a train pod needs beyond its id: OpenRLHF's settings and the nodes and GPUs it asks for."""
    if study.trainer != "openrlhf":
        return {}
    settings = study.openrlhf
    return {
        "openrlhf": settings.model_dump(mode="json", exclude={"extra_args"}),
        "resources": {"nodes": settings.nodes, "gpus_per_node": settings.gpus_per_node},
    }
