"""A whole study on `backend: vllm`, through `rpt-transfer run`, with the vLLM test double on PYTHONPATH.

The double (tests/fake_vllm) takes exactly the keywords of the committed vLLM 0.33 API snapshot and really
generates with transformers; everything else is the product as it runs in a GPU pod: validation of the
installation, planning with engine settings, one model load per group of generate jobs, the manifest's
reproducibility record, scoring and the report.
"""

import json
import os
from pathlib import Path

from conftest import run_cli, tiny_study, write_study

FAKE_VLLM = Path(__file__).resolve().parents[1] / "fake_vllm"


def test_a_study_runs_end_to_end_on_the_vllm_backend(tmp_path: Path) -> None:
    store = tmp_path / "store"
    resources = {
        "backend": "vllm",
        "gpus_per_job": 1,
        "vllm": {"max_model_len": 128, "dtype": "float32", "enable_prefix_caching": True},
    }
    study = tiny_study(str(store), resources=resources, tracking_uri="none")
    path = write_study(tmp_path / "vllm.yaml", study)
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(FAKE_VLLM), os.environ.get("PYTHONPATH")])),
        "RPT_CACHE": str(tmp_path / "cache"),
    }
    result = run_cli("run", str(path), "--workers", "2", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((store / "reports" / "mini").glob("*/attempt-*/report.html"))

    manifests = [json.loads(p.read_text()) for p in store.glob("generations/*/MANIFEST.json")]
    assert len(manifests) == 4  # 2 models × 2 benchmarks, 1 shard each
    for manifest in manifests:
        runtime = manifest["runtime"]
        assert manifest["inputs"]["engine"] == {"dtype": "float32", "max_model_len": 128}
        assert runtime["engine.backend"] == "vllm@1" and runtime["engine.vllm"].startswith("0.33.")
        assert runtime["engine.VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
        assert runtime["engine.tensor_parallel_size"] == "1" and runtime["engine.dtype"] == "float32"
        sent = json.loads(runtime["sampling"])
        assert sent["n"] == 1 and sent["max_tokens"] == 6 and sent["temperature"] == 0.8
    logs = list((store / "logs" / "mini").glob("generate-group-*.log"))
    assert len(logs) == 2  # one process per model: each loaded its model once for both benchmarks


def test_a_prompt_beyond_max_model_len_fails_its_job_in_one_line(tmp_path: Path) -> None:
    """The longest prompt plus max_tokens beyond max_model_len: that job fails naming the item and what to
    change, before generating anything; the other jobs of the model still run."""
    store = tmp_path / "store"
    resources = {"backend": "vllm", "gpus_per_job": 1, "vllm": {"max_model_len": 64}}
    path = write_study(
        tmp_path / "vllm.yaml", tiny_study(str(store), resources=resources, tracking_uri="none")
    )
    env = {"PYTHONPATH": str(FAKE_VLLM), "RPT_CACHE": str(tmp_path / "cache")}
    result = run_cli("run", str(path), "--workers", "1", env=env)
    assert result.returncode == 1
    assert (
        "vLLM backend: item 'smoke_facts-20261127-0' has 77 prompt tokens; with max_tokens=6 that is 83, "
        "beyond max_model_len=64: raise max_model_len" in result.stderr
    )
    assert len(list(store.glob("generations/*/MANIFEST.json"))) == 2  # smoke_arith of both models
