"""`validate` finds every problem `plan` and `run` would hit, one line each, and writes nothing.

Each case was seen to pass `validate` and then fail later (a traceback in `plan`, or a refusal in `job run`
after other jobs had run); now `validate` names it, and `plan` and `run` refuse it in one line up front.
"""

import hashlib
from pathlib import Path

import pytest

from conftest import run_cli, tiny_study, write_study
from inprocess import call_cli, error_lines
from rpt_transfer import generation
from rpt_transfer.benchmarks.sources import DATA_ENV
from rpt_transfer.runnable import Needs
from rpt_transfer.training import base as trainers


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)  # benchmarks plan from their pinned Hub revisions
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # an s3:// URI reaches nothing off this host
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "y"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)


def snapshot(folder: Path) -> dict[str, str] | None:
    """Every file under a folder with its sha256, or None when the folder does not exist."""
    if not folder.exists():
        return None
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def interventional(store: Path, **changes: object) -> dict:
    study = {
        "study": "iv",
        "kind": "interventional",
        "store": str(store),
        "models": {"base": {"tiny": {"corpus": {"smoke_arith": 16}, "steps": 2}}},
        "base": "base",
        "training": {"steps": 2, "max_new_tokens": 4, "rollouts_per_prompt": 2, "prompts_per_step": 2},
        "train": [{"name": "m", "domain": "math", "data": {"benchmark": "smoke_arith", "examples": 8}}],
        "benchmarks": ["smoke_arith"],
        "limit": 2,
    }
    study.update(changes)
    return study


def refused_everywhere(tmp_path: Path, study: dict, *fragments: str) -> list[str]:
    """validate lists the problem; plan and run refuse in one line before anything; the store stays as it was."""
    path = write_study(tmp_path / "s.yaml", study)
    store = Path(study["store"])
    before = snapshot(store)
    validated = run_cli("validate", str(path))
    assert validated.returncode == 2, (validated.stdout, validated.stderr)
    assert "Traceback" not in validated.stderr
    lines = validated.stderr.strip().splitlines()
    assert lines and all(line.startswith(f"error: {path}: ") for line in lines), lines
    for fragment in fragments:
        assert any(fragment in line for line in lines), (fragment, lines)
    for command in ("plan", "run"):
        result = run_cli(command, str(path))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, (command, result.stderr)
        assert result.stderr.startswith(f"error: {path}: "), (command, result.stderr)
    assert snapshot(store) == before
    return lines


def test_options_of_a_benchmark_without_options(tmp_path: Path) -> None:
    study = tiny_study(str(tmp_path / "store"), benchmark_options={"smoke_arith": {"bogus": 1}})
    lines = refused_everywhere(
        tmp_path, study, "benchmark_options.smoke_arith: smoke_arith takes no options (got {'bogus': 1})"
    )
    assert "accepted: options only for bigcodebench, finben, legalbench" in lines[0]


def test_bad_options_of_a_benchmark_with_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    study = tiny_study(
        str(tmp_path / "store"),
        benchmarks=["smoke", "legalbench"],
        benchmark_options={"legalbench": {"tasks": ["no_such_task"], "colour": "red"}, "gsm8k": {}},
    )
    path = write_study(tmp_path / "s.yaml", study)
    result = call_cli(capsys, "validate", str(path))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 3, lines
    assert any("benchmark_options.legalbench.tasks[0]: Input should be" in line for line in lines)
    assert any("benchmark_options.legalbench.colour: unknown field" in line for line in lines)
    assert any(
        "benchmark_options.gsm8k: not a benchmark of this study; accepted: legalbench, smoke_arith" in line
        for line in lines
    )


def test_backend_this_version_does_not_have(tmp_path: Path) -> None:
    study = tiny_study(str(tmp_path / "store"), resources={"backend": "vllm"})
    refused_everywhere(tmp_path, study, "resources.backend: ", "(got 'vllm'); accepted: hf")


def test_trainer_without_its_packages_is_refused_before_pretraining(tmp_path: Path) -> None:
    study = interventional(tmp_path / "store", trainer="openrlhf")
    refused_everywhere(
        tmp_path,
        study,
        "trainer: needs ray, deepspeed, vllm",
        "pip install 'rpt-transfer[train]'",
        "accepted: trl",
    )
    assert not (tmp_path / "store").exists()  # run refused before pre-training anything


