"""The reward service (issue 14): the real `rpt-transfer reward-server` on loopback, asked as OpenRLHF asks.

Each server is a subprocess on 127.0.0.1 (port 0: the server picks a free one and says it). Hostile answers
run only in its sandbox; its environment holds a planted secret under an unusual name (credential names
make it refuse to start), which no answer may read.
"""

import asyncio
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from reward_cases import (
    ADD,
    ADD_RIGHT,
    ADD_WRONG,
    CHOICE_PROMPT,
    LOOP,
    LOOP_REF,
    SUM,
    SUM_RIGHT,
    openrlhf_agent,
    request,
    sample,
)

from conftest import CLI, REPO
from rpt_transfer.scoring import sandbox
from rpt_transfer.scoring.code import function_reference
from rpt_transfer.training.reward_server import CREDENTIAL_VARIABLES

SECRET_NAME = "RPT_REWARD_TEST_PLANTED_VALUE"
SECRET = "planted-" + uuid.uuid4().hex
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+) ")
pytestmark = pytest.mark.usefixtures("sandbox_ready")


class Server:
    """A running `rpt-transfer reward-server`, its URL and the stderr lines it wrote so far."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        base = {key: value for key, value in os.environ.items() if key not in CREDENTIAL_VARIABLES}
        self.process = subprocess.Popen(
            [*CLI, "reward-server", "--port", "0", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**base, SECRET_NAME: SECRET, **(env or {})}, cwd=REPO,
        )  # fmt: skip
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self._ready.wait(60) or not self.url:
            self.stop()
            raise AssertionError(f"the reward server did not start: {self.lines}")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if found := LISTENING.search(line):
                self.url = found.group(1)
                self._ready.set()
        self._ready.set()  # it ended

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


@contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = Server(*args, env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running("--workers", "2") as started:
        yield started


def post(url: str, body: object, raw: bytes | None = None, timeout: float = 60) -> tuple[int, dict]:
    """POST to /get_reward as OpenRLHF does (JSON); the status and the JSON answer, errors included."""
    data = raw if raw is not None else json.dumps(body).encode()
    ask = urllib.request.Request(
        f"{url}/get_reward", data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(ask, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get(url: str, path: str) -> dict:
    with urllib.request.urlopen(f"{url}{path}", timeout=10) as answer:
        assert answer.status == 200
        return json.loads(answer.read())


def rewards(url: str, *samples: tuple[str, str, str]) -> list[float]:
    status, body = post(url, request(*samples))
    assert status == 200, body
    return body["rewards"]


# --- answers ----------------------------------------------------------------------------------------


def test_health_names_the_isolation_that_runs_and_metrics_count(server: Server) -> None:
    health = get(server.url, "/health")
    assert health["status"] == "ok" and health["isolation"] == sandbox.isolation() and health["workers"] == 2
    before = get(server.url, "/metrics")
    assert len(before["worker_pids"]) == 2 and before["isolation"] == health["isolation"]
    assert rewards(server.url, sample("\\boxed{2}"), sample("\\boxed{3}")) == [1.0, 0.0]
    after = get(server.url, "/metrics")
    assert after["requests"] - before["requests"] == 1 and after["samples"] - before["samples"] == 2


def test_math_and_choice_answers_as_openrlhf_sends_them(server: Server) -> None:
    status, body = post(
        server.url,
        request(
            sample("So 1 + 1 = \\boxed{2}."),
            sample("So 1 + 1 = \\boxed{11}."),
            sample("So 1 + 1 is 2."),
            sample("So 1 + 1 is 2.", policy="flexible"),
            sample("7 is prime. ANSWER: B", "choice", "B", prompt=CHOICE_PROMPT),
            sample("so the answer is B.", "choice", "B", "flexible", CHOICE_PROMPT),
        ),
    )
    assert status == 200
    assert body["rewards"] == body["scores"] == [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert body["extra_logs"] == {
        "reward_failure": [0.0] * 6,
        "reward_correct": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    }


def test_openrlhfs_own_client_gets_its_rewards(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenRLHF's SingleTurnAgentExecutor._fetch_rewards_via_http (aiohttp), pointed at the service."""
    agent = openrlhf_agent(monkeypatch)
    executor = agent.SingleTurnAgentExecutor(f"{server.url}/get_reward")
    for answer, scorer, reference, expected in (
        ("\\boxed{2}", "math", "2", 1.0),
        ("\\boxed{4}", "math", "2", 0.0),
        (ADD_RIGHT, "code_function", ADD, 1.0),
    ):
        query, prompt, label = sample(answer, scorer, reference)
        (result,) = asyncio.run(executor._fetch_rewards_via_http([query], [prompt], [label]))
        assert result["rewards"] == [expected] and result["extra_logs"]["reward_failure"] == [0.0]


def test_code_answers_run_in_the_sandbox(server: Server) -> None:
    assert rewards(
        server.url,
        sample(ADD_RIGHT, "code_function", ADD),
        sample(ADD_WRONG, "code_function", ADD),
        sample(SUM_RIGHT, "code_stdio", SUM),
    ) == [1.0, 0.0, 1.0]


