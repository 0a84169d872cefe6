"""A model's own recommended sampling (its generation_config.json), read at plan time.

The paper sampled each model at its authors' settings; a study asks for that with `sampling_defaults:
model`. The numbers are read when planning, from the Hub file at the pinned commit or from the stored
checkpoint, so they enter generate job ids and the report can say where each came from. vLLM's
`generation_config="auto"` would apply them only inside the engine, invisible to ids and the report.
"""

import json
import os
from typing import Any, NamedTuple

from rpt_transfer.errors import PlanError, StoreError
from rpt_transfer.revisions import TIMEOUT_S, hub_endpoint, hub_offline
from rpt_transfer.spec import ModelSpec

CONFIG_FILE = "generation_config.json"
FIELDS = ("temperature", "top_p", "top_k")
"""What `sampling_defaults: model` takes from the file; max_tokens, n, seed and stop stay the study's."""


class ModelDefaults(NamedTuple):
    """The sampling values a model's file sets (only those it sets) and where they were read."""

    values: dict[str, Any]
    """Subset of FIELDS, checked: temperature >= 0, 0 < top_p <= 1, top_k an integer >= 0."""
    source: str
    """The file read, e.g. `hf://org/model@<commit>/generation_config.json`, or why there is none."""

    def provenance(self) -> dict[str, Any]:
        """For a generate job's context and the report: the values and their source."""
        return {"values": dict(self.values), "source": self.source}


def read_model_defaults(name: str, model: ModelSpec, ref: dict[str, Any], store_uri: str) -> ModelDefaults:
    """The generation_config.json sampling values of model `name` (as `ref` pins it), checked."""
    if model.hub is not None:
        where = f"hf://{ref['hub']}@{ref['revision']}"
        data = _hub_file(name, ref["hub"], ref["revision"])
        if data is None:
            return ModelDefaults({}, f"{where}: no {CONFIG_FILE}; the study's sampling applies")
        source = f"{where}/{CONFIG_FILE}"
        return ModelDefaults(_checked(name, source, data), source)
    if model.path is not None:
        return _stored(name, model.path, store_uri)
    return ModelDefaults({}, "tiny model: its generation_config.json sets no sampling; the study's apply")


def _hub_cache() -> str | None:
    """The Hub cache folder the environment names now (huggingface_hub reads it only at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def _hub_file(name: str, repo: str, commit: str) -> dict[str, Any] | None:
    """The file at the commit (cached by huggingface_hub after the first read), or None when absent.

    Endpoint, cache and offline mode are read from the environment now, as `revisions` does, so a mirror
    or a test's fake Hub set after import is the one asked. Only the Hub saying "no such file" (or the
    cache remembering it said so) means absent; an unreachable Hub is an error, never "no defaults".
    """
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RemoteEntryNotFoundError

    cache, offline = _hub_cache(), hub_offline()
    if offline:  # the cache's answer: a path, None (never asked), or a marker that the Hub said absent
        cached = try_to_load_from_cache(repo, CONFIG_FILE, cache_dir=cache, revision=commit)
        if cached is not None and not isinstance(cached, str):
            return None
    try:
        path = hf_hub_download(
            repo,
            CONFIG_FILE,
            revision=commit,
            endpoint=hub_endpoint(),
            cache_dir=cache,
            local_files_only=offline,
            etag_timeout=TIMEOUT_S,
        )
    except RemoteEntryNotFoundError:
        return None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        if offline:
            why = "HF_HUB_OFFLINE is set and the Hub cache does not hold it"
        else:
            why = f"the Hub at {hub_endpoint()}: {type(err).__name__}: {' '.join(str(err).split())[:160]}"
        raise PlanError(
            f"models.{name}: cannot read {CONFIG_FILE} of {repo}@{commit} for sampling_defaults: model "
            f"({why}); accepted: a reachable Hub (or its cache), or sampling_defaults: spec"
        ) from None
    source = f"hf://{repo}@{commit}/{CONFIG_FILE}"
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return _parse(name, source, data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise PlanError(f"models.{name}: {source} is not UTF-8 ({err})") from None


def _stored(name: str, path: str, store_uri: str) -> ModelDefaults:
    """The file of a checkpoint in the store, through its manifest (unverified objects are not read)."""
    from rpt_transfer.jobs.models import checkpoint_at

    store, key = checkpoint_at(path, store_uri)
    source = f"{store.key_uri(key)}/{CONFIG_FILE}"
    try:
        manifest = store.manifest(key)
        if manifest is None:
            raise PlanError(f"models.{name}.path: no checkpoint at {store.key_uri(key)} (no MANIFEST.json)")
        if not any(info.name == CONFIG_FILE for info in manifest.objects):
            return ModelDefaults({}, f"{store.key_uri(key)}: no {CONFIG_FILE}; the study's sampling applies")
        text = store.read_object(key, CONFIG_FILE).decode("utf-8")
    except (StoreError, UnicodeDecodeError) as err:
        raise PlanError(f"models.{name}.path: cannot read {source} ({err})") from None
    return ModelDefaults(_checked(name, source, _parse(name, source, text)), source)


def _parse(name: str, source: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise PlanError(f"models.{name}: {source} is not JSON ({err})") from None
    if not isinstance(data, dict):
        raise PlanError(f"models.{name}: {source} is not a JSON object")
    return data


def _checked(name: str, source: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """The FIELDS the file sets, each checked; a file that is absent sets none.

    `do_sample: false` means greedy, as in transformers (the reference the authors' file was written for),
    though vLLM's `generation_config="auto"` would ignore it and sample at the file's temperature.
    """
    if data is not None and data.get("do_sample") is False:
        return {"temperature": 0.0}  # transformers decodes greedily then, whatever temperature says
    values = {key: data[key] for key in FIELDS if data is not None and data.get(key) is not None}
    rules = {
        "temperature": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1e6,
        "top_p": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1,
        "top_k": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    }
    for key, value in values.items():
        if not rules[key](value):
            raise PlanError(
                f"models.{name}: {source} sets {key} to {value!r}, which sampling does not accept; "
                "accepted: temperature >= 0, 0 < top_p <= 1, top_k an integer >= 0"
            )
    return values
