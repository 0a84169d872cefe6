"""Backend settings in `resources`: one line per problem through the real CLI, and what enters job ids.

vLLM is not installed here: the tests that need it registered point its package check at `json`, which is
the only difference from an installation with the `gpu` extra (validate looks packages up, never imports).
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import tiny_study, write_study
from inprocess import call_cli, error_lines
from rpt_transfer import generation
from rpt_transfer.generation.base import BACKEND_VERSIONS
from rpt_transfer.plan import Job, Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.runnable import Needs
from rpt_transfer.spec import parse_study

STORE = "file:///nowhere/store"
PINNED = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _vllm_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """vllm as an installation with the `gpu` extra has it; the backend itself never loads here."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setitem(
        generation.BACKENDS, "vllm", generation.BACKENDS.get("vllm", generation.BACKENDS["fake"])
    )
    monkeypatch.setitem(BACKEND_VERSIONS, "vllm", BACKEND_VERSIONS.get("vllm", "1"))
    monkeypatch.setitem(generation.NEEDS, "vllm", Needs(("json",), "gpu"))


def one_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, study: dict) -> str:
    """`rpt-transfer validate` refuses the study with exactly one line, exit 2; that line after the file."""
    path = write_study(tmp_path / "s.yaml", study)
    result = call_cli(capsys, "validate", str(path))
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    prefix = f"error: {path}: "
    assert lines[0].startswith(prefix), lines
    return lines[0].removeprefix(prefix)


def study_with(tmp_path: Path, **resources: Any) -> dict:
    return tiny_study(str(tmp_path / "store"), resources={"shards": 2, **resources})


@pytest.mark.parametrize(
    ("resources", "field", "fragment"),
    [
        ({"vllm": {"dtype": "bfloat16"}}, "resources.vllm: ", "but resources.backend is 'hf'"),
        ({"openai": {"concurrency": 4}}, "resources.openai: ", "set resources.backend: openai"),
        ({"backend": "vllm", "gpus_per_job": 0}, "resources.gpus_per_job: ", "(got 0); accepted: 1 to 8"),
        ({"gpus_per_job": 2}, "resources.gpus_per_job: ", "at most one GPU (got 2)"),
        (
            {"backend": "openai", "gpus_per_job": 1, "openai": {"base_url": "http://h/v1"}},
            "resources.gpus_per_job: ",
            "its server does (got 1); accepted: 0",
        ),
        ({"backend": "openai"}, "resources.openai.base_url: ", "needs a server for models rpt, base"),
        (
            {"backend": "vllm", "gpus_per_job": 1, "vllm": {"tensor_parallel": 2}},
            "resources.vllm.tensor_parallel: ",
            "unknown field",
        ),
        ({"openai": {"base_urll": "http://h/v1"}}, "resources.openai.base_urll: ", "unknown field"),
        ({"backend": "vllm", "gpus_per_job": 1, "vllm": {"dtype": "fp8"}}, "resources.vllm.dtype: ", "'fp8'"),
        (
            {"backend": "vllm", "gpus_per_job": 1, "vllm": {"gpu_memory_utilization": 1.5}},
            "resources.vllm.gpu_memory_utilization: ",
            "(got 1.5)",
        ),
        (
            {"backend": "openai", "openai": {"base_url": "ftp://h/v1"}},
            "resources.openai.base_url: ",
            "'ftp://h/v1'",
        ),
        (
            {"backend": "openai", "openai": {"base_url": "http://h/v1", "api_key_env": "A-KEY"}},
            "resources.openai.api_key_env: ",
            "'A-KEY'",
        ),
        ({"backend": "tgi"}, "resources.backend: ", "'tgi'"),
    ],
    ids=[
        "vllm settings, backend hf",
        "openai settings, backend hf",
        "vllm without GPUs",
        "hf on two GPUs",
        "openai with GPUs",
        "openai without a server",
        "vllm option typo",
        "openai option typo",
        "vllm dtype",
        "vllm memory fraction",
        "openai URL scheme",
        "openai key variable",
        "unknown backend",
    ],
)
def test_each_backend_problem_is_one_line_naming_its_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, resources: dict, field: str, fragment: str
) -> None:
    line = one_error(capsys, tmp_path, study_with(tmp_path, **resources))
    assert line.startswith(field) and fragment in line, line


