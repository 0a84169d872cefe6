"""The OpenAI-compatible backend against a real `transformers serve` on loopback, through a fault proxy.

Both routes are real: `transformers serve` 5.x answers `/v1/completions` (raw mode) and
`/v1/chat/completions` (chat mode). The proxy only injects faults; it never makes up an answer.
"""

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpt_transfer.errors import RptError
from rpt_transfer.generation import GenResult, SamplingParams, load_backend
from rpt_transfer.generation.base import sample_seed
from rpt_transfer.generation.hf import HFBackend
from rpt_transfer.generation.openai import OpenAIBackend, map_finish_reason
from rpt_transfer.hashing import canonical_json
from servers_openai import (
    Fault,
    FaultProxy,
    closed_port_url,
    fault_proxy,
    train_tiny_chat_model,
    transformers_serve,
)
from tiny_generation import REQUESTS, ask

KEY_ENV = "RPT_TEST_OPENAI_KEY"
KEY = "sk-rpt-test-7c1e9b04d2"


GREEDY = SamplingParams(max_tokens=12)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_chat_model(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with transformers_serve(model_dir, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def module_proxy(server: str) -> Iterator[FaultProxy]:
    with fault_proxy(server) as proxy:
        yield proxy


@pytest.fixture
def proxy(module_proxy: FaultProxy) -> FaultProxy:
    module_proxy.reset()
    return module_proxy


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


@pytest.fixture(scope="module")
def hf_raw(model_dir: Path) -> list[GenResult]:
    return HFBackend(model_dir, "raw", device="cpu").generate(REQUESTS, GREEDY)


def backend(proxy: FaultProxy, model_dir: Path, mode: str = "raw", **settings: object) -> OpenAIBackend:
    fast = {"concurrency": 4, "timeout_s": 30.0, "max_retries": 3, "backoff_s": 0.01, "max_backoff_s": 0.05}
    return OpenAIBackend(proxy.url, str(model_dir), mode, api_key_env=KEY_ENV, **(fast | settings))


def outcome(results: list[GenResult]) -> list[tuple]:
    return [
        (r.request_id, r.sample_index, r.completion, r.finish_reason, r.completion_tokens) for r in results
    ]


def test_raw_mode_gives_the_local_hf_backends_rows(
    proxy: FaultProxy, model_dir: Path, hf_raw: list[GenResult]
) -> None:
    """Same weights, same exact prompt, greedy: the server's rows equal our HF backend's, token counts included."""
    oa = backend(proxy, model_dir)
    results = oa.generate(REQUESTS, GREEDY)
    assert results == hf_raw
    assert {r.finish_reason for r in results} == {"stop", "length"}
    bodies = [hit.json() for hit in proxy.posts()]
    assert all(hit.path == "/v1/completions" for hit in proxy.posts())
    assert sorted(body["prompt"] for body in bodies) == sorted(r.prompt_text for r in results)
    assert sorted(body["seed"] for body in bodies) == sorted(sample_seed(q.seed, 0) for q in REQUESTS)
    assert not any({"stop", "top_k", "n"} & body.keys() for body in bodies)  # omitted when off
    engine = oa.engine_versions()
    assert engine["backend"] == "openai@1" and engine["httpx"]
    assert engine["base_url"] == proxy.url and engine["model"] == str(model_dir)
    assert engine["served_model"] == str(model_dir)  # what the server reported in its answers
    assert engine["usage"] == "reported" and engine["models_endpoint"] == "listed"


def test_chat_mode_lets_the_server_apply_the_chat_template(proxy: FaultProxy, model_dir: Path) -> None:
    """The server renders the template; its rows equal our HF chat backend's, and prompt_text is the messages."""
    params = SamplingParams(max_tokens=12, stop=["\n"])
    results = backend(proxy, model_dir, "chat").generate(REQUESTS, params)
    expected = HFBackend(model_dir, "chat", device="cpu").generate(REQUESTS, params)
    assert outcome(results) == outcome(expected)
    assert [r.prompt_text for r in results] == [canonical_json(q.messages) for q in REQUESTS]
    assert not any("\n" in r.completion for r in results)
    assert all(hit.path == "/v1/chat/completions" and hit.json()["stop"] == ["\n"] for hit in proxy.posts())


def test_samples_do_not_depend_on_n_or_concurrency(proxy: FaultProxy, model_dir: Path) -> None:
    sampled = SamplingParams(temperature=1.0, max_tokens=8, n=3)
    together = backend(proxy, model_dir, concurrency=4).generate(REQUESTS, sampled)
    assert [(r.request_id, r.sample_index) for r in together] == [
        (q.request_id, i) for q in REQUESTS for i in range(3)
    ]
    alone = backend(proxy, model_dir, concurrency=1)
    fewer = [r for q in REQUESTS for r in alone.generate([q], sampled.model_copy(update={"n": 2}))]
    assert outcome(fewer) == outcome([r for r in together if r.sample_index < 2])
    assert len({r.completion for r in together}) > len(REQUESTS)  # really sampled, per sample seed


def test_retried_faults_end_in_the_same_completions(
    proxy: FaultProxy, model_dir: Path, hf_raw: list[GenResult]
) -> None:
    """429 (with Retry-After), 500, a response slower than the timeout and dropped connections are retried."""
    faults = [
        Fault("status", status=429, retry_after="0"),
        Fault("status", status=500, times=2),
        Fault("slow", delay_s=3.0),
        Fault("drop", times=2),
    ]
    proxy.reset(*faults)
    progress: list[int] = []
    results = backend(proxy, model_dir, timeout_s=2.0, max_retries=4).generate(
        REQUESTS, GREEDY, progress.append
    )
    assert results == hf_raw
    assert sum(progress) == len(REQUESTS)
    assert all(fault.times == 0 for fault in faults)  # every fault was served
    assert len(proxy.posts()) == len(REQUESTS) + 6


def test_retry_after_is_honoured_and_capped(proxy: FaultProxy, model_dir: Path) -> None:
    proxy.reset(Fault("status", status=429, retry_after="1"))
    started = time.monotonic()
    [result] = backend(proxy, model_dir, max_backoff_s=5.0).generate(REQUESTS[:1], GREEDY)
    assert time.monotonic() - started >= 1.0 and result.finish_reason == "stop"
    proxy.reset(Fault("status", status=429, retry_after="300"))
    started = time.monotonic()
    [result] = backend(proxy, model_dir, max_backoff_s=0.2).generate(REQUESTS[:1], GREEDY)
    assert time.monotonic() - started < 30 and result.finish_reason == "stop"


def test_other_4xx_is_an_error_row_at_once(
    proxy: FaultProxy, model_dir: Path, hf_raw: list[GenResult]
) -> None:
    proxy.reset(
        Fault("status", status=400, times=50, when="12+9", message="prompt rejected\nby policy"),
        Fault("status", status=404, times=50, when="10+11", message="no such route"),
    )
    results = backend(proxy, model_dir).generate(REQUESTS, GREEDY)
    by_id = {r.request_id: r for r in results}
    prompt = REQUESTS[1].messages[0]["content"]
    assert by_id["long"] == GenResult(
        "long", 0, prompt, "", "error", 0, 0, "HTTP 400: prompt rejected by policy"
    )
    assert by_id["mid"].finish_reason == "error" and by_id["mid"].error == "HTTP 404: no such route"
    assert len(proxy.posts("12+9")) == 1 and len(proxy.posts("10+11")) == 1  # not retried
    assert [r for r in results if r.request_id not in ("long", "mid")] == [
        r for r in hf_raw if r.request_id not in ("long", "mid")
    ]


def test_exhausted_retries_give_error_rows(proxy: FaultProxy, model_dir: Path) -> None:
    requests = [
        ask("busy", "Q: 7+7=?\nA:"),
        ask("gone", "Q: 5+5=?\nA:"),
        ask("slow", "Q: 6+6=?\nA:"),
        REQUESTS[0],
    ]
    proxy.reset(
        Fault("status", status=503, times=50, when="7+7", message="overloaded"),
        Fault("drop", times=50, when="5+5"),
        Fault("slow", times=50, when="6+6", delay_s=2.0),
    )
    results = backend(proxy, model_dir, max_retries=1, timeout_s=1.0).generate(requests, GREEDY)
    assert [r.request_id for r in results] == ["busy", "gone", "slow", "short"]
    busy, gone, slow, fine = results
    assert busy.finish_reason == "error" and busy.error == "HTTP 503: overloaded (gave up after 2 tries)"
    assert gone.finish_reason == "error" and gone.error.startswith("RemoteProtocolError: ")
    assert slow.finish_reason == "error" and slow.error.startswith("ReadTimeout: ")
    assert all(r.completion == "" and r.completion_tokens == 0 for r in (busy, gone, slow))
    assert all(r.transient for r in (busy, gone, slow)) and not fine.transient  # the job will refuse them
    assert fine.finish_reason == "stop" and fine.completion
    assert [len(proxy.posts(text)) for text in ("7+7", "5+5", "6+6")] == [2, 2, 2]


def test_concurrency_is_bounded(proxy: FaultProxy, model_dir: Path) -> None:
    proxy.reset(Fault("slow", times=100, delay_s=0.25))
    progress: list[int] = []
    params = SamplingParams(max_tokens=4, n=2)
    results = backend(proxy, model_dir, concurrency=3).generate(REQUESTS, params, progress.append)
    assert len(results) == len(progress) == 10 and all(r.finish_reason != "error" for r in results)
    assert proxy.max_in_flight == 3


def test_the_key_is_sent_and_never_recorded(
    proxy: FaultProxy, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy.reset(Fault("status", status=500), Fault("status", status=400, when="12+9", echo_auth=True))
    caplog.set_level(logging.DEBUG)
    oa = backend(proxy, model_dir)
    results = oa.generate(REQUESTS, GREEDY)
    assert {hit.authorization for hit in proxy.hits} == {f"Bearer {KEY}"}
    echoed = next(r for r in results if r.request_id == "long")
    assert echoed.error == "HTTP 400: injected fault (you sent Bearer ***)"  # scrubbed
    recorded = [str(results), str(oa.engine_versions()), repr(oa), caplog.text]
    assert "failed (HTTP 500" in caplog.text  # the retry was logged
    assert not any(KEY in text for text in recorded)


def test_unreachable_server_is_one_line() -> None:
    url = closed_port_url()
    with pytest.raises(RptError, match=r"^cannot reach the OpenAI-compatible server at ") as raised:
        OpenAIBackend(url, "m", "raw", api_key_env=KEY_ENV, max_retries=1, backoff_s=0.01)
    assert url in str(raised.value) and "ConnectError" in str(raised.value) and "\n" not in str(raised.value)


def test_a_refused_key_is_one_line_and_not_retried(proxy: FaultProxy, model_dir: Path) -> None:
    proxy.reset(Fault("status", status=401, method="GET", path="/models", times=50))
    with pytest.raises(RptError) as raised:
        backend(proxy, model_dir)
    assert str(raised.value) == f"the server at {proxy.url} refused the API key from ${KEY_ENV} (HTTP 401)"
    assert len(proxy.hits) == 1


def test_a_missing_key_variable_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(RptError, match=f"environment variable {KEY_ENV} is unset") as raised:
        OpenAIBackend(closed_port_url(), "m", "raw", api_key_env=KEY_ENV)
    assert "\n" not in str(raised.value)


def test_a_model_the_server_lacks_is_named(proxy: FaultProxy, model_dir: Path) -> None:
    with pytest.raises(RptError, match=rf"does not serve model 'other-model'; it serves: {model_dir}$"):
        OpenAIBackend(proxy.url, "other-model", "raw", api_key_env=None)


def test_preflight_retries_5xx_and_accepts_a_server_without_models(
    proxy: FaultProxy, model_dir: Path
) -> None:
    proxy.reset(Fault("status", status=503, method="GET", path="/models", times=2))
    backend(proxy, model_dir)
    assert [hit.path for hit in proxy.hits] == ["/v1/models"] * 3
    proxy.reset(Fault("status", status=404, method="GET", path="/models", times=50))
    oa = backend(proxy, model_dir)
    assert oa.engine_versions()["models_endpoint"] == "missing"
    assert oa.generate(REQUESTS[:1], GREEDY)[0].finish_reason == "stop"


def test_load_backend_builds_it_and_length_ends_a_sample(proxy: FaultProxy, model_dir: Path) -> None:
    oa = load_backend(
        "openai", prompt_mode="raw", base_url=proxy.url + "/", model=str(model_dir), api_key_env=KEY_ENV,
        concurrency=2, timeout_s=30.0, max_retries=1,
    )  # fmt: skip
    assert oa.generate([], GREEDY) == []
    [result] = oa.generate(REQUESTS[3:4], SamplingParams(max_tokens=2))
    assert (result.finish_reason, result.completion_tokens) == ("length", 2)


@pytest.mark.skipif("top_k" not in SamplingParams.model_fields, reason="SamplingParams has no top_k yet")
def test_top_k_is_sent_and_a_refusal_is_not_retried(proxy: FaultProxy, model_dir: Path) -> None:
    """`transformers serve` refuses `top_k` (HTTP 422): every sample is an error row, each sent once."""
    params = SamplingParams(temperature=1.0, max_tokens=4, n=2, top_k=5)
    results = backend(proxy, model_dir).generate(REQUESTS[:2], params)
    assert [r.finish_reason for r in results] == ["error"] * 4
    assert all(r.error.startswith("HTTP 422: ") and "top_k" in r.error for r in results)
    assert len(proxy.posts()) == 4 and all(hit.json()["top_k"] == 5 for hit in proxy.posts())


@pytest.mark.parametrize(
    ("reported", "tokens", "expected"),
    [
        ("stop", 3, ("stop", None)),
        ("length", 8, ("length", None)),
        ("tool_calls", 3, ("stop", None)),
        (None, 8, ("length", None)),
        (None, 3, ("stop", None)),
        (
            "content_filter",
            3,
            ("error", "the server's content filter withheld the completion (finish reason content_filter)"),
        ),
        ("abort", 3, ("error", "the server ended the sample with finish reason 'abort'")),
    ],
)
def test_finish_reasons_map_to_ours(reported: str | None, tokens: int, expected: tuple) -> None:
    assert map_finish_reason(reported, tokens, max_tokens=8) == expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"base_url": "ftp://h/v1"}, "base_url must be an http"),
        ({"base_url": "http://user:secret@h:1/v1?key=x", "model": ""}, "model is empty"),
        ({"prompt_mode": "plain"}, "unknown prompt mode 'plain'"),
        ({"concurrency": 0}, "concurrency must be ≥ 1"),
    ],
)
def test_bad_settings_are_refused_before_any_request(settings: dict, message: str) -> None:
    args = {"base_url": closed_port_url(), "model": "m", "prompt_mode": "raw"} | settings
    with pytest.raises(RptError, match=message) as raised:
        OpenAIBackend(**args, api_key_env=None)
    assert "secret" not in str(raised.value)


