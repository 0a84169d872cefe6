"""A fake Hugging Face Hub on 127.0.0.1: answers the two calls planning makes to turn refs into commits.

`HfApi.model_info(repo, revision=ref)` asks `GET /api/models/{repo}/revision/{ref}` and
`HfApi.dataset_info(repo)` asks `GET /api/datasets/{repo}` (or `.../revision/{ref}`). The fake answers
`{"id": repo, "sha": <40 hex>}`, or 404 with the `X-Error-Code` the client maps to RepositoryNotFoundError
(`RepoNotFound`) or RevisionNotFoundError (`RevisionNotFound`); `rate_limit` queues 429 answers with a
`Retry-After`. Every request is recorded, so a test can assert what was asked and how often.

It also serves files that `add_file` puts at a commit, as `hf_hub_download` asks for them: `HEAD` then `GET
/{repo}/resolve/{revision}/{filename}` (`datasets/` before a dataset's repo). A file answers with
`X-Repo-Commit` (the client refuses a Hub without it), `ETag` (the blob's name in the cache) and
`Content-Length`; a file the commit lacks answers 404 `EntryNotFound` with `X-Repo-Commit`, which the client
remembers in its cache as "absent".

It also plays the parts of the Hub API that discovery reads (`rpt-transfer discover`, docs/discovery.md).
`add_model` puts a model with its card: the fake computes the tags the real Hub derives from the card
(`base_model:<id>`, `base_model:<relation>:<id>`, `dataset:<id>`, the card's `tags`) and its `baseModels`
(a `{"relation", "models"}` object, as `model_info(expand=["baseModels"])` returns it), and serves the card
as README.md. `GET /api/models` lists them: repeated `filter` (AND over tags), `author`, `search`, `sort`
(`createdAt`, `lastModified`, ...; always descending), `limit`, repeated `expand` (only those keys plus
`id`/`_id`; 400 for a value the list endpoint refuses, such as `baseModels`), pages of `page_size` items
joined by an absolute `Link: <http://127.0.0.1:PORT/api/models?...&cursor=N>; rel="next"` header. Model
info honours `expand` too. Timestamps end in `Z`, as the client requires. Gated models answer their files
with `GatedRepo` (401 anonymous, 403 with a token not granted); private models are absent from listings
and 401 to anyone without `token`; `require_token` makes every request need `Authorization: Bearer
<token>`, and a wrong token is always refused like the Hub does (401, "Invalid credentials in
Authorization header"). `fail` queues 5xx (or any) answers, `rate_limit_header` 429s with the `RateLimit`
headers of the Hub's rate-limit docs.

Import the fixture where it is used: ``from servers_hub import fake_hub  # noqa: F401``. The fixture points
`HF_ENDPOINT` at the fake (planning builds its Hub client at call time, so in-process tests see it), clears
`HF_HUB_OFFLINE` and any token, so nothing leaves 127.0.0.1 and no credential reaches the fake.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
import yaml

from rpt_transfer.hashing import sha256_hex

RepoType = Literal["model", "dataset"]
_PREFIX = {"models": "model", "datasets": "dataset"}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
EXPAND_KEYS = (
    "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled", "downloads",
    "downloadsAllTime", "evalResults", "gated", "gguf", "inference", "inferenceProviderMapping",
    "lastModified", "library_name", "likes", "mask_token", "model-index", "pipeline_tag", "private",
    "resourceGroup", "safetensors", "sha", "siblings", "spaces", "tags", "transformersInfo", "trendingScore",
    "usedStorage", "widgetData",
)  # fmt: skip
"""`expand` values of `model_info` (huggingface_hub 2.4.0's ExpandModelProperty_T)."""
INFO_ONLY = ("baseModels", "childrenModelCount", "usedStorage")
"""Values the list endpoint refuses with 400: only `/api/models/{id}` knows them (hf-hub.md §1.4)."""
_LIST_DEFAULT = (
    "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag", "library_name", "createdAt",
    "modelId",
)  # fmt: skip
_SORTS = ("createdAt", "lastModified", "likes", "downloads", "trendingScore")
INVALID_TOKEN = "Invalid credentials in Authorization header"


def commit_of(repo: str, ref: str) -> str:
    """The 40-hex commit the fake gives a ref: derived from repo and ref, so tests can predict it."""
    return sha256_hex(f"{repo}@{ref}".encode())[:40]


class Request(NamedTuple):
    """One request the fake received."""

    method: str
    path: str
    """The decoded path, e.g. `/api/models/org/name/revision/main`."""
    headers: dict[str, str]
    query: str = ""
    """The raw query string (`filter=...&expand=...`), empty when there was none."""

    def header(self, name: str) -> str | None:
        """A request header by name, in any letter case (the client sends them lower-case)."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


@dataclass
class _Fault:
    """Queued answers to requests under a path: `times` more (None: for ever)."""

    path: str
    exact: bool
    status: int
    headers: dict[str, str]
    times: int | None


class FakeHub:
    """State of the fake: which repos exist, their refs, queued 429s, and the requests seen."""

    def __init__(self) -> None:
        self.repos: dict[tuple[RepoType, str], dict[str, str]] = {}
        self.requests: list[Request] = []
        self.limited: list[tuple[str, int]] = []
        """Queued 429 answers: (path prefix they match, Retry-After seconds), used up in order."""
        self.files: dict[tuple[RepoType, str, str], dict[str, bytes]] = {}
        """(kind, repo, commit) -> file name -> content, served under `/{repo}/resolve/{commit}/`."""
        self.models: dict[str, dict[str, Any]] = {}
        """Model id -> its full `model_info` JSON, for the models `add_model` put (listed by `/api/models`)."""
        self.page_size = 100
        """Items per page of `/api/models`."""
        self.token: str | None = None
        """The one token the fake accepts; it sees private models and the files of `granted` gated ones."""
        self.require_token = False
        """Refuse every request without `Authorization: Bearer <token>` (401)."""
        self.granted: set[str] = set()
        """Gated models whose files `token` may download."""
        self.faults: list[_Fault] = []
        self.url = ""
        self._lock = threading.Lock()

    def add(self, kind: RepoType, repo: str, refs: dict[str, str] | None = None) -> dict[str, str]:
        """Create a repo whose `main` (and the given refs) point at commits; returns its refs."""
        refs = {"main": commit_of(repo, "main"), **(refs or {})}
        self.repos[(kind, repo)] = refs
        return refs

    def add_file(
        self, repo: str, filename: str, data: bytes | str, revision: str = "main", kind: RepoType = "model"
    ) -> str:
        """Put a file into a repo at `revision` (a ref of it, or a 40-hex commit); returns the commit.

        The repo is created (with its `main`) if it does not exist yet.
        """
        refs = self.repos.get((kind, repo)) or self.add(kind, repo)
        commit = refs.get(revision, revision)
        if not _COMMIT.match(commit):
            raise ValueError(f"{revision!r} is neither a ref of {repo} nor a 40-hex commit")
        content = data.encode() if isinstance(data, str) else data
        self.files.setdefault((kind, repo, commit), {})[filename] = content
        return commit

    def add_model(
        self,
        repo: str,
        *,
        created_at: str,
        card: dict[str, Any] | None = None,
        body: str = "",
        tags: Sequence[str] = (),
        params: int | None = 1_500_000_000,
        gated: Literal[False, "auto", "manual"] = False,
        private: bool = False,
        relation: str | None = None,
        last_modified: str | None = None,
    ) -> str:
        """Put a model with its card (served as README.md at `main`) and Hub-computed tags; returns its commit.

        As the Hub does, the card's `base_model` (a string or a list) gives `base_model:<id>` and
        `base_model:<relation>:<id>` tags and `baseModels`; the relation is the card's
        `base_model_relation`, else `relation`, else `merge` for several parents and `finetune` for one.
        `created_at` is written as given (it must end in `Z`); `params` is the safetensors total (None: no
        safetensors metadata).
        """
        card = dict(card or {})
        sha = self.add("model", repo)["main"]
        parents = card.get("base_model") or []
        parents = [parents] if isinstance(parents, str) else list(parents)
        how = card.get("base_model_relation") or relation or ("merge" if len(parents) > 1 else "finetune")
        datasets = card.get("datasets") or []
        datasets = [datasets] if isinstance(datasets, str) else list(datasets)
        computed = [*card.get("tags", []), *tags]
        computed += [card["library_name"]] if card.get("library_name") else []
        computed += [f"dataset:{d}" for d in datasets]
        computed += [
            tag for parent in parents for tag in (f"base_model:{parent}", f"base_model:{how}:{parent}")
        ]
        info: dict[str, Any] = {
            "_id": commit_of(repo, "_id")[:24],
            "id": repo,
            "private": private,
            "pipeline_tag": card.get("pipeline_tag", "text-generation"),
            "library_name": card.get("library_name", "transformers"),
            "tags": [*dict.fromkeys(computed), "region:us"],
            "downloads": 0,
            "likes": 0,
            "modelId": repo,
            "author": repo.split("/")[0],
            "sha": sha,
            "lastModified": last_modified or created_at,
            "gated": gated,
            "disabled": False,
            "cardData": card or None,
            "siblings": [{"rfilename": "README.md"}, {"rfilename": "model.safetensors"}],
            "createdAt": created_at,
        }
        if params is not None:
            info["safetensors"] = {"parameters": {"BF16": params}, "total": params}
        if parents:
            models = [{"_id": commit_of(parent, "_id")[:24], "id": parent} for parent in parents]
            info["baseModels"] = {"relation": how, "models": models}
        self.models[repo] = info
        front = f"---\n{yaml.safe_dump(card, sort_keys=False)}---\n" if card else ""
        self.add_file(repo, "README.md", front + body)
        return sha

    def fail(
        self,
        path: str,
        status: int = 503,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        exact: bool = False,
    ) -> None:
        """Answer the next `times` requests under `path` (None: all of them) with `status` and `headers`.

        `exact` matches the path alone, so `/api/models` (the listing) leaves `/api/models/{id}` alone.
        """
        self.faults.append(_Fault(path, exact, status, dict(headers or {}), times))

    def rate_limit_header(self, path: str, reset: int, times: int = 1, exact: bool = False) -> None:
        """Answer the next `times` requests under `path` with 429 and the Hub's `RateLimit` headers."""
        headers = {
            "RateLimit": f'"api";r=0;t={reset}',
            "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
        }
        self.fail(path, 429, times, headers, exact)

    def file_requests(self) -> list[Request]:
        """The requests for files (`.../resolve/...`), in order."""
        return [r for r in self.requests if "/resolve/" in r.path]

    def rate_limit(self, path_prefix: str, retry_after: int, times: int = 1) -> None:
        """Answer the next `times` requests under `path_prefix` with 429 and `Retry-After: retry_after`."""
        self.limited += [(path_prefix, retry_after)] * times

    def resolutions(self) -> Counter[str]:
        """How often each `/api/...` path was asked, 429s included."""
        return Counter(r.path for r in self.requests if r.path.startswith("/api/"))

    def answer(
        self, method: str, raw_path: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one request."""
        split = urlsplit(raw_path)
        path = unquote(split.path)
        with self._lock:
            self.requests.append(Request(method, path, headers, split.query))
            for index, (prefix, seconds) in enumerate(self.limited):
                if path.startswith(prefix):
                    del self.limited[index]
                    return 429, {"Retry-After": str(seconds)}, b'{"error": "rate limited"}'
            fault = self._fault(path)
        if fault is not None:
            return fault.status, fault.headers, json.dumps({"error": f"injected {fault.status}"}).encode()
        authorized = self._authorized(headers)
        if authorized is not None:
            return authorized
        query = parse_qs(split.query, keep_blank_values=True)
        parts = path.strip("/").split("/")
        if "resolve" in parts and parts[0] != "api":
            return self._file(parts, headers)
        if parts == ["api", "models"]:
            return self._listing(query, path, headers)
        if len(parts) < 4 or parts[0] != "api" or parts[1] not in _PREFIX:
            return 404, {}, b'{"error": "not a route of the fake Hub"}'
        repo = "/".join(parts[2:4])
        ref = "/".join(parts[5:]) if len(parts) > 5 and parts[4] == "revision" else "main"
        refs = self.repos.get((_PREFIX[parts[1]], repo))
        if refs is None or self._hidden(repo, headers):
            status = 401 if refs is not None else 404
            return status, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'
        if ref not in refs:
            return 404, {"X-Error-Code": "RevisionNotFound"}, b'{"error": "Invalid rev id"}'
        info = self.models.get(repo) if parts[1] == "models" else None
        if info is None:
            body = {"_id": commit_of(repo, "_id")[:24], "id": repo, "sha": refs[ref], "private": False}
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        expand = query.get("expand", []) + query.get("expand[]", [])
        unknown = [key for key in expand if key not in EXPAND_KEYS]
        if unknown:
            return 400, {}, json.dumps({"error": f"invalid expand value {unknown[0]!r}"}).encode()
        info = {**info, "sha": refs[ref]}
        if expand:
            body = {"_id": info["_id"], "id": repo, **{key: info[key] for key in expand if key in info}}
        else:
            body = {key: value for key, value in info.items() if key != "baseModels"}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _fault(self, path: str) -> _Fault | None:
        """The first queued fault matching `path`, used up once (under the lock)."""
        for fault in self.faults:
            if path == fault.path or (not fault.exact and path.startswith(fault.path)):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                return fault
        return None

    def _token_of(self, headers: dict[str, str]) -> str | None:
        auth = Request("", "", headers).header("Authorization") or ""
        return auth.removeprefix("Bearer ").strip() or None

    def _authorized(self, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
        """A 401 for a wrong token (always) or a missing one (with `require_token`); None when fine."""
        token = self._token_of(headers)
        if token is not None and token != self.token:
            return 401, {"X-Error-Message": INVALID_TOKEN}, json.dumps({"error": INVALID_TOKEN}).encode()
        if self.require_token and token is None:
            return 401, {}, b'{"error": "Unauthorized: a token is required"}'
        return None

    def _hidden(self, repo: str, headers: dict[str, str]) -> bool:
        """A private model asked for without the token."""
        info = self.models.get(repo)
        token = self._token_of(headers)
        return bool(info and info["private"]) and (token is None or token != self.token)

    def _listing(
        self, query: dict[str, list[str]], path: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """`GET /api/models`: filtered, sorted (descending), expanded and cut into linked pages."""
        expand = query.get("expand", []) + query.get("expand[]", [])
        refused = [key for key in expand if key not in EXPAND_KEYS or key in INFO_ONLY]
        sort = (query.get("sort") or ["createdAt"])[0]
        if refused or sort not in _SORTS:
            problem = f"invalid expand value {refused[0]!r}" if refused else f"invalid sort {sort!r}"
            return 400, {}, json.dumps({"error": problem}).encode()
        models = [
            info
            for repo, info in self.models.items()
            if not self._hidden(repo, headers)
            and all(wanted in info["tags"] for wanted in query.get("filter", []))
            and all(info["author"] == author for author in query.get("author", []))
            and all(text in repo for text in query.get("search", []))
        ]
        models.sort(key=lambda info: info.get(sort) or 0, reverse=True)
        limit = int((query.get("limit") or ["0"])[0]) or self.page_size
        start = int((query.get("cursor") or ["0"])[0])
        size = min(limit, self.page_size)
        page = models[start : start + size]
        keys = expand or _LIST_DEFAULT
        items = [
            {"_id": info["_id"], "id": info["id"], **{k: info[k] for k in keys if k in info}} for info in page
        ]
        answer = {"Content-Type": "application/json"}
        if start + size < len(models):
            rest = urlencode([(k, v) for k, values in query.items() if k != "cursor" for v in values])
            answer["Link"] = f'<{self.url}{path}?{rest}&cursor={start + size}>; rel="next"'
        return 200, answer, json.dumps(items).encode()

    def _file(self, parts: list[str], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """A `resolve` request: `[datasets/]org/name/resolve/<revision>/<file path>`."""
        kind: RepoType = "dataset" if parts[0] == "datasets" else "model"
        parts = parts[1:] if parts[0] == "datasets" else parts
        if len(parts) < 5 or parts[2] != "resolve":
            return 404, {}, b'{"error": "not a route of the fake Hub"}'
        repo, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        refs = self.repos.get((kind, repo))
        if refs is None or (kind == "model" and self._hidden(repo, headers)):
            return 404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'
        info = self.models.get(repo) if kind == "model" else None
        token = self._token_of(headers)
        if info and info["gated"] and not (token == self.token and repo in self.granted):
            status = 401 if token is None else 403
            return status, {"X-Error-Code": "GatedRepo"}, b'{"error": "Access to this model is restricted"}'
        commit = refs.get(revision, revision)
        files = self.files.get((kind, repo, commit))
        if files is None and commit not in refs.values():
            return 404, {"X-Error-Code": "RevisionNotFound"}, b'{"error": "Invalid rev id"}'
        if filename not in (files or {}):
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}
            return 404, headers, b'{"error": "Entry not found"}'
        content = (files or {})[filename]
        etag = f'"{hashlib.sha256(content).hexdigest()}"'
        return (
            200,
            {"X-Repo-Commit": commit, "ETag": etag, "Content-Type": "application/octet-stream"},
            content,
        )


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply("GET")

        def do_HEAD(self) -> None:
            self._reply("HEAD")

        def _reply(self, method: str) -> None:
            """The answer with its body's length; a HEAD gets the same headers and no body."""
            status, headers, body = hub.answer(method, self.path, dict(self.headers))
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def start_fake_hub() -> tuple[FakeHub, ThreadingHTTPServer]:
    """Serve a new FakeHub on a free port of 127.0.0.1 from a daemon thread."""
    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return hub, server


def hub_env(url: str, home: Path) -> dict[str, str]:
    """Environment that sends Hub calls to `url`, with no stored token and no telemetry."""
    return {
        "HF_ENDPOINT": url,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    }


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running fake Hub with `HF_ENDPOINT` pointing at it for this test (and its subprocesses)."""
    hub, server = start_fake_hub()
    for name, value in hub_env(hub.url, tmp_path / "hf-home").items():
        monkeypatch.setenv(name, value)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read at import time: a suite may set it
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
