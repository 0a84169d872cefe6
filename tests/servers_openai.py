"""A real OpenAI-compatible server for tests (`transformers serve` on loopback), and a fault-injecting proxy.

`transformers serve` (transformers' `serving` extra) loads a local checkpoint on CPU and answers
`/v1/models`, `/v1/completions` and `/v1/chat/completions`. The proxy sits between a client and it and,
per a bounded script of `Fault`s, answers with an error status, delays, or drops the connection, so
tests can watch retries and error rows against real answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import pytest

from servers_mlflow import free_port

STARTUP_TIMEOUT_S = 120.0


def train_tiny_chat_model(out: Path) -> Path:
    """A briefly trained tiny model with a chat template: peaked enough that greedy decoding has no near-ties.

    Its generation config is set to sample: `transformers serve` (5.x) samples only when the model's
    generation config says `do_sample`, whatever the request's temperature (0 still means greedy).
    """
    from tiny_generation import train_arith_model

    train_arith_model(out)
    config = out / "generation_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "do_sample": True}))
    return out


@contextlib.contextmanager
def transformers_serve(model_dir: Path, log: Path) -> Iterator[str]:
    """Run `transformers serve` pinned to `model_dir` on a free port of 127.0.0.1; yield its `/v1` URL.

    The model is named by its path: that is the id `/v1/models` lists and requests must send.
    """
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "transformers"), "serve", str(model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "warning",
    ]  # fmt: skip
    # Offline: the server must not reach the Hub for a local folder; one thread suits a tiny model on a busy box.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, str(model_dir), process, log)
        yield f"{url}/v1"
    finally:
        _stop(process)


def _wait_ready(url: str, model: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until `/v1/models` lists `model` (the pinned model is loaded before the port opens)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response,
        ):
            if model in {entry["id"] for entry in json.load(response)["data"]}:
                return
        if process.poll() is not None:
            pytest.fail(f"transformers serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"transformers serve not ready after {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.3)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server's process group, then kill what is left of it."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait_s)
            return


@dataclass
class Fault:
    """What the proxy does instead of (or before) forwarding, to at most `times` matching requests."""

    kind: Literal["status", "slow", "drop"]
    """`status`: answer `status` with `message`; `slow`: wait `delay_s`, then forward; `drop`: close the
    connection without an answer."""
    times: int = 1
    status: int = 500
    message: str = "injected fault"
    retry_after: str | None = None
    """`Retry-After` header sent with a `status` answer."""
    delay_s: float = 0.0
    method: str = "POST"
    """Only requests with this method: POST (generation) by default, GET for `/models`."""
    path: str = ""
    """Only requests whose path ends with this (e.g. `/models`)."""
    when: str = ""
    """Only requests whose body contains this text (e.g. one prompt)."""
    echo_auth: bool = False
    """Put the request's Authorization header into the error message (a careless server)."""

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return (
            self.times > 0
            and method == self.method
            and path.endswith(self.path)
            and self.when.encode() in body
        )


@dataclass
class Hit:
    """One request the proxy saw, and what it did with it."""

    method: str
    path: str
    body: bytes
    authorization: str | None
    fault: str | None

    def json(self) -> dict:
        return json.loads(self.body) if self.body else {}


@dataclass
class FaultProxy:
    """Forward HTTP requests to `upstream`, injecting the scripted faults; records every request."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    max_in_flight: int = 0
    url: str = ""
    api_key: str | None = None
    """When set, a request without `Authorization: Bearer <api_key>` is answered 401, as `vllm serve
    --api-key` does."""
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, *faults: Fault) -> None:
        """Wait for requests still in flight (e.g. a slow fault whose client gave up), forget what was
        seen, and script these faults, in order of precedence."""
        deadline = time.monotonic() + 30
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            self.faults, self.hits, self.max_in_flight, self.api_key = list(faults), [], 0, None

    def require_key(self, key: str) -> None:
        """Answer 401 to requests that do not carry this key, until the next `reset`."""
        self.api_key = key

    def posts(self, text: str = "") -> list[Hit]:
        """The POST requests seen whose body contains `text`."""
        return [hit for hit in self.hits if hit.method == "POST" and text.encode() in hit.body]

    def _arrive(self, method: str, path: str, body: bytes, authorization: str | None) -> Fault | None:
        """Record a request as it arrives and pick its fault, if any."""
        with self._lock:
            fault = next((f for f in self.faults if f.matches(method, path, body)), None)
            if fault is not None:
                fault.times -= 1
            self.hits.append(Hit(method, path, body, authorization, fault.kind if fault else None))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return fault

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


@contextlib.contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """Run a `FaultProxy` to `upstream` (a `/v1` URL) on a free port of 127.0.0.1; its `url` is its `/v1`."""
    proxy = FaultProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True  # a slow fault may still sleep when the test ends
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}{urlsplit(upstream).path}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            auth = self.headers.get("Authorization")
            fault = proxy._arrive(self.command, self.path, body, auth)
            self.in_flight = True
            try:
                if proxy.api_key is not None and auth != f"Bearer {proxy.api_key}":
                    self._answer(401, json.dumps({"error": {"message": "Unauthorized"}}).encode(), {})
                elif fault is not None and fault.kind == "drop":
                    self.close_connection = True  # no status line, no headers: the client sees a disconnect
                elif fault is not None and fault.kind == "status":
                    message = f"{fault.message} (you sent {auth})" if fault.echo_auth else fault.message
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    self._answer(fault.status, json.dumps({"error": {"message": message}}).encode(), headers)
                else:
                    if fault is not None:
                        time.sleep(fault.delay_s)
                    self._forward(body)
            except OSError:  # the client gave up first (its timeout)
                pass
            finally:
                self._leave()

        def _leave(self) -> None:
            """Count this request out before the client can see its answer (and send its next request)."""
            if self.in_flight:
                self.in_flight = False
                proxy._leave()

        def _forward(self, body: bytes) -> None:
            connection = HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")
                }
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                self._answer(response.status, response.read(), {})
            finally:
                connection.close()

        def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            self._leave()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def closed_port_url() -> str:
    """A `/v1` URL on a port that was bound and released: nothing answers there."""
    return f"http://127.0.0.1:{free_port()}/v1"
