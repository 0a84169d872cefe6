"""OpenAI-compatible HTTP backend: `vllm serve`, SGLang, `transformers serve` or a hosted API.

One HTTP request per sample, each with its own seed, so a sample does not depend on `n`, on batching or
on which thread sent it. What a server may recover from (429, 5xx, dropped connections, timeouts) is
retried with backoff; anything else ends the sample at once as an `error` row, so every sample is
accounted for and none is made up.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, get_args
from urllib.parse import urlsplit, urlunsplit

import httpx

from rpt_transfer.errors import RptError
from rpt_transfer.generation.base import (
    GenRequest,
    GenResult,
    PromptMode,
    SamplingParams,
    cut_at_stop,
    engine_label,
    raw_prompt,
    sample_seed,
)
from rpt_transfer.hashing import canonical_json

log = logging.getLogger(__name__)

RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,  # e.g. the server closed the connection without an answer
)
"""Transport failures worth another try; any other `httpx.HTTPError` is a setup problem."""
PREFLIGHT_TIMEOUT_S = 10.0
"""Longest wait for one `GET /models`: the server is up or not, and a long wait helps nobody."""
MESSAGE_LIMIT = 500
"""Characters of a server's error message kept in an error row."""
MODELS_SHOWN = 5
"""Served model ids named when the requested model is not among them."""