def test_registered_backend_without_its_package_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The check reads the registries, so a backend that a later version registers is checked unchanged."""
    monkeypatch.setitem(generation.BACKENDS, "vllm", generation.BACKENDS["fake"])
    monkeypatch.setitem(generation.BACKEND_VERSIONS, "vllm", "1")
    monkeypatch.setitem(generation.NEEDS, "vllm", Needs(("rpt_transfer_no_such_module",), "gpu"))
    monkeypatch.setitem(trainers.TRAINERS, "openrlhf", trainers.TRAINERS["trl"])
    monkeypatch.setitem(trainers.NEEDS, "openrlhf", Needs(("rpt_transfer_no_such_module",), "train"))
    study = interventional(
        tmp_path / "store",
        trainer="openrlhf",
        openrlhf={"gpus_per_node": 1},
        resources={"backend": "vllm", "gpus_per_job": 1},
    )
    result = call_cli(capsys, "validate", str(write_study(tmp_path / "s.yaml", study)))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 2, lines
    assert "resources.backend: " in lines[0] and "pip install 'rpt-transfer[gpu]'" in lines[0]
    assert "(got 'vllm'); accepted: hf" in lines[0]
    assert "trainer: " in lines[1] and "pip install 'rpt-transfer[train]'" in lines[1]
    # once the package is there, the same spec validates
    monkeypatch.setitem(generation.NEEDS, "vllm", Needs(("json",), "gpu"))
    monkeypatch.setitem(trainers.NEEDS, "openrlhf", Needs(("json",), "train"))
    assert call_cli(capsys, "validate", str(tmp_path / "s.yaml")).returncode == 0


def test_training_data_at_a_uri_agrees_with_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = {"path": "s3://bucket/train.jsonl", "scorer": "math"}
    study = interventional(tmp_path / "store", train=[{"name": "m", "domain": "math", "data": data}])
    path = write_study(tmp_path / "s.yaml", study)
    validated, planned = call_cli(capsys, "validate", str(path)), call_cli(capsys, "plan", str(path))
    assert (validated.returncode == 0) == (planned.returncode == 0), (validated, planned)
    if validated.returncode:
        assert planned.returncode == 2 and len(planned.stderr.strip().splitlines()) == 1
        assert all(line.startswith(f"error: {path}: ") for line in validated.stderr.splitlines())
        assert "train[0].data.path" in validated.stderr


def test_unreadable_training_file_is_found_by_validate(tmp_path: Path) -> None:
    data = {"path": str(tmp_path / "absent.jsonl"), "scorer": "math"}
    study = interventional(tmp_path / "store", train=[{"name": "m", "domain": "math", "data": data}])
    refused_everywhere(tmp_path, study, "train[0].data.path: no such file")


def test_non_finite_numbers(tmp_path: Path) -> None:
    study = tiny_study(str(tmp_path / "store"), sampling={"temperature": float("inf"), "n": 2})
    refused_everywhere(tmp_path, study, "sampling.temperature: ", "(got inf)")


def test_tiny_corpus_must_be_synthetic(tmp_path: Path) -> None:
    study = tiny_study(str(tmp_path / "store"))
    study["models"]["base"]["tiny"]["corpus"] = {"gsm8k": 8}
    refused_everywhere(tmp_path, study, "models.base.tiny.corpus.gsm8k: ", "accepted: ")


def test_seed_out_of_range(tmp_path: Path) -> None:
    study = tiny_study(str(tmp_path / "store"))
    study["models"]["base"]["tiny"]["seed"] = 10**30
    refused_everywhere(tmp_path, study, "models.base.tiny.seed: ")


def test_odd_keys_stay_on_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    study = tiny_study(str(tmp_path / "store"), sampling={"n": 2, "tempe\nrature": 1, "ünï:smile:": 2})
    result = call_cli(capsys, "validate", str(write_study(tmp_path / "s.yaml", study)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines), lines
    assert any("'ünï:smile:'" in line for line in lines), lines


def test_messages_of_other_modules_stay_on_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Messages built elsewhere (here the hyperparameter check) may carry a user's key as written."""
    run = {"name": "m", "domain": "math", "hyperparameters": {"learn\nrate": 1}}
    run["data"] = {"benchmark": "smoke_arith", "examples": 8}
    path = write_study(tmp_path / "s.yaml", interventional(tmp_path / "store", train=[run]))
    result = call_cli(capsys, "validate", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: train[0].hyperparameters."), lines


def test_problems_planning_hits_are_listed_when_the_spec_is_valid(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A local benchmark folder without the benchmark's files: only building the plan finds it."""
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "empty"))
    study = tiny_study(str(tmp_path / "store"), benchmarks=["smoke", "gsm8k"])
    path = write_study(tmp_path / "s.yaml", study)
    validated, planned = call_cli(capsys, "validate", str(path)), call_cli(capsys, "plan", str(path))
    assert validated.returncode == 2 and planned.returncode == 2
    lines = error_lines(validated.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and "no local copy" in lines[0]
    assert lines[0].endswith(planned.stderr.strip().removeprefix("error: "))


def test_every_problem_planning_hits_is_listed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Planning stops at its first problem; validate goes on to list the others, plan's first first."""
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "empty"))
    study = tiny_study(str(tmp_path / "store"), benchmarks=["smoke", "gsm8k", "math500", "gsm8k"])
    path = write_study(tmp_path / "s.yaml", study)
    validated, planned = call_cli(capsys, "validate", str(path)), call_cli(capsys, "plan", str(path))
    lines = error_lines(validated.stderr)
    assert len(lines) == 2, lines
    assert "no local copy of openai/gsm8k" in lines[0] and "math500" in lines[1], lines
    assert lines[0].endswith(planned.stderr.strip().removeprefix("error: "))


