"""The Hub as discovery reads it: listings per base, model info with a retry of our own, READMEs at a commit.

huggingface_hub 2.4.0 retries listings itself (429 and 5xx, `http_backoff`) but not `model_info`, so model
info goes through `_retrying`, which honours `Retry-After` and the `RateLimit` header (hf-hub.md §4). Every
failure becomes one line: the endpoint and HF_ENDPOINT when the Hub cannot be reached, the token variable
when a token is refused, and a TransientError (exit 75, Argo retries) for a 429 or 5xx that outlasts the
retries. A repo that answers but cannot be used (gone, disabled, gated files) is `Unusable`: the caller
records it as a decision instead of failing the run.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from rpt_transfer.errors import RptError, TransientError
from rpt_transfer.revisions import (
    http_status,
    hub_endpoint,
    hub_offline,
    retry_wait,
    short_error,
    transport_errors,
)

if TYPE_CHECKING:
    from huggingface_hub.hf_api import ModelInfo

LIST_EXPAND = (
    "createdAt", "lastModified", "tags", "cardData", "library_name", "pipeline_tag", "safetensors", "gated",
    "private",
)  # fmt: skip
"""What one listing request returns per model; `baseModels` is refused by the list endpoint (400)."""
INFO_EXPAND = (*LIST_EXPAND, "sha", "baseModels", "disabled")
"""What one `model_info` request returns: everything the decision needs."""
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
TIMEOUT_S = 20.0
"""Per `model_info` request."""
TRIES = 5
"""Attempts of one `model_info` request on 408, 429 and 5xx answers."""
MAX_WAIT_S = 120.0
"""Longest wait honoured before a retry; a longer Retry-After ends the run at once (exit 75)."""
RETRIED = (408, 429, 500, 502, 503, 504)
_T = TypeVar("_T")


class Model(NamedTuple):
    """A model as the Hub describes it (a listing item, or `model_info` with `sha` and `base_models`)."""

    id: str
    created_at: datetime | None
    tags: tuple[str, ...]
    card_data: dict[str, Any] | None
    gated: str | bool
    private: bool
    params: int | None
    """Safetensors total, None where the Hub has no safetensors metadata."""
    sha: str | None = None
    base_models: Any = None
    """`baseModels` as the Hub gave it: a `{"relation", "models"}` object in practice, or a list."""
    disabled: bool = False


class Unusable(Exception):
    """The Hub answered, but the repo cannot be used (gone, disabled, gated files): a decision, no failure."""

    def __init__(self, reason: str, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Hub:
    """One Hub endpoint with one token (or none): every request of a discovery run goes through here."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # read at import: no side request to the Hub
        from huggingface_hub import HfApi

        self.endpoint = hub_endpoint()
        self.token_variable = next((name for name in TOKEN_VARIABLES if os.environ.get(name)), None)
        self.token: str | bool = os.environ[self.token_variable] if self.token_variable else False
        """The token from the environment, passed explicitly; False: none (no stored token is sent)."""
        self.api = HfApi(endpoint=self.endpoint, token=self.token)
        self._sleep = sleep

    def check_online(self) -> None:
        """Refuse HF_HUB_OFFLINE before any request: discovery needs the live Hub."""
        if hub_offline():
            raise RptError(
                f"HF_HUB_OFFLINE is set, but discovery needs the Hub at {self.endpoint} "
                f"({_endpoint_note()}); unset HF_HUB_OFFLINE (and TRANSFORMERS_OFFLINE)"
            )

    def base(self, hub_id: str, revision: str) -> Model:
        """A configured base at its revision; `LookupError` when the Hub does not have it."""
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

        what = f"base model {hub_id} at {revision}"
        try:
            info = self._retrying(
                lambda: self.api.model_info(
                    hub_id, revision=revision, expand=["sha", "safetensors", "gated"], timeout=TIMEOUT_S
                ),
                what,
            )
        except RevisionNotFoundError:
            raise LookupError(f"base {hub_id} has no branch, tag or commit {revision!r}") from None
        except RepositoryNotFoundError as err:
            if self.token_variable and http_status(err) in (401, 403):
                raise self.failure(err, what) from None
            raise LookupError(f"base {hub_id} is not a model on the Hub at {self.endpoint}") from None
        except HfHubHTTPError as err:
            raise self.failure(err, what) from None
        return _model(info)

    def listing(self, base: str) -> Iterator[Model]:
        """Models whose card names `base` (any relation), newest first; lazy, so the caller stops paging."""
        from huggingface_hub.errors import HfHubHTTPError

        try:
            for info in self.api.list_models(
                filter=f"base_model:{base}", sort="created_at", expand=list(LIST_EXPAND)
            ):
                yield _model(info)
        except (HfHubHTTPError, *transport_errors()) as err:
            raise self.failure(err, f"listing the models whose card names {base}") from None

    def info(self, model_id: str) -> Model:
        """The model now, with `sha` and `baseModels`; `Unusable` when it is gone or disabled."""
        from huggingface_hub.errors import DisabledRepoError, HfHubHTTPError, RepositoryNotFoundError

        what = f"model info of {model_id}"
        try:
            info = self._retrying(
                lambda: self.api.model_info(model_id, expand=list(INFO_EXPAND), timeout=TIMEOUT_S), what
            )
        except DisabledRepoError:
            raise Unusable("disabled on the Hub (access to it is disabled)") from None
        except RepositoryNotFoundError as err:
            if self.token_variable and http_status(err) == 403:
                raise self.failure(err, what) from None
            raise Unusable("gone: the Hub no longer has it (deleted, renamed or made private)") from None
        except HfHubHTTPError as err:
            raise self.failure(err, what) from None
        model = _model(info)
        if model.disabled:
            raise Unusable("disabled on the Hub (access to it is disabled)")
        return model

    def readme(self, model_id: str, sha: str) -> str | None:
        """The model card's text at `sha`; None when the repo has no README.md."""
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        what = f"README.md of {model_id} at {sha[:12]}"
        with tempfile.TemporaryDirectory(prefix="rpt-discover-") as cache:
            try:
                path = self.api.hf_hub_download(model_id, "README.md", revision=sha, cache_dir=cache)
            except LocalEntryNotFoundError as err:
                cause = err.__cause__
                if isinstance(cause, RevisionNotFoundError):
                    raise Unusable(
                        f"broken: commit {sha[:12]} is gone from the repo", retryable=True
                    ) from None
                raise self.failure(cause or err, what) from None
            except EntryNotFoundError:
                return None
            except GatedRepoError:
                raise Unusable("gated: its files need an access request that the token lacks") from None
            except (RepositoryNotFoundError, RevisionNotFoundError):
                raise Unusable(
                    f"broken: {what} cannot be read (repo or commit gone)", retryable=True
                ) from None
            except (HfHubHTTPError, *transport_errors()) as err:
                raise self.failure(err, what) from None
            return Path(path).read_text(encoding="utf-8", errors="replace")

    def _retrying(self, call: Callable[[], _T], what: str) -> _T:
        """`call` again after a 408, 429 or 5xx, waiting what the Hub asks; other errors go to the caller."""
        from huggingface_hub.errors import HfHubHTTPError

        for attempt in range(1, TRIES + 1):
            try:
                return call()
            except HfHubHTTPError as err:
                status = http_status(err)
                if status not in RETRIED:
                    raise
                wait = retry_wait(err, attempt)
                if attempt == TRIES or wait > MAX_WAIT_S:
                    raise self.failure(err, what, tries=attempt) from None
                self._sleep(wait)
            except transport_errors() as err:
                raise self.failure(err, what) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def failure(self, err: BaseException, what: str, tries: int | None = None) -> RptError:
        """One line for a failed request: unreachable, offline, token refused, throttled, or its status."""
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        hub = f"the Hub at {self.endpoint}"
        if isinstance(err, OfflineModeIsEnabled):
            return RptError(f"{what}: HF_HUB_OFFLINE is set, but discovery needs {hub}; unset it")
        if not isinstance(err, HfHubHTTPError):
            return RptError(f"cannot reach {hub} ({_endpoint_note()}) for {what}: {short_error(err)}")
        status = http_status(err)
        after = f" after {tries} tries" if tries else ""
        if status in (401, 403) and self.token_variable:
            return RptError(
                f"{hub} refused the token in {self.token_variable} for {what} ({status}): it has no access; "
                f"use a token with read access, or unset {self.token_variable}"
            )
        if status == 429:
            return TransientError(
                f"{hub} rate-limited {what} (429){after}, asking to wait {retry_wait(err, 1):g} s; "
                "set HF_TOKEN for a larger quota, or run again later"
            )
        if status in RETRIED:
            return TransientError(f"{hub} answered {status} for {what}{after}; run again later")
        return RptError(f"{hub} answered {status} for {what}: {short_error(err)}")


def _model(info: ModelInfo) -> Model:
    card = info.card_data.to_dict() if info.card_data is not None else None
    safetensors = info.safetensors
    return Model(
        id=info.id,
        created_at=info.created_at,
        tags=tuple(info.tags or ()),
        card_data=card,
        gated=info.gated or False,
        private=bool(info.private),
        params=int(safetensors.total) if safetensors is not None and safetensors.total else None,
        sha=info.sha,
        base_models=info.base_models,
        disabled=bool(getattr(info, "disabled", False)),
    )


def _endpoint_note() -> str:
    value = os.environ.get("HF_ENDPOINT")
    return f"HF_ENDPOINT={value}" if value else "HF_ENDPOINT unset, so huggingface.co"


__all__ = ["Hub", "Model", "Unusable"]
