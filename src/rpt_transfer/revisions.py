"""Hub branches and tags become commits at plan time, so job ids and provenance never name a moving ref.

A model's `revision: main` (or any tag or branch) and a benchmark dataset with no pinned revision are asked
of the Hub once per plan (`model_info` / `dataset_info`); the commit enters the job ids and the job downloads
exactly that commit, while the name the user wrote stays in the job context for people. Without the Hub
(no network, HF_HUB_OFFLINE=1) planning a moving reference fails in one line naming it and how to pin it.

The Hub client is built at call time from the environment (HF_ENDPOINT, HF_HUB_OFFLINE), so a mirror serves
air-gapped sites and a fake Hub on loopback serves tests; huggingface_hub itself reads them at import.
"""

import dataclasses
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from rpt_transfer.benchmarks.base import BenchmarkSpec
from rpt_transfer.benchmarks.sources import DATA_ENV, UNPINNED, DatasetSource, data_root, pins_of
from rpt_transfer.errors import JobError, RptError

RepoKind = Literal["model", "dataset"]
COMMIT = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT_S = 10.0
"""Per request: planning should fail fast where the Hub is unreachable."""
MAX_WAIT_S = 5.0
"""Longest Retry-After honoured before the one retry; a longer rate limit fails at once."""
_RETRIED = (429, 500, 502, 503, 504)
_TRUE = {"1", "ON", "YES", "TRUE"}


class HubUnavailable(RptError):
    """The Hub cannot be asked at all (offline mode, no network); every moving reference is stuck."""


def is_commit(ref: str | None) -> bool:
    """Whether a revision is a full commit sha (40 lower-case hex), i.e. needs no resolving."""
    return bool(ref and COMMIT.match(ref))


def hub_endpoint() -> str:
    """The Hub to ask: HF_ENDPOINT now (a mirror, a test's fake), else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as huggingface_hub reads it, but read now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in _TRUE


class Resolver:
    """Commits of Hub refs for one plan: each distinct (kind, repo, ref) is asked once.

    After the first sign that the Hub cannot be reached, later refs fail at once with the same reason, so a
    study with many moving refs does not wait out a timeout per model.
    """

    def __init__(self) -> None:
        self._commits: dict[tuple[RepoKind, str, str | None], str] = {}
        self._down: str | None = None

    def commit(self, kind: RepoKind, repo: str, ref: str | None, *, who: str, pin: str) -> str:
        """The commit `ref` points at now (None: the default branch); a commit is returned as it is.

        `who` starts any error line (the spec field or benchmark), `pin` ends it (how to avoid asking).
        """
        if is_commit(ref):
            assert ref is not None
            return ref
        key = (kind, repo, ref)
        if key not in self._commits:
            self._commits[key] = self._ask(kind, repo, ref, who, pin)
        return self._commits[key]

    def _ask(self, kind: RepoKind, repo: str, ref: str | None, who: str, pin: str) -> str:
        if ref:
            moving = f"revision {ref!r} of {repo} is a branch or tag"
        else:
            moving = f"{kind} {repo} has no pinned revision"
        head = f"{who}: {moving}"
        if hub_offline():
            raise HubUnavailable(f"{head} and HF_HUB_OFFLINE is set, so no commit can be found for it; {pin}")
        if self._down is not None:
            raise HubUnavailable(f"{head} and {self._down}; {pin}")
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

        endpoint = hub_endpoint()
        api = HfApi(endpoint=endpoint)
        info = api.model_info if kind == "model" else api.dataset_info
        for attempt in (1, 2):
            try:
                sha = info(repo, revision=ref, timeout=TIMEOUT_S).sha
            except RevisionNotFoundError:
                raise RptError(
                    f"{who}: {repo} has no branch or tag {ref!r} on the Hub at {endpoint}; "
                    f"accepted: a branch, a tag or a 40-hex commit"
                ) from None
            except RepositoryNotFoundError:
                raise RptError(
                    f"{who}: {repo} is not a {kind} on the Hub at {endpoint} "
                    f"(or it is private: set HF_TOKEN); {pin}"
                ) from None
            except HfHubHTTPError as err:
                status, wait = http_status(err), retry_wait(err, attempt)
                if attempt == 1 and status in _RETRIED and wait <= MAX_WAIT_S:
                    time.sleep(wait)
                    continue
                if status == 429:
                    raise RptError(
                        f"{head} and the Hub at {endpoint} rate-limited resolving it (429, retry after "
                        f"{wait:g} s); set HF_TOKEN for a larger quota, try again later, or {pin}"
                    ) from None
                raise RptError(f"{head} and the Hub at {endpoint} answered {status} for it; {pin}") from None
            except transport_errors() as err:
                self._down = f"the Hub at {endpoint} cannot be reached to resolve it ({short_error(err)})"
                raise HubUnavailable(f"{head} and {self._down}; {pin}") from None
            if not is_commit(sha):
                raise RptError(f"{head} and the Hub at {endpoint} gave no commit for it (sha {sha!r}); {pin}")
            return str(sha)
        raise AssertionError("unreachable: the second attempt returns or raises")


def http_status(err: BaseException) -> int:
    """HTTP status of a Hub client error; 0 when there was no response."""
    response = getattr(err, "response", None)
    return int(getattr(response, "status_code", 0) or 0)


def retry_wait(err: BaseException, attempt: int) -> float:
    """Seconds to wait before the next try: Retry-After, else RateLimit's `t` when `r=0`, else 1, 2, 4, ...

    One rule for every Hub call we retry ourselves (huggingface_hub retries listings, not `model_info`).
    """
    from huggingface_hub.utils import parse_ratelimit_headers

    headers: Mapping[str, str] = getattr(getattr(err, "response", None), "headers", None) or {}
    retry_after = str(headers.get("Retry-After") or "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    limit = parse_ratelimit_headers(headers)
    if limit is not None and limit.remaining == 0:
        return float(limit.reset_in_seconds)
    return float(min(2 ** (attempt - 1), 30))


def transport_errors() -> tuple[type[BaseException], ...]:
    """Connection and timeout errors of the HTTP library the installed huggingface_hub uses."""
    errors: list[type[BaseException]] = [OSError]  # requests' errors, socket errors, OfflineModeIsEnabled
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def short_error(err: BaseException) -> str:
    """The error's type and first 160 characters on one line, for one-line messages."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:160]}" if text else type(err).__name__


