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
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import unquote, urlsplit

import pytest

from rpt_transfer.hashing import sha256_hex

RepoType = Literal["model", "dataset"]
_PREFIX = {"models": "model", "datasets": "dataset"}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def commit_of(repo: str, ref: str) -> str:
    """The 40-hex commit the fake gives a ref: derived from repo and ref, so tests can predict it."""
    return sha256_hex(f"{repo}@{ref}".encode())[:40]


class Request(NamedTuple):
    """One request the fake received."""

    method: str
    path: str
    """The decoded path, e.g. `/api/models/org/name/revision/main`."""
    headers: dict[str, str]


class FakeHub:
    """State of the fake: which repos exist, their refs, queued 429s, and the requests seen."""

    def __init__(self) -> None:
        self.repos: dict[tuple[RepoType, str], dict[str, str]] = {}
        self.requests: list[Request] = []
        self.limited: list[tuple[str, int]] = []
        self.files: dict[tuple[RepoType, str, str], dict[str, bytes]] = {}
        """(kind, repo, commit) -> file name -> content, served under `/{repo}/resolve/{commit}/`."""
        """Queued 429 answers: (path prefix they match, Retry-After seconds), used up in order."""
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
        path = unquote(urlsplit(raw_path).path)
        with self._lock:
            self.requests.append(Request(method, path, headers))
            for index, (prefix, seconds) in enumerate(self.limited):
                if path.startswith(prefix):
                    del self.limited[index]
                    return 429, {"Retry-After": str(seconds)}, b'{"error": "rate limited"}'
        parts = path.strip("/").split("/")
        if "resolve" in parts and parts[0] != "api":
            return self._file(parts)
        if len(parts) < 4 or parts[0] != "api" or parts[1] not in _PREFIX:
            return 404, {}, b'{"error": "not a route of the fake Hub"}'
        repo = "/".join(parts[2:4])
        ref = "/".join(parts[5:]) if len(parts) > 5 and parts[4] == "revision" else "main"
        refs = self.repos.get((_PREFIX[parts[1]], repo))
        if refs is None:
            return 404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'
        if ref not in refs:
            return 404, {"X-Error-Code": "RevisionNotFound"}, b'{"error": "Invalid rev id"}'
        body = {"_id": commit_of(repo, "_id")[:24], "id": repo, "sha": refs[ref], "private": False}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _file(self, parts: list[str]) -> tuple[int, dict[str, str], bytes]:
        """A `resolve` request: `[datasets/]org/name/resolve/<revision>/<file path>`."""
        kind: RepoType = "dataset" if parts[0] == "datasets" else "model"
        parts = parts[1:] if parts[0] == "datasets" else parts
        if len(parts) < 5 or parts[2] != "resolve":
            return 404, {}, b'{"error": "not a route of the fake Hub"}'
        repo, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        refs = self.repos.get((kind, repo))
        if refs is None:
            return 404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'
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
    threading.Thread(target=server.serve_forever, daemon=True).start()
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