def test_a_context_length_within_max_tokens_is_one_line_for_all_benchmarks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    study = study_with(tmp_path, backend="vllm", gpus_per_job=1, vllm={"max_model_len": 64})
    study["sampling"]["max_tokens"] = 64
    study["overrides"] = {"smoke_arith": {"max_tokens": 100}}
    line = one_error(capsys, tmp_path, study)
    assert line.startswith("resources.vllm.max_model_len: "), line
    assert "max_tokens 100 (of smoke_arith, smoke_facts) (got 64); accepted: more than 100" in line, line
    study["resources"]["vllm"]["max_model_len"] = 101
    result = call_cli(capsys, "validate", str(write_study(tmp_path / "s.yaml", study)))
    assert result.returncode == 0, result.stderr


def test_an_endpoint_without_backend_openai_names_the_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    study = study_with(tmp_path)
    study["models"]["rpt"]["endpoint"] = {"base_url": "http://rpt:8000/v1"}
    line = one_error(capsys, tmp_path, study)
    assert line.startswith("models.rpt.endpoint: ") and "resources.backend is 'hf'" in line, line


def test_one_model_without_a_server_is_the_one_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    study = study_with(tmp_path, backend="openai")
    study["models"]["rpt"]["endpoint"] = {"base_url": "http://rpt:8000/v1"}
    line = one_error(capsys, tmp_path, study)
    assert line.startswith("resources.openai.base_url: ") and "for models base;" in line, line


@pytest.fixture
def models_server() -> Iterator[str]:
    """A loopback server that answers `GET /v1/models` listing `served`: all `validate` asks of a server
    (tests/generation/test_openai_backend.py runs a real one, and the refusals)."""

    class Models(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"object": "list", "data": [{"id": "served", "object": "model"}]}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "resources",
    [
        {"backend": "vllm", "gpus_per_job": 2, "vllm": {"max_model_len": 4096, "dtype": "bfloat16"}},
        {"backend": "openai", "openai": {"base_url": "SERVER", "model": "served", "api_key_env": None}},
        {"backend": "hf", "gpus_per_job": 1, "batch_size": 8},
    ],
    ids=["vllm", "openai", "hf"],
)
def test_sound_backend_settings_validate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, resources: dict, models_server: str
) -> None:
    if resources["backend"] == "openai":
        resources = {**resources, "openai": {**resources["openai"], "base_url": models_server}}
    path = write_study(tmp_path / "s.yaml", study_with(tmp_path, **resources))
    result = call_cli(capsys, "validate", str(path))
    assert result.returncode == 0, result.stderr


# -- what enters job ids ------------------------------------------------------------------------------


def plan_of(study: dict) -> Plan:
    return make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), STORE, None)


def generate_jobs(plan: Plan) -> list[Job]:
    return [job for job in plan.jobs if job.kind == "generate"]


def all_ids(plan: Plan) -> list[str]:
    return [job.id for job in plan.jobs]


def test_hf_ids_are_those_of_a_study_written_before_backend_settings() -> None:
    """New fields at their defaults add nothing to ids: top_k off is left out, hf has no engine inputs."""
    plain = plan_of(tiny_study(STORE))
    spelled = tiny_study(
        STORE,
        sampling={"temperature": 0.8, "top_p": 1.0, "top_k": 0, "max_tokens": 6, "n": 2, "seed": 3},
        sampling_defaults="spec",
        resources={"shards": 2, "backend": "hf", "gpus_per_job": 0, "batch_size": 16},
    )
    assert all_ids(plan_of(spelled)) == all_ids(plain)
    for job in generate_jobs(plain):
        assert "top_k" not in job.inputs["sampling"]
        assert "engine" not in job.inputs
        assert job.context["engine"] == {"batch_size": 16}
        assert "sampling_defaults" not in job.context
    on = plan_of(
        tiny_study(STORE, sampling={"temperature": 0.8, "top_k": 5, "max_tokens": 6, "n": 2, "seed": 3})
    )
    assert all(job.inputs["sampling"]["top_k"] == 5 for job in generate_jobs(on))
    assert set(all_ids(on)).isdisjoint(job.id for job in generate_jobs(plain))


def test_hf_batch_size_is_context_only() -> None:
    bigger = plan_of(tiny_study(STORE, resources={"shards": 2, "batch_size": 64}))
    assert all_ids(bigger) == all_ids(plan_of(tiny_study(STORE)))
    assert {job.context["engine"]["batch_size"] for job in generate_jobs(bigger)} == {64}