def pinned_benchmark(bench: BenchmarkSpec, commits: Mapping[str, str]) -> BenchmarkSpec:
    """The benchmark with its unpinned Hub datasets fixed at `commits` (hub id to commit)."""
    assert isinstance(bench.source, DatasetSource)
    return dataclasses.replace(bench, source=bench.source.with_pins(commits))


def benchmark_as_planned(bench: BenchmarkSpec, identity: Mapping[str, Any]) -> BenchmarkSpec:
    """In a job: the registry's benchmark at the commits its plan resolved, asking the Hub nothing."""
    source, data = bench.source, str(identity.get("data", ""))
    if not isinstance(source, DatasetSource) or source.revision != UNPINNED or data_root() is not None:
        return bench
    if not data.startswith("hf:"):
        raise JobError(
            f"benchmark {bench.name}: the plan was made from local copies ({data}); set {DATA_ENV} to a "
            f"folder with the same files for this job, or re-plan the study without it"
        )
    commits = pins_of(data)
    if not all(is_commit(sha) for sha in commits.values()):
        raise JobError(
            f"benchmark {bench.name}: the plan names {data}, not commits; re-plan the study with this "
            f"rpt-transfer, which resolves them"
        )
    return pinned_benchmark(bench, commits)


PIN_MODEL = "pin it in the spec: `revision: <40-hex commit>`"


def resolve_model(resolver: Resolver, name: str, repo: str, revision: str, moving: Sequence[str]) -> str:
    """The commit of a Hub model's revision; stuck offline, the line also names the other moving models."""
    try:
        return resolver.commit("model", repo, revision, who=f"models.{name}", pin=PIN_MODEL)
    except HubUnavailable as err:
        others = [f"models.{other}" for other in moving if other != name]
        if not others:
            raise
        raise HubUnavailable(f"{err} (a branch or tag is also named by {', '.join(others)})") from None


def resolve_benchmark(resolver: Resolver, bench: BenchmarkSpec) -> BenchmarkSpec:
    """The benchmark with its unpinned Hub datasets at their current commits; any other as it is."""
    source = bench.source
    if (
        not isinstance(source, DatasetSource)
        or source.revision != UNPINNED
        or data_root() is not None
        or not source.hub_datasets()
    ):
        return bench
    pin = (
        f"set {DATA_ENV} to a folder with local copies (their sha256 is then the identity), or leave "
        f"{bench.name} out of the study's benchmarks"
    )
    commits = {
        repo: resolver.commit("dataset", repo, None, who=f"benchmark {bench.name}", pin=pin)
        for repo in source.hub_datasets()
    }
    return pinned_benchmark(bench, commits)