def served_study(tmp_path: Path, base_url: str, model: str, **openai: object) -> Path:
    """A study of two models (Hub ids, pinned) that one OpenAI-compatible server serves under `model`."""
    from conftest import write_study

    served = {"base_url": base_url, "model": model}
    study = {
        "study": "served",
        "kind": "observational",
        "store": str(tmp_path / "store"),
        "tracking_uri": "none",
        "models": {
            name: {"hub": f"org/{name}", "revision": "a" * 40, "prompt_mode": "raw", "endpoint": served}
            for name in ("base", "rpt")
        },
        "pairs": [{"name": "p", "rpt": "rpt", "base": "base", "domains": ["math"], "algorithm": "grpo"}],
        "benchmarks": ["smoke_arith"],
        "limit": 3,
        "sampling": {"temperature": 0.0, "max_tokens": 6, "n": 1},
        "resources": {"backend": "openai", "openai": {"api_key_env": KEY_ENV, "max_retries": 0, **openai}},
    }
    return write_study(tmp_path / "served.yaml", study)


@pytest.mark.parametrize(
    ("where", "key", "expected"),
    [
        ("proxy", KEY, None),
        ("proxy", "sk-wrong", f"refused the API key from ${KEY_ENV} (HTTP 401)"),
        ("closed", KEY, "cannot reach the OpenAI-compatible server at http://127.0.0.1:"),
        ("proxy", None, f"environment variable {KEY_ENV} is unset or empty"),
    ],
    ids=["reachable", "wrong key", "unreachable", "no key"],
)
def test_validate_asks_each_server_before_anything_runs(
    proxy: FaultProxy,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    key: str | None,
    expected: str | None,
) -> None:
    """`rpt-transfer validate`: an unreachable server, a refused or missing key is one line naming the
    model's endpoint, exit 2, never the key itself; a reachable server that serves the model passes."""
    from inprocess import call_cli

    if key is None:
        monkeypatch.delenv(KEY_ENV)
    else:
        monkeypatch.setenv(KEY_ENV, key)
    proxy.require_key(KEY)
    url = proxy.url if where == "proxy" else closed_port_url()
    result = call_cli(capsys, "validate", str(served_study(tmp_path, url, str(model_dir))))
    if expected is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "models.base.endpoint: " in lines[0] and expected in lines[0], lines
    assert KEY not in result.stderr and "sk-wrong" not in result.stderr
    assert not (tmp_path / "store").exists()