def _returns(body: str) -> str:
    return "```python\ndef f():\n" + "".join(f"    {line}\n" for line in body.splitlines()) + "```"


def test_hostile_answers_harm_nothing_and_reach_nothing(server: Server) -> None:
    """Fork bomb, endless loop, shell commands, reading a planted secret, and a connection to a listener."""
    marker = Path("/tmp") / f"rpt-reward-{uuid.uuid4().hex}"
    is_true = function_reference("f", "assert f() is True", timeout=2)
    secret = function_reference("f", f"assert f() == {SECRET!r}", timeout=2)
    fork_bomb = _returns(
        "import os\nwhile True:\n    try:\n        if os.fork() == 0:\n            os.setsid()\n"
        "    except OSError:\n        pass"
    )
    shell = _returns(f"import os\nreturn os.system('echo pwned > {marker}') == 0")
    read_secret = _returns(
        "import glob, os\n"
        f"found = os.environ.get({SECRET_NAME!r}, '')\n"
        "for path in glob.glob('/proc/*/environ'):\n"
        "    try:\n        data = open(path, 'rb').read()\n    except OSError:\n        continue\n"
        "    for item in data.split(b'\\0'):\n"
        f"        if item.startswith(b'{SECRET_NAME}='):\n"
        "            found = found or item.split(b'=', 1)[1].decode()\n"
        "return found"
    )
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        connect = _returns(
            f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "    return True\nexcept OSError:\n    return False"
        )
        started = time.monotonic()
        got = rewards(
            server.url,
            sample(fork_bomb, "code_function", is_true),
            sample(LOOP, "code_function", LOOP_REF),
            sample(shell, "code_function", is_true),
            sample(read_secret, "code_function", secret),
            sample(_returns(f"return {SECRET!r}"), "code_function", secret),  # control: the check can pass
            sample(connect, "code_function", is_true),
        )
        assert select.select([listener], [], [], 0.2)[0] == []  # nobody knocked
    assert got == [0.0, 0.0, 1.0, 0.0, 1.0, 0.0]  # the shell command ran, inside the sandbox
    assert not marker.exists()
    assert time.monotonic() - started < 30
    assert get(server.url, "/health")["status"] == "ok"
    assert rewards(server.url, sample("\\boxed{2}")) == [1.0]
    assert not any(SECRET in line for line in server.lines)


def test_bad_labels_are_counted_failures_in_answers_and_metrics(server: Server) -> None:
    before = get(server.url, "/metrics")["failures_by_reason"]
    good = sample("\\boxed{2}")
    status, body = post(
        server.url,
        {"query": [good[0]] * 3, "prompts": [good[1]] * 3, "labels": ["{}", None, good[2]]},
    )
    assert status == 200 and body["rewards"] == [0.0, 0.0, 1.0]
    assert body["extra_logs"]["reward_failure"] == [1.0, 1.0, 0.0]
    after = get(server.url, "/metrics")["failures_by_reason"]
    assert after.get("bad_label", 0) - before.get("bad_label", 0) == 2
    deadline = time.monotonic() + 5
    while sum("reward -: bad_label: " in line for line in server.lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum("reward -: bad_label: " in line for line in server.lines) >= 2


# --- requests that are not reward requests ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe\x00garbage", "body is not JSON"),
        (b"[" * 100_000, "body is not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"query": ["q"], "prompts": ["p"]}', "field 'labels' must be a list"),
        (b'{"query": "q", "prompts": ["p"], "labels": ["l"]}', "field 'query' must be a list"),
        (b'{"query": ["q", "r"], "prompts": ["p"], "labels": ["l"]}', "lists of one length"),
    ],
)
def test_malformed_requests_get_400_and_one_line(server: Server, raw: bytes, says: str) -> None:
    status, body = post(server.url, None, raw=raw)
    assert status == 400 and says in body["error"] and "\n" not in body["error"]
    assert rewards(server.url, sample("\\boxed{2}")) == [1.0]


