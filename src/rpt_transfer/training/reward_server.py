"""The reward service: the project's scorers behind HTTP, for OpenRLHF's `--reward.remote_url`.

Model-written code never runs next to GPUs or credentials (docs/ARCHITECTURE.md), so a trainer whose
rewards run programs sends its rollouts here: a CPU pod without credentials whose sandbox reaches the
configured minimum isolation. `rpt-transfer reward-server` runs it; docs/reward-service.md is the manual.

- `POST /get_reward`: OpenRLHF's request `{"query": [...], "prompts": [...], "labels": [...]}`, answered
  by `reward_service.reward_response` (`{"rewards", "scores", "extra_logs"}`, one entry per sample).
  400: not JSON, or not three lists of one length; 413: a body over `max_body_bytes`; 503: the scoring
  process died under the request (the pool is rebuilt; OpenRLHF retries).
- `GET /health`: `{"status": "ok", "isolation": level, ...}`; `GET /metrics`: counters (requests,
  samples, failures by reason, scoring worker pids).

Scoring runs in a pool of worker processes (started with `spawn`, never forked from this threaded
server). A stuck sample holds one worker, a killed worker fails only the requests it was scoring, and
math-verify's judges and the sandbox's launchers are each worker's own child processes. The service
refuses to start, in one line, when its environment holds credentials (`CREDENTIAL_VARIABLES`), when the
sandbox cannot reach the minimum isolation (`RPT_SANDBOX_MIN`, or `sandbox_min`, as for score jobs), or
when the port is taken. It logs one line per reward request (and one per failed sample, from
`reward_service`), and stops on SIGTERM or SIGINT after the requests in flight are answered.
"""

import errno
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from rpt_transfer.errors import RptError
from rpt_transfer.settings import SANDBOX_MIN_ENV, sandbox_minimum
from rpt_transfer.training.reward_service import failure_counts, outcomes, request_problem, response_of
from rpt_transfer.training.rewards import MAX_FAILURE_RATE, MIN_SAMPLES_BEFORE_STOP, too_many_failures

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_BODY_BYTES = 16 << 20
REWARD_PATH = "/get_reward"
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "ARGO_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "WANDB_API_KEY",
    "GITHUB_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_CLIENT_SECRET",
)
"""Environment variables (set and non-empty) that hold or point to credentials: the service refuses them."""
SHUTDOWN_GRACE = 60.0
"""Seconds a stopping server waits for the requests in flight to be answered."""
READ_TIMEOUT = 60.0
"""Seconds a connection may take to send its request line, headers and body."""
DRAIN_SECONDS, DRAIN_BYTES = 2.0, 64 << 20
"""After a 413, how long and how much of the refused body is read and dropped, so the client gets the
answer instead of a connection reset."""
PREFIX = "reward-server:"


def say(line: str) -> None:
    """One line on stderr."""
    print(f"{PREFIX} {line}", file=sys.stderr, flush=True)


# --- refusals ----------------------------------------------------------------------------------------