def vllm_plan(**vllm: Any) -> Plan:
    return plan_of(
        tiny_study(STORE, resources={"shards": 2, "backend": "vllm", "gpus_per_job": 2, "vllm": vllm})
    )


def test_vllm_ids_follow_dtype_and_context_length_only() -> None:
    base = vllm_plan()
    base_ids = {job.id for job in generate_jobs(base)}
    assert all(
        job.inputs["engine"] == {"dtype": "auto", "max_model_len": None} for job in generate_jobs(base)
    )
    for changed in ({"dtype": "bfloat16"}, {"max_model_len": 4096}):
        assert base_ids.isdisjoint(job.id for job in generate_jobs(vllm_plan(**changed))), changed
    recorded = {
        "gpu_memory_utilization": 0.5,
        "enforce_eager": True,
        "enable_prefix_caching": False,
        "batch_invariant": True,
    }
    for key, value in recorded.items():
        assert all_ids(vllm_plan(**{key: value})) == all_ids(base), key
    (job, *_) = generate_jobs(vllm_plan(**recorded, dtype="float16", max_model_len=2048))
    assert job.context["engine"] == {
        "tensor_parallel_size": 2,
        "dtype": "float16",
        "max_model_len": 2048,
        **recorded,
    }
    assert job.inputs["backend"] == "vllm"
    hf_ids = {job.id for job in generate_jobs(plan_of(tiny_study(STORE)))}
    assert hf_ids.isdisjoint(base_ids)


def openai_study(openai: dict, endpoints: dict[str, dict] | None = None) -> dict:
    models = {
        "base": {"hub": "org/base", "revision": PINNED},
        "rpt": {"hub": "org/rpt", "revision": PINNED},
        "local": {"path": "checkpoints/local"},
    }
    for name, endpoint in (endpoints or {}).items():
        models[name]["endpoint"] = endpoint
    pairs = [
        {"name": "p", "rpt": "rpt", "base": "base", "domains": ["math"], "algorithm": "grpo"},
        {"name": "q", "rpt": "local", "base": "base", "domains": ["math"], "algorithm": "grpo"},
    ]
    return tiny_study(
        STORE,
        models=models,
        pairs=pairs,
        benchmarks=["smoke_arith"],
        resources={"backend": "openai", "openai": openai},
    )


def engines(plan: Plan) -> dict[str, dict]:
    return {job.context["model"]: job.context["engine"] for job in generate_jobs(plan)}


def test_openai_ids_do_not_follow_the_server_or_its_names() -> None:
    one = plan_of(openai_study({"base_url": "http://a:8000/v1"}))
    other = plan_of(
        openai_study(
            {
                "base_url": "http://b:9000/v1",
                "model": "everything",
                "concurrency": 64,
                "timeout_s": 5,
                "max_retries": 0,
            },
            {"rpt": {"base_url": "http://rpt:8000/v1", "model": "rpt-served"}},
        )
    )
    assert all_ids(one) == all_ids(other)
    assert all("engine" not in job.inputs and job.inputs["backend"] == "openai" for job in generate_jobs(one))
    client = {"api_key_env": "OPENAI_API_KEY", "concurrency": 8, "timeout_s": 600.0, "max_retries": 6}
    assert engines(one) == {
        "base": {"base_url": "http://a:8000/v1", "model": "org/base", **client},
        "rpt": {"base_url": "http://a:8000/v1", "model": "org/rpt", **client},
        "local": {"base_url": "http://a:8000/v1", "model": "local", **client},
    }
    client = {"api_key_env": "OPENAI_API_KEY", "concurrency": 64, "timeout_s": 5.0, "max_retries": 0}
    assert engines(other) == {
        "base": {"base_url": "http://b:9000/v1", "model": "everything", **client},
        "rpt": {"base_url": "http://rpt:8000/v1", "model": "rpt-served", **client},
        "local": {"base_url": "http://b:9000/v1", "model": "everything", **client},
    }


def test_an_endpoint_may_give_only_the_served_name() -> None:
    plan = plan_of(openai_study({"base_url": "http://a:8000/v1"}, {"base": {"model": "b-served"}}))
    assert engines(plan)["base"]["model"] == "b-served"
    assert engines(plan)["base"]["base_url"] == "http://a:8000/v1"
