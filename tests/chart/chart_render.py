"""The chart rendered offline through the Helm SDK (helm-python-sdk: Helm v4's Go code, no binary).

Each profile is a values file of the chart plus the values a user must add to it, as the README says.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import helm_python as helm
import typer
import yaml

from rpt_transfer import cli

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "rpt-transfer"
RELEASE, NAMESPACE = "rpt-transfer", "rpt-transfer"

PRODUCTION_REQUIRED: dict[str, Any] = {
    "store": {"uri": "s3://rpt-transfer-studies/store", "endpoint": "https://s3.example.org"},
    "networkPolicy": {"apiServer": {"cidrs": ["10.96.0.1/32"]}, "store": {"cidrs": ["203.0.113.0/24"]}},
}
"""What the default and gpu profiles need from a user (README's cluster section)."""

PROFILES: dict[str, tuple[str | None, dict[str, Any]]] = {
    "default": (None, PRODUCTION_REQUIRED),
    "dev": ("values-dev.yaml", {}),
    "gpu": ("values-gpu.yaml", PRODUCTION_REQUIRED),
    "everything": (
        None,
        {
            **PRODUCTION_REQUIRED,
            "discovery": {"enabled": True},
            "submitters": [
                {"kind": "Group", "name": "ml-researchers", "apiGroup": "rbac.authorization.k8s.io"}
            ],
            "mlflow": {"allowedHosts": ["mlflow.example.org"]},
            "training": {"multiNode": True, "sharedClaim": "rpt-transfer-train", "shmSize": "32Gi"},
            "podSizes": {"gpu": {"cpu": "30", "memory": "240Gi"}},
        },
    ),
}
"""Profile name -> (the chart's values file on top of values.yaml, the user's values)."""


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` deep-merged into `base`, as Helm merges values files."""
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def profile_values(profile: str) -> dict[str, Any]:
    """The values a profile installs with, before the chart's defaults."""
    file, user = PROFILES[profile]
    values = yaml.safe_load((CHART / file).read_text()) if file else {}
    return merged(values, user)


@functools.cache
def _chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(values: dict[str, Any]) -> dict[str, str]:
    """Template path -> rendered text (raises helm's HelmValuesError or HelmRenderError)."""
    return _chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with a key twice (Kubernetes would keep one silently)."""


def _no_duplicates(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    twice = {key for key in keys if keys.count(key) > 1}
    if twice:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate keys {sorted(twice)}", node.start_mark
        )
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def objects(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every object the rendered templates hold, NOTES.txt aside."""
    found = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml"):
            found += [doc for doc in yaml.load_all(text, Loader=UniqueKeyLoader) if doc]
    return found


@functools.cache
def _profile_json(profile: str) -> str:
    return json.dumps(objects(render(profile_values(profile))))


def profile_objects(profile: str) -> list[dict[str, Any]]:
    """A profile's objects (rendered once per session; a fresh copy each call)."""
    return json.loads(_profile_json(profile))


def one(found: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of that kind and name."""
    matches = [o for o in found if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{len(matches)} {kind} named {name}"
    return matches[0]


def parse_cli(argv: list[str]) -> dict[str, Any]:
    """`rpt-transfer ARGV` parsed by the project's own CLI, not run: its parameters (a wrong option fails)."""
    command = typer.main.get_command(cli.app)
    context = command.context_class(command, info_name="rpt-transfer")
    name, args = "rpt-transfer", list(argv)
    while hasattr(command, "resolve_command"):
        name, found, args = command.resolve_command(context, args)
        command, context = found, found.context_class(found, info_name=name, parent=context)
    return command.make_context(name, args, parent=context.parent).params
