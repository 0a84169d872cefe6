"""The README's GPU and server study specs plan as written: groups, GPUs, each model's own sampling.

`studies/vllm-1.5b.yaml` reads each model's generation_config.json from the Hub when planned; here the
loopback fake Hub serves those files (R1-distill-like settings for two models, none for the third).
vLLM is not installed here: its package check points at `json` (validate looks packages up, never imports).
"""

import json
from pathlib import Path

import pytest
import yaml

import servers_hub
from conftest import REPO, needs_benchmark_data
from inprocess import call_cli
from rpt_transfer import generation
from rpt_transfer.runnable import Needs

fake_hub = servers_hub.fake_hub  # the loopback fake Hub fixture
STUDIES = REPO / "studies"
pytestmark = needs_benchmark_data()


def spec(name: str) -> dict:
    return yaml.safe_load((STUDIES / name).read_text(encoding="utf-8"))


def test_the_openai_study_plans_one_serverless_group_per_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    study = {**spec("openai-served.yaml"), "store": str(tmp_path / "store")}
    path = tmp_path / "openai.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    result = call_cli(capsys, "plan", str(path), "--json", "--kind", "groups")
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)
    assert [(g["model"], g["backend"], g["gpus"], len(g["jobs"])) for g in groups] == [
        ("r1-distill-qwen-1.5b", "openai", 0, 4),
        ("deepscaler-1.5b", "openai", 0, 4),
    ]
    assert (
        "RPT_OPENAI_KEY" in (STUDIES / "openai-served.yaml").read_text() and not (tmp_path / "store").exists()
    )


def test_the_vllm_study_samples_each_model_at_its_own_settings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_hub
) -> None:
    monkeypatch.setitem(generation.NEEDS, "vllm", Needs(("json",), "gpu"))
    study = spec("vllm-1.5b.yaml")
    distill = {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32768}
    for name, model in study["models"].items():
        if name != "deepcoder-1.5b":  # one model without a file: the study's values apply
            fake_hub.add_file(model["hub"], "generation_config.json", json.dumps(distill), model["revision"])
        else:
            fake_hub.add("model", model["hub"], {"v1": model["revision"]})
    study["store"] = str(tmp_path / "store")
    study["benchmarks"] = ["gsm8k", "livecodebench"]  # paper-16 holds USACO, which has no public copy
    path = tmp_path / "vllm.yaml"
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    result = call_cli(capsys, "plan", str(path), "--json", "--kind", "groups")
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)
    assert {(g["backend"], g["gpus"], len(g["jobs"])) for g in groups} == {("vllm", 1, 2)}

    from rpt_transfer.runner import load_and_resolve

    plan = load_and_resolve(path, check_store=False).plan()
    generate = [job for job in plan.jobs if job.kind == "generate"]
    assert {job.inputs["engine"]["dtype"] for job in generate} == {"bfloat16"}
    by = {(job.context["model"], job.context["benchmark"]): job for job in generate}
    own = by[("deepscaler-1.5b", "gsm8k")]
    assert own.context["sampling_defaults"]["values"] == {"temperature": 0.6, "top_p": 0.95}
    assert own.inputs["sampling"]["max_tokens"] == 16192  # the study's, not the file's
    assert by[("deepscaler-1.5b", "livecodebench")].inputs["sampling"]["temperature"] == 0.0  # override wins
    assert by[("deepcoder-1.5b", "gsm8k")].context["sampling_defaults"]["values"] == {}
