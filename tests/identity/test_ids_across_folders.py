"""The same spec and data planned from two folders (as on two machines) give the same job ids.

Each side has its own working directory, spec location, training-file path, benchmark-data folder and
store; the bytes are the same. A Hub model named by branch is resolved through the loopback fake Hub.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import servers_hub
from conftest import CLI
from rpt_transfer.benchmarks.sources import DATA_ENV
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import load_study
from servers_hub import FakeHub

fake_hub = servers_hub.fake_hub  # the loopback fake Hub fixture

TRAIN = b'{"id": "a", "prompt": "What is 1 + 1?", "reference": "2"}\n'


def study(data_path: str) -> dict:
    return {
        "study": "folders",
        "kind": "interventional",
        "models": {"base": {"hub": "org/base", "revision": "main"}},
        "base": "base",
        "training": {"steps": 1},
        "train": [
            {"name": "m", "domain": "math", "data": {"path": data_path, "scorer": "math"}},
            {"name": "k", "domain": "knowledge", "data": {"benchmark": "smoke_facts", "examples": 8}},
        ],
        "benchmarks": ["smoke_arith", "tabfact"],
        "limit": 4,
    }


def side(root: Path, spec_dir: str, data_path: str) -> tuple[Path, Path, Path]:
    """A working directory with a spec, a training file and a benchmark-data folder of its own."""
    (root / spec_dir).mkdir(parents=True)
    spec = root / spec_dir / "study.yaml"
    spec.write_text(yaml.safe_dump(study(data_path)), encoding="utf-8")
    (root / data_path).parent.mkdir(parents=True, exist_ok=True)
    (root / data_path).write_bytes(TRAIN)
    data = root / "benchmark-data"
    (data / "tabfact" / "all_csv").mkdir(parents=True)
    (data / "tabfact" / "test_examples.json").write_text("{}")
    (data / "tabfact" / "all_csv" / "1-1.html.csv").write_text("a#b\n1#2\n")
    return root, spec, data


@pytest.fixture
def two_sides(tmp_path: Path, fake_hub: FakeHub) -> list[tuple[Path, Path, Path]]:
    fake_hub.add("model", "org/base")
    return [
        side(tmp_path / "laptop", "studies", "data/train.jsonl"),
        side(tmp_path / "pod" / "deep" / "er", "elsewhere/specs", "inputs/renamed-copy.jsonl"),
    ]


def test_plan_json_ids_match_in_two_working_directories(two_sides: list[tuple[Path, Path, Path]]) -> None:
    stages = []
    for cwd, spec, data in two_sides:
        env = {**os.environ, DATA_ENV: str(data)}
        env.pop("RPT_STORE", None)  # each side gets its own default store, ./.rpt/store
        result = subprocess.run(
            [*CLI, "plan", str(spec.relative_to(cwd)), "--json"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        stages.append(json.loads(result.stdout)["stages"])
    assert stages[0] == stages[1]
    assert len(stages[0]["train"]) == 2 and stages[0]["generate"]


def test_make_plan_ids_match_in_two_working_directories(
    two_sides: list[tuple[Path, Path, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = []
    for cwd, spec, data in two_sides:
        monkeypatch.chdir(cwd)
        monkeypatch.setenv(DATA_ENV, str(data))
        plan = make_plan(load_study(spec.relative_to(cwd)), f"file://{cwd / 'store'}", None)
        ids.append([(job.kind, job.id, job.deps) for job in plan.jobs])
        assert str(cwd) not in json.dumps([job.inputs for job in plan.jobs])
    assert ids[0] == ids[1]