def test_validate_does_not_create_the_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = tmp_path / "new" / "store"
    result = call_cli(capsys, "validate", str(write_study(tmp_path / "s.yaml", tiny_study(str(store)))))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "new").exists()


def test_validate_leaves_an_existing_store_unchanged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    (store / "studies" / "mini").mkdir(parents=True)
    (store / "studies" / "mini" / "spec.yaml").write_text("old")
    before = snapshot(store)
    result = call_cli(capsys, "validate", str(write_study(tmp_path / "s.yaml", tiny_study(str(store)))))
    assert result.returncode == 0, result.stderr
    assert snapshot(store) == before


def test_store_and_plan_problems_together(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a sound spec, the store's problem and planning's are listed at once."""
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "empty"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    study = tiny_study(str(blocker / "store"), benchmarks=["smoke", "gsm8k"])
    path = write_study(tmp_path / "s.yaml", study)
    result = call_cli(capsys, "validate", str(path))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"error: {path}: store: ") and str(blocker) in lines[0]
    assert lines[1].startswith(f"error: {path}: ") and "no local copy of openai/gsm8k" in lines[1]


@pytest.mark.parametrize("store", ["ftp://host/x", "s3://", "/tmp/nul\x00byte", "~no-such-user-rpt/x"])
def test_unusable_store_uri(capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_study(store))
    for command in ("validate", "plan"):
        result = call_cli(capsys, command, str(path))
        assert result.returncode == 2, (command, result)
        assert result.stderr.startswith(f"error: {path}: store: ") and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("store", ["name-too-long-" + "x" * 300 + "/store", "/dev/null/store"])
def test_store_that_cannot_be_made(capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str) -> None:
    """`validate` checks what `run` needs of the store; `plan` never opens it."""
    path = write_study(
        tmp_path / "s.yaml", tiny_study(store if store.startswith("/") else str(tmp_path / store))
    )
    result = call_cli(capsys, "validate", str(path))
    assert result.returncode == 2, result
    assert (
        result.stderr.startswith(f"error: {path}: store: store folder ")
        and len(result.stderr.splitlines()) == 1
    )
    assert call_cli(capsys, "plan", str(path)).returncode == 0


def test_field_problems_and_unknown_benchmarks_in_one_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    study = tiny_study(str(tmp_path / "store"), benchmarks=["smoke", "gsm9k"])
    study["sampling"] = {"temprature": 0.5}
    path = write_study(tmp_path / "s.yaml", study)
    result = call_cli(capsys, "validate", str(path))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 2, lines
    assert any("sampling.temprature: unknown field" in line for line in lines)
    assert any("benchmarks[1]: unknown benchmark 'gsm9k'" in line for line in lines)