def credentials_in(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The credential variables set (non-empty) in `environ`."""
    return [name for name in CREDENTIAL_VARIABLES if environ.get(name, "").strip()]


def check_environment() -> None:
    """Refuse, in one line, an environment that holds credentials: the service runs model-written code."""
    found = credentials_in(os.environ)
    if found:
        raise RptError(
            f"reward server: refusing to start with credentials in its environment ({', '.join(found)}):"
            " it runs model-written code, so give its pod no secrets (unset them, or run it in its own pod)"
        )


def check_sandbox(sandbox_min: str | None) -> tuple[str, str]:
    """The isolation level model-written code will run under here, and the minimum it was held to.

    `sandbox_min` (else RPT_SANDBOX_MIN, else the default) is set in this process's environment, so the
    scoring workers hold their sandboxes to the same minimum. One-line RptError below it.
    """
    from rpt_transfer.scoring import sandbox  # the launcher starts here, once
    from rpt_transfer.scoring.sandbox.levels import parse_minimum

    if sandbox_min is not None:
        try:
            parse_minimum(sandbox_min, "--sandbox-min")
        except ValueError as err:
            raise RptError(f"reward server: {err}") from None
        os.environ[SANDBOX_MIN_ENV] = sandbox_min
    try:
        level = sandbox.isolation()
    except sandbox.SandboxError as err:
        raise RptError(f"reward server: model-written code cannot run here: {err}") from None
    value, source = sandbox_minimum()
    return level, f"{value} ({source})" if value else f"{sandbox.DEFAULT_MINIMUM} (the default)"


# --- scoring workers ---------------------------------------------------------------------------------


class WorkerLost(Exception):
    """The scoring process of a request died (killed, out of memory); the pool has been rebuilt."""


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C at a terminal: the server stops them itself


def score_in_worker(queries: list, prompts: list, labels: list) -> tuple[dict[str, Any], dict[str, int]]:
    """What a scoring process does for one request: the answer and its failures by reason."""
    scored = outcomes(queries, prompts, labels)
    return response_of(scored), failure_counts(scored)


def _worker_pid() -> int:
    return os.getpid()


class Scoring:
    """A process pool that is rebuilt when one of its workers dies."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.restarts = 0
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")  # a fork of this threaded server could deadlock
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker)

    def start(self) -> list[int]:
        """Start every worker now (a broken install fails here, not on the first request); their pids."""
        for future in [self._pool.submit(_worker_pid) for _ in range(self.workers)]:
            future.result()
        return self.pids()

    def score(self, queries: list, prompts: list, labels: list) -> tuple[dict[str, Any], dict[str, int]]:
        """Score one request in a worker; WorkerLost when that worker died while scoring it."""
        pool = self._pool
        try:
            future = pool.submit(score_in_worker, queries, prompts, labels)
        except BrokenProcessPool:  # broke before this request reached it: it may go to the new pool
            self._rebuild(pool)
            pool = self._pool
            try:
                future = pool.submit(score_in_worker, queries, prompts, labels)
            except BrokenProcessPool:
                raise WorkerLost("the scoring pool broke again at once") from None
        try:
            return future.result()
        except BrokenProcessPool as err:
            self._rebuild(pool)
            raise WorkerLost(f"a scoring process died while scoring this request ({err})") from None

    def _rebuild(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not broken:
                return  # another request rebuilt it already
            self._pool = self._new_pool()
            self.restarts += 1
        broken.shutdown(wait=False, cancel_futures=True)
        say(f"a scoring process died; the pool was restarted ({self.restarts} so far)")

    @staticmethod
    def pids() -> list[int]:
        """Pids of the live scoring processes (this server's only multiprocessing children)."""
        return sorted(child.pid for child in multiprocessing.active_children() if child.pid is not None)

    def close(self, force: bool = False) -> None:
        """Stop the workers; `force`: kill them first (requests still in flight are given up)."""
        if force:
            for child in multiprocessing.active_children():
                child.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)


# --- counters ----------------------------------------------------------------------------------------


class Counters:
    """What /metrics reports; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.requests = 0
        self.responses: Counter[str] = Counter()
        self.samples = 0
        self.failures: Counter[str] = Counter()
        self.in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._warned = False

    def begin(self) -> None:
        """A reward request came in."""
        with self._lock:
            self.requests += 1
            self.in_flight += 1

    def end(self, status: int, samples: int = 0, failures: dict[str, int] | None = None) -> None:
        """A reward request was answered; warn once when failures pass the bound (`too_many_failures`)."""
        with self._lock:
            self.in_flight -= 1
            self.responses[str(status)] += 1
            self.samples += samples
            self.failures.update(failures or {})
            failed = sum(self.failures.values())
            warn = not self._warned and too_many_failures(failed, self.samples)
            self._warned = self._warned or warn
            self._idle.notify_all()
        if warn:
            say(
                f"warning: rewards unknown for {failed} of {self.samples} samples (more than"
                f" {MAX_FAILURE_RATE:.0%}): a broken reward trains a broken model; see /metrics"
            )

    def wait_idle(self, seconds: float) -> bool:
        """Wait until no request is in flight (at most `seconds`); whether that happened."""
        with self._lock:
            return self._idle.wait_for(lambda: self.in_flight == 0, timeout=seconds)

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON."""
        with self._lock:
            failed = sum(self.failures.values())
            return {
                "requests": self.requests,
                "responses": dict(self.responses),
                "in_flight": self.in_flight,
                "samples": self.samples,
                "failures": failed,
                "failures_by_reason": dict(self.failures),
                "failure_rate": failed / self.samples if self.samples else 0.0,
                "too_many_failures": too_many_failures(failed, self.samples),
                "max_failure_rate": MAX_FAILURE_RATE,
                "min_samples_before_judging": MIN_SAMPLES_BEFORE_STOP,
                "uptime_s": round(time.monotonic() - self.started, 3),
            }