class OpenAIBackend:
    """Generate through an OpenAI-compatible server's completions (raw) or chat completions (chat) API.

    In chat mode the server applies its own chat template, which we cannot see: `GenResult.prompt_text`
    is then the canonical JSON of the messages sent, not the rendered prompt. In raw mode it is the exact
    prompt sent. Token counts are the server's `usage` (0 when it reports none).

    Args:
        base_url: The API root, e.g. `http://127.0.0.1:8000/v1`.
        model: The model name the server serves (`/models` ids); sent with every request.
        prompt_mode: `raw` posts the joined contents to `/completions`; `chat` posts the messages to
            `/chat/completions`.
        api_key_env: Environment variable holding the API key, read once here and sent as a Bearer
            token; None sends no key (a local server).
        concurrency: Most requests in flight at once.
        timeout_s: Longest wait for one request (connect, send, read).
        max_retries: Further tries of a request after a retryable failure.
        backoff_s: Base of the exponential backoff between tries, with full jitter.
        max_backoff_s: Cap on one wait, `Retry-After` included.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        prompt_mode: PromptMode,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 600.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        _check_settings(
            base_url, model, prompt_mode, concurrency, timeout_s, max_retries, backoff_s, max_backoff_s
        )
        key = _read_key(api_key_env)
        self.base_url = base_url.rstrip("/")
        self.display_url = _display_url(self.base_url)
        self.model = model
        self.prompt_mode = prompt_mode
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        password = urlsplit(self.base_url).password
        self._secrets = [secret for secret in (key, password) if secret]
        self._lock = threading.Lock()
        self._served: set[str] = set()
        self._usage_missing = False
        self._models_endpoint = "listed"
        self._preflight()

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(base_url={self.display_url!r}, model={self.model!r}, "
            f"prompt_mode={self.prompt_mode!r}, api_key_env={self.api_key_env!r})"
        )

    def engine_versions(self) -> dict[str, str]:
        """The server and model behind the samples, as far as the server says; never the key."""
        return {
            "backend": engine_label("openai"),
            "base_url": self.display_url,
            "model": self.model,
            "served_model": ",".join(sorted(self._served)) or "unreported",
            "usage": "missing" if self._usage_missing else "reported",
            "models_endpoint": self._models_endpoint,
            "httpx": httpx.__version__,
        }

    def generate(
        self,
        requests: Sequence[GenRequest],
        params: SamplingParams,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[GenResult]:
        """One request per sample, at most `concurrency` at once; see `GenerationBackend.generate`."""
        samples = [(request, index) for request in requests for index in range(params.n)]
        if not samples:
            return []
        results: list[GenResult | None] = [None] * len(samples)
        workers = min(self.concurrency, len(samples))
        with self._client(self.timeout_s) as client:
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai")
            try:
                futures = {
                    pool.submit(self._sample, client, request, index, params): slot
                    for slot, (request, index) in enumerate(samples)
                }
                for future in as_completed(futures):  # progress is reported from the caller's thread
                    results[futures[future]] = future.result()
                    if on_progress is not None:
                        on_progress(1)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return [result for result in results if result is not None]

    def _client(self, timeout_s: float) -> httpx.Client:
        """An HTTP client with the key, this timeout and a connection pool as large as `concurrency`."""
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.Client(headers=self._headers, timeout=httpx.Timeout(timeout_s), limits=limits)

    def _endpoint(self, path: str) -> str:
        """`base_url` with `path` appended to its path (a query string in `base_url` stays at the end)."""
        parts = urlsplit(self.base_url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))

    def _scrub(self, text: str) -> str:
        """`text` without the key or URL password, in case a server or library echoes one."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _send(
        self, client: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[httpx.Response | None, str]:
        """Send, retrying what a server may recover from: the final response, or why there is none.

        Raises `httpx.HTTPError` for failures no retry can fix (e.g. an unsupported URL scheme).
        """
        attempts = self.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            retry_after = None
            try:
                response = client.request(method, self._endpoint(path), json=body)
            except RETRYABLE_ERRORS as err:
                problem = _describe(err)
            else:
                if not _retryable_status(response.status_code):
                    return response, ""
                problem = f"HTTP {response.status_code}: {_server_message(response)}"
                retry_after = _retry_after(response)
            if attempt + 1 < attempts:
                delay = self._delay(attempt, retry_after)
                message = self._scrub(problem)
                log.info(
                    "%s %s failed (%s); try %d of %d in %.2f s",
                    method,
                    path,
                    message,
                    attempt + 2,
                    attempts,
                    delay,
                )
                time.sleep(delay)
        return None, f"{problem} (gave up after {attempts} tries)"

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """The server's `Retry-After` when given, else full jitter on the exponential backoff; capped."""
        if retry_after is not None:
            return min(self.max_backoff_s, retry_after)
        return random.uniform(0.0, min(self.max_backoff_s, self.backoff_s * 2**attempt))

    def _preflight(self) -> None:
        """Refuse, in one line, a server that is unreachable, refuses the key or lacks the model."""
        try:
            with self._client(min(self.timeout_s, PREFLIGHT_TIMEOUT_S)) as client:
                response, problem = self._send(client, "GET", "/models")
        except httpx.HTTPError as err:
            response, problem = None, _describe(err)
        url = self.display_url
        if response is None:
            raise RptError(self._scrub(f"cannot reach the OpenAI-compatible server at {url} ({problem})"))
        status = response.status_code
        if status in (401, 403) and self.api_key_env is None:
            raise RptError(
                f"the server at {url} wants an API key (HTTP {status}); none is configured (api_key_env)"
            )
        if status in (401, 403):
            raise RptError(
                f"the server at {url} refused the API key from ${self.api_key_env} (HTTP {status})"
            )
        if status == 404:  # some servers have no model list: the first request will tell
            self._models_endpoint = "missing"
            return
        if not response.is_success:
            message = _server_message(response)
            raise RptError(
                self._scrub(f"the server at {url} answered GET /models with HTTP {status}: {message}")
            )
        served = _model_ids(response)
        if served is None:
            raise RptError(
                f"the server at {url} is not OpenAI-compatible: GET /models gave no model list "
                f"({self._scrub(_one_line(response.text, 200))})"
            )
        if self.model not in served:
            shown = ", ".join(served[:MODELS_SHOWN]) or "none"
            more = f" and {len(served) - MODELS_SHOWN} more" if len(served) > MODELS_SHOWN else ""
            raise RptError(
                f"the server at {url} does not serve model {self.model!r}; it serves: {shown}{more}"
            )

    def _request_body(self, request: GenRequest, sample_index: int, params: SamplingParams) -> dict[str, Any]:
        """The JSON body of one sample: n=1 with the sample's own seed; optional fields only when set."""
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": sample_seed(request.seed, sample_index),
        }
        if params.stop:
            body["stop"] = list(params.stop)
        top_k = getattr(params, "top_k", 0)
        if top_k > 0:  # vLLM and SGLang take it; hosted OpenAI and `transformers serve` refuse it
            body["top_k"] = top_k
        if self.prompt_mode == "raw":
            body["prompt"] = raw_prompt(request.messages)
        else:
            body["messages"] = [dict(message) for message in request.messages]
        return body

    def _sample(
        self, client: httpx.Client, request: GenRequest, sample_index: int, params: SamplingParams
    ) -> GenResult:
        """Generate one sample; every failure becomes an `error` row, never an exception."""
        if self.prompt_mode == "raw":
            path, prompt_text = "/completions", raw_prompt(request.messages)
        else:
            path, prompt_text = "/chat/completions", canonical_json(list(request.messages))
        row = GenResult(request.request_id, sample_index, prompt_text, "", "error", 0, 0)
        try:
            body = self._request_body(request, sample_index, params)
            response, problem = self._send(client, "POST", path, body)
        except httpx.HTTPError as err:
            response, problem = None, _describe(err)
        if response is None:  # retries exhausted, or no answer at all: may pass
            return row._replace(error=self._scrub(problem), transient=True)
        if not response.is_success:
            problem = f"HTTP {response.status_code}: {_server_message(response)}"
            return row._replace(error=self._scrub(problem))
        return self._parse(row, response, params)

    def _parse(self, row: GenResult, response: httpx.Response, params: SamplingParams) -> GenResult:
        """Turn a successful answer into a row; a malformed one is an error row, not an empty completion."""
        try:
            data = response.json()
        except ValueError:
            return row._replace(error=self._scrub(f"the answer is not JSON: {_one_line(response.text)}"))
        choice = _first_choice(data)
        if choice is None:
            return row._replace(error=self._scrub(f"the answer has no choices: {_one_line(response.text)}"))
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        text = choice.get("text") if self.prompt_mode == "raw" else message.get("content")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        with self._lock:
            if isinstance(data.get("model"), str):
                self._served.add(data["model"])
            self._usage_missing |= not usage
        tokens = (_count(usage, "prompt_tokens"), _count(usage, "completion_tokens"))
        row = row._replace(prompt_tokens=tokens[0], completion_tokens=tokens[1])
        if text is not None and not isinstance(text, str):
            return row._replace(error=f"the answer's text is a {type(text).__name__}, not a string")
        reason, error = map_finish_reason(choice.get("finish_reason"), tokens[1], params.max_tokens)
        if error is not None:
            return row._replace(error=error)
        text = text or ""
        cut = cut_at_stop(text, params.stop)  # servers cut at stop strings already; some keep the string
        if cut is not None:
            text, reason = text[:cut], "stop"
        return row._replace(completion=text, finish_reason=reason)