def test_run_refuses_a_refused_key_in_one_line_before_writing_anything(
    proxy: FaultProxy,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`rpt-transfer run` asks the servers first, as validate does: one line, exit 2, no store, no job."""
    from inprocess import call_cli

    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    proxy.require_key(KEY)
    result = call_cli(capsys, "run", str(served_study(tmp_path, proxy.url, str(model_dir))))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert f"models.base.endpoint: the server at {proxy.url} refused the API key from ${KEY_ENV}" in lines[0]
    assert not (tmp_path / "store").exists() and not proxy.posts()


def test_a_study_commits_nothing_while_the_server_fails_and_completes_once_it_answers(
    proxy: FaultProxy, model_dir: Path, tmp_path: Path
) -> None:
    """Through `rpt-transfer run`: samples that failed after every retry fail their generate job without a
    manifest (never error rows scored 0 for good); the same command later, the server healthy, completes."""
    from conftest import run_cli

    path = served_study(tmp_path, proxy.url, str(model_dir))
    proxy.reset(Fault("status", status=503, times=1, message="warming up"))
    failed = run_cli("run", str(path), "--workers", "1")
    assert failed.returncode == 1, failed.stderr
    assert "1 of 3 samples failed after every retry" in failed.stderr + failed.stdout
    generations = tmp_path / "store" / "generations"
    done = (
        [p for p in generations.iterdir() if (p / "MANIFEST.json").exists()] if generations.exists() else []
    )
    assert len(done) == 1  # the other model's job committed; the failed one left nothing
    again = run_cli("run", str(path), "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert len([p for p in generations.iterdir() if (p / "MANIFEST.json").exists()]) == 2
    assert KEY not in again.stdout + again.stderr + failed.stdout + failed.stderr
    for stored in (tmp_path / "store").rglob("*"):
        if stored.is_file():
            assert KEY.encode() not in stored.read_bytes(), stored