def _raw_post(
    url: str, headers: dict[str, str], body: bytes = b"", path: str = "/get_reward"
) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("POST", path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def test_bodies_over_the_limit_get_413(server: Server) -> None:
    status, body = _raw_post(server.url, {"Content-Length": str(17 << 20)})  # declared, never sent
    assert status == 413 and str(16 << 20) in body["error"]
    big = request(sample("x" * (17 << 20)))
    assert post(server.url, big)[0] == 413  # sent in full
    status, body = _raw_post(server.url, {})
    assert status == 411 and "Content-Length" in body["error"]
    assert _raw_post(server.url, {"Content-Length": "-5"})[0] == 400
    assert rewards(server.url, sample("\\boxed{2}")) == [1.0]


def test_unknown_paths_get_404(server: Server) -> None:
    status, body = _raw_post(server.url, {"Content-Length": "2"}, b"{}", path="/")
    assert status == 404 and "POST /get_reward" in body["error"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{server.url}/rewards", timeout=10)
    assert missing.value.code == 404


def test_sixteen_concurrent_requests_each_get_their_own_answer(server: Server) -> None:
    cases = [(f"\\boxed{{{n}}}", str(n + n % 2), float(n % 2 == 0)) for n in range(12)]
    cases += [("\\boxed{\\frac{1}{2}}", "0.5", 1.0), ("\\boxed{\\sqrt{4}}", "2", 1.0)]
    cases += [(ADD_RIGHT, ADD, 1.0), (ADD_WRONG, ADD, 0.0)]

    def ask(case: tuple[str, str, float]) -> list[float]:
        answer, reference, _ = case
        scorer = "code_function" if reference == ADD else "math"
        return rewards(server.url, sample(answer, scorer, reference))

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(ask, cases))
    assert got == [[expected] for *_, expected in cases]


# --- workers that die, stopping ---------------------------------------------------------------------


def _wait_in_flight(url: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while get(url, "/metrics")["in_flight"] < count:
        assert time.monotonic() < deadline, "the request never arrived"
        time.sleep(0.05)


def test_a_killed_worker_fails_its_request_with_503_and_the_pool_recovers() -> None:
    with running("--workers", "1") as server, ThreadPoolExecutor(1) as pool:
        (pid,) = get(server.url, "/metrics")["worker_pids"]
        slow = pool.submit(post, server.url, request(sample(LOOP, "code_function", LOOP_REF)))
        _wait_in_flight(server.url, 1)
        time.sleep(0.5)  # the worker is inside the sandboxed run
        os.kill(pid, signal.SIGKILL)
        status, body = slow.result(timeout=30)
        assert status == 503 and "died" in body["error"]
        assert rewards(server.url, sample("\\boxed{2}")) == [1.0]
        metrics = get(server.url, "/metrics")
        assert metrics["pool_restarts"] == 1 and pid not in metrics["worker_pids"]
        assert metrics["responses"] == {"503": 1, "200": 1}
        (idle,) = metrics["worker_pids"]
        os.kill(idle, signal.SIGKILL)  # a worker that dies between requests costs no request anything
        time.sleep(0.5)
        assert rewards(server.url, sample("\\boxed{3}")) == [0.0]
        metrics = get(server.url, "/metrics")
        assert metrics["pool_restarts"] == 2 and metrics["responses"] == {"503": 1, "200": 2}
        assert server.process.poll() is None


def test_sigterm_answers_the_requests_in_flight_then_stops() -> None:
    slow_add = "```python\ndef add(a, b):\n    import time\n    time.sleep(1.5)\n    return a + b\n```"
    with running("--workers", "1") as server, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(post, server.url, request(sample(slow_add, "code_function", ADD)))
        _wait_in_flight(server.url, 1)
        server.process.send_signal(signal.SIGTERM)
        assert slow.result(timeout=30) == (
            200,
            {
                "rewards": [1.0],
                "scores": [1.0],
                "extra_logs": {"reward_failure": [0.0], "reward_correct": [1.0]},
            },
        )
        assert server.process.wait(30) == 0
        server.reader.join(10)
        assert server.lines[-1] == "reward-server: stopped"


# --- refusals ---------------------------------------------------------------------------------------


def refused(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> str:
    """Start a server that must refuse: its one stderr line (exit non-zero, no traceback, never listening)."""
    base = {key: value for key, value in os.environ.items() if key not in CREDENTIAL_VARIABLES}
    result = subprocess.run(
        [*prefix, *CLI, "reward-server", "--port", "0", *args],
        capture_output=True, text=True, env={**base, **(env or {})}, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: reward server: ") and "listening" not in result.stderr
    return line


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "MLFLOW_TRACKING_PASSWORD"])
def test_refuses_to_start_with_credentials_in_its_environment(name: str) -> None:
    value = "fake-" + uuid.uuid4().hex
    line = refused(env={name: value})
    assert name in line and value not in line


def test_refuses_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = refused("--port", str(port))
    assert f"port {port} on 127.0.0.1 is in use" in line


def test_refuses_an_unknown_minimum_isolation() -> None:
    line = refused("--sandbox-min", "strong")
    assert "'strong' is not an isolation level" in line and "namespaces, userns" in line


def test_refuses_when_the_sandbox_cannot_reach_the_minimum_isolation() -> None:
    """Below the strongest level: ask for it. At it (root with namespaces): start without CAP_SYS_ADMIN."""
    here, strongest = sandbox.isolation(), sandbox.LEVELS[-1]
    if here != strongest:
        line = refused(env={"RPT_SANDBOX_MIN": strongest})
        assert f"below the minimum {strongest!r}" in line
        return
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("this machine reaches every level, and cannot drop CAP_SYS_ADMIN to test a refusal")
    drop = (setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin")
    line = refused("--sandbox-min", strongest, prefix=drop)
    assert "model-written code cannot run here" in line
    assert "below the minimum 'namespaces'" in line or "cannot sandbox code here" in line