def map_finish_reason(reported: object, completion_tokens: int, max_tokens: int) -> tuple[str, str | None]:
    """Our finish reason, and an error message when the sample is unusable, for the server's reason.

    A tool call ends the model's turn (we offer no tools, so it is rare) and counts as `stop`; a missing
    reason is inferred from the token count; a content filter or an abort leaves no honest completion.
    """
    if reported in ("stop", "tool_calls", "function_call"):
        return "stop", None
    if reported == "length":
        return "length", None
    if reported is None:
        return ("length" if completion_tokens >= max_tokens else "stop"), None
    if reported == "content_filter":
        return "error", "the server's content filter withheld the completion (finish reason content_filter)"
    return "error", f"the server ended the sample with finish reason {_one_line(str(reported), 100)!r}"


def _check_settings(
    base_url: str,
    model: str,
    prompt_mode: str,
    concurrency: int,
    timeout_s: float,
    max_retries: int,
    backoff_s: float,
    max_backoff_s: float,
) -> None:
    """Refuse settings that cannot work, before any request."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RptError(
            "OpenAI backend: base_url must be an http(s) URL such as http://host:8000/v1, "
            f"got {_display_url(base_url)!r}"
        )
    if not model:
        raise RptError("OpenAI backend: model is empty; give the name the server serves (GET /models)")
    if prompt_mode not in get_args(PromptMode):
        raise RptError(f"OpenAI backend: unknown prompt mode {prompt_mode!r}; accepted: chat, raw")
    if concurrency < 1 or max_retries < 0:
        raise RptError(
            "OpenAI backend: concurrency must be ≥ 1 and max_retries ≥ 0, "
            f"got {concurrency} and {max_retries}"
        )
    if timeout_s <= 0 or backoff_s < 0 or max_backoff_s < 0:
        raise RptError(
            "OpenAI backend: timeout_s must be > 0 and backoff_s, max_backoff_s ≥ 0, "
            f"got {timeout_s}, {backoff_s}, {max_backoff_s}"
        )


def _read_key(api_key_env: str | None) -> str | None:
    """The API key from the environment, or None when no variable is configured."""
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env, "")
    if not key:
        raise RptError(
            f"OpenAI backend: environment variable {api_key_env} is unset or empty; "
            "set it to the server's API key"
        )
    return key


def _display_url(url: str) -> str:
    """`url` without credentials, query string or fragment: safe to record and print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a malformed port: show none rather than fail while reporting
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _retryable_status(status: int) -> bool:
    """429 (rate limit) and 5xx are worth another try; every other 4xx will fail the same way again."""
    return status == 429 or status >= 500


def _retry_after(response: httpx.Response) -> float | None:
    """The `Retry-After` header in seconds, when the server sent one in that form."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:  # absent, or an HTTP date
        return None


def _server_message(response: httpx.Response) -> str:
    """The error message in a server's answer (OpenAI's `error.message`, FastAPI's `detail`), one line."""
    try:
        data = response.json()
    except ValueError:
        return _one_line(response.text) or response.reason_phrase
    if isinstance(data, dict):
        for found in (data.get("error"), data.get("detail"), data.get("message")):
            if isinstance(found, dict) and "message" in found:
                found = found["message"]
            if found:
                return _one_line(found if isinstance(found, str) else canonical_json(found))
    return _one_line(response.text)


def _model_ids(response: httpx.Response) -> list[str] | None:
    """The model ids of a `GET /models` answer, or None when it is not one."""
    try:
        data = response.json()
    except ValueError:
        return None
    listed = data.get("data") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        return None
    return [entry["id"] for entry in listed if isinstance(entry, dict) and isinstance(entry.get("id"), str)]


def _first_choice(data: object) -> dict[str, Any] | None:
    """The first choice of a completions answer, or None when there is none."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _count(usage: dict[str, Any], name: str) -> int:
    """A token count from `usage`, 0 when absent or not a number."""
    value = usage.get(name)
    return value if isinstance(value, int) and value >= 0 else 0


def _describe(err: Exception) -> str:
    """Exception class and message, one line: what the row's error says about a transport failure."""
    message = _one_line(str(err))
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def _one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` with its whitespace collapsed, cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