# --- HTTP --------------------------------------------------------------------------------------------


class RewardServer(ThreadingHTTPServer):
    """The HTTP server: one thread per connection, scoring in `Scoring`'s processes."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], scoring: Scoring, isolation: str, minimum: str, max_body_bytes: int
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, RewardHandler)
        self.scoring = scoring
        self.isolation = isolation
        self.minimum = minimum
        self.max_body_bytes = max_body_bytes
        self.counters = Counters()

    def health(self) -> dict[str, Any]:
        """The answer of GET /health."""
        return {
            "status": "ok",
            "isolation": self.isolation,
            "minimum": self.minimum,
            "workers": self.scoring.workers,
        }

    def metrics(self) -> dict[str, Any]:
        """The answer of GET /metrics."""
        return {
            **self.counters.snapshot(),
            "pool_restarts": self.scoring.restarts,
            "workers": self.scoring.workers,
            "worker_pids": self.scoring.pids(),
            "isolation": self.isolation,
        }


class HttpProblem(Exception):
    """A request answered with an error status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RewardHandler(BaseHTTPRequestHandler):
    """The three endpoints (module docstring)."""

    server: RewardServer
    server_version = "rpt-transfer-reward-server"
    timeout = READ_TIMEOUT

    def do_GET(self) -> None:
        """GET /health and GET /metrics."""
        path = urlsplit(self.path).path
        if path == "/health":
            self._send(200, self.server.health())
        elif path == "/metrics":
            self._send(200, self.server.metrics())
        else:
            self._send(404, {"error": f"no such endpoint {path!r}; GET /health, GET /metrics"})
            say(f"GET {path[:100]} 404")

    def do_POST(self) -> None:
        """POST /get_reward: score in a worker, answer, count, and say one line."""
        path = urlsplit(self.path).path
        if path != REWARD_PATH:
            self._send(404, {"error": f"no such endpoint {path!r}; POST {REWARD_PATH}"})
            say(f"POST {path[:100]} 404")
            return
        counters = self.server.counters
        counters.begin()
        started, status, samples, failures = time.monotonic(), 500, 0, None
        try:
            queries, prompts, labels = self._reward_request()
            samples = len(queries)
            body, failures = self.server.scoring.score(queries, prompts, labels)
            status = 200
            self._send(200, body)
            note = f"{samples} sample(s), {sum(failures.values())} failure(s)"
        except HttpProblem as problem:
            status, note = problem.status, str(problem)
            self._send(status, {"error": note})
            if status == 413:
                self._drain()
        except WorkerLost as lost:
            status, note = 503, str(lost)
            self._send(503, {"error": f"{lost}; try again"}, retry_after=True)
        except Exception as err:  # a bug: answer, count and say it, and keep serving
            note = f"{type(err).__name__}: {err}"
            self._send(500, {"error": f"internal error: {note}"})
        finally:
            counters.end(status, samples if status == 200 else 0, failures if status == 200 else None)
        say(f"POST {REWARD_PATH} {status} in {time.monotonic() - started:.2f} s: {note[:300]}")

    def _reward_request(self) -> tuple[list, list, list]:
        """The three lists of a reward request; HttpProblem for anything else."""
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise HttpProblem(411, "a Content-Length header is required")
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            raise HttpProblem(400, f"Content-Length {length_header[:40]!r} is not a byte count") from None
        if length > self.server.max_body_bytes:
            raise HttpProblem(413, f"body of {length} bytes; at most {self.server.max_body_bytes} accepted")
        raw = self.rfile.read(length)
        if len(raw) != length:
            raise HttpProblem(400, f"body ended after {len(raw)} of {length} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as err:  # not JSON, not UTF-8, or nested too deep
            raise HttpProblem(400, f"body is not JSON: {' '.join(str(err).split())[:200]}") from None
        if not isinstance(body, dict):
            raise HttpProblem(
                400, f"body must be a JSON object with query, prompts and labels; got {_kind(body)}"
            )
        queries, prompts, labels = body.get("query"), body.get("prompts"), body.get("labels")
        problem = request_problem(queries, prompts, labels)
        if problem is not None:
            raise HttpProblem(400, problem)
        return list(queries), list(prompts), list(labels)

    def _send(self, status: int, body: dict[str, Any], retry_after: bool = False) -> None:
        data = json.dumps(body, allow_nan=False).encode() + b"\n"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if retry_after:
                self.send_header("Retry-After", "1")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client went away (OpenRLHF gave up after its timeout): nothing to answer
            pass
        self.close_connection = True

    def _drain(self) -> None:
        """Read and drop what a client still sends of a refused body, briefly, so it reads the 413."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline, dropped = time.monotonic() + DRAIN_SECONDS, 0
            while dropped < DRAIN_BYTES and (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                chunk = self.connection.recv(1 << 16)
                if not chunk:
                    break
                dropped += len(chunk)
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log: do_POST says one line per reward request."""

    def log_error(self, format: str, *args: Any) -> None:
        """The base class's errors (a bad request line, a read timeout): one line."""
        say(f"{self.command or '-'} {self.path[:100] if hasattr(self, 'path') else '-'}: {format % args}")


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(
        type(value), "a value"
    )


# --- serve -------------------------------------------------------------------------------------------


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    workers: int | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    sandbox_min: str | None = None,
) -> None:
    """Run the reward service until SIGTERM or SIGINT; RptError (one line) when it must not start."""
    from rpt_transfer.cpus import available_cpus

    check_environment()
    count = workers or available_cpus()
    level, minimum = check_sandbox(sandbox_min)
    scoring = Scoring(count)
    try:
        server = _listen(host, port, scoring, level, minimum, max_body_bytes)
    except RptError:
        scoring.close()
        raise
    stop = threading.Event()

    def on_signal(number: int, _frame: object) -> None:
        if not stop.is_set():
            stop.set()
            say(f"{signal.Signals(number).name}: stopping after the requests in flight")
            threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)}
    idle = True
    try:
        try:
            pids = scoring.start()
        except BrokenProcessPool as err:
            raise RptError(f"reward server: the scoring processes cannot start ({err})") from None
        bound_host, bound_port = server.server_address[:2]
        say(
            f"listening on http://{_url_host(bound_host)}:{bound_port} (POST {REWARD_PATH}, GET /health,"
            f" GET /metrics); sandbox isolation {level}, minimum {minimum}; {count} scoring processes"
            f" (pids {', '.join(map(str, pids))})"
        )
        server.serve_forever(poll_interval=0.2)
        idle = server.counters.wait_idle(SHUTDOWN_GRACE)
        if not idle:
            say(f"{server.counters.in_flight} request(s) in flight after {SHUTDOWN_GRACE:.0f} s; stopping")
    finally:
        server.server_close()
        scoring.close(force=not idle)
        for number, handler in previous.items():
            signal.signal(number, handler)
    say("stopped")


def _listen(
    host: str, port: int, scoring: Scoring, level: str, minimum: str, max_body_bytes: int
) -> RewardServer:
    try:
        return RewardServer((host, port), scoring, level, minimum, max_body_bytes)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise RptError(
                f"reward server: port {port} on {host} is in use; pick another with --port"
            ) from None
        reason = " ".join(str(err.strerror or err).split())
        raise RptError(f"reward server: cannot listen on {host}:{port}: {reason}") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
