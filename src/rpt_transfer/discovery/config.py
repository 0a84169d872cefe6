"""The discovery config (`rpt-transfer discover --config FILE`): the bases to follow, what counts, the study.

Strict like the study spec: an unknown key is refused naming the key and the file, and the study template is
checked as a study at load time, so a cron job fails on its first run rather than after a Hub scan.
"""

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rpt_transfer.errors import SpecError
from rpt_transfer.generation.base import PromptMode
from rpt_transfer.hashing import short_hash
from rpt_transfer.spec import NAME_PATTERN, parse_study
from rpt_transfer.spec_checks import one_line, pydantic_line

Relation = Literal["finetune", "adapter", "merge", "quantized"]
RELATIONS: tuple[Relation, ...] = ("finetune", "adapter", "merge", "quantized")
TEMPLATE_FIXED = ("study", "kind", "models", "pairs")
"""Study fields discovery writes itself; the template may not set them."""
DEFAULT_BENCHMARKS = ["paper-16"]
STUDY_SUFFIX_LENGTH = 18
"""`-YYYYMMDD-` and 8 hex: what `study_prefix` is followed by in a study name."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseEntry(_Strict):
    """A base model whose descendants discovery follows; the study evaluates it at `revision`."""

    hub: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    """Hub repository id, e.g. `deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B`."""
    revision: str = Field(default="main", min_length=1)
    """A branch, tag or 40-hex commit; the study's base model is evaluated at it (a branch is resolved
    when the study is planned, so equal commits give equal job ids across studies)."""
    prompt_mode: PromptMode = "chat"
    """How the base and its descendants are prompted (`chat` or `raw`), as a study's ModelSpec."""


class DiscoveryConfig(_Strict):
    """What `rpt-transfer discover` follows and the study it submits (docs/discovery.md)."""

    bases: list[BaseEntry] = Field(min_length=1)
    """The base models whose descendants to follow."""
    relations: list[Relation] = Field(default=["finetune"], min_length=1)
    """Which `base_model` relations count as a post-trained copy of the base's weights."""
    max_params_b: float | None = Field(default=None, gt=0)
    """Skip models with more than this many billion parameters (safetensors total); None: no limit."""
    first_lookback_days: int = Field(default=14, ge=1, le=3650)
    """With no earlier run for a base and relation, look this many days back."""
    study_prefix: str = Field(default="discovered", pattern=NAME_PATTERN, max_length=63 - STUDY_SUFFIX_LENGTH)
    """The submitted study is named `<prefix>-<UTC date>-<8 hex of its pairs>`."""
    study: dict[str, Any] = {}
    """Template of the study: any ObservationalStudy field except study, kind, models and pairs."""

    @field_validator("bases")
    @classmethod
    def _distinct_bases(cls, bases: list[BaseEntry]) -> list[BaseEntry]:
        seen: set[str] = set()
        for base in bases:
            if base.hub.lower() in seen:
                raise ValueError(f"{base.hub} is listed twice; list each base once")
            seen.add(base.hub.lower())
        return bases

    @field_validator("relations")
    @classmethod
    def _distinct_relations(cls, relations: list[Relation]) -> list[Relation]:
        return list(dict.fromkeys(relations))

    @field_validator("study")
    @classmethod
    def _template_fields(cls, study: dict[str, Any]) -> dict[str, Any]:
        fixed = [key for key in TEMPLATE_FIXED if key in study]
        if fixed:
            raise ValueError(f"`{fixed[0]}` is written by discovery; the template sets only the other fields")
        return study

    def base(self, hub_id: str) -> BaseEntry | None:
        """The configured base with this Hub id (Hub ids compare case-insensitively), or None."""
        return next((b for b in self.bases if b.hub.lower() == hub_id.lower()), None)

    def digest(self) -> str:
        """Short hash of the config's content, recorded with every run."""
        return short_hash(self.model_dump(mode="json"))

    def template(self) -> dict[str, Any]:
        """The study template with its defaults (`benchmarks: [paper-16]`)."""
        return {"benchmarks": list(DEFAULT_BENCHMARKS), **self.study}


def load_config(path: Path | str) -> DiscoveryConfig:
    """Read and check a discovery config; one SpecError line naming the file and the field when it is bad."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such discovery config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot read the discovery config ({err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(
            f"{path}: malformed YAML{where}: {one_line(str(getattr(err, 'problem', err)))}"
        ) from None
    if not isinstance(data, dict):
        raise SpecError(
            f"{path}: expected a mapping with `bases` (and optionally {_optional()}) at the top level"
        )
    try:
        config = DiscoveryConfig.model_validate(data)
    except ValidationError as err:
        lines = [f"{path}: {_line(error)}" for error in err.errors()]
        more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
        raise SpecError(lines[0] + more, problems=lines) from None
    check_template(config, str(path))
    return config


def check_template(config: DiscoveryConfig, source: str) -> None:
    """Check the study template as a study with one placeholder pair: its problems name `source: study`."""
    base = config.bases[0]
    placeholder = {
        **config.template(),
        "study": "template-check",
        "kind": "observational",
        "models": {
            "b": {"hub": base.hub, "revision": base.revision},
            "r": {"hub": base.hub, "revision": "x"},
        },
        "pairs": [{"name": "p", "rpt": "r", "base": "b", "domains": ["math"], "algorithm": "rl"}],
    }
    parse_study(yaml.safe_dump(placeholder), f"{source}: study")


def _line(error: Any) -> str:
    """One pydantic error as `field: problem`, an unknown key naming what is accepted there."""
    where, line = pydantic_line(error, strip=0)
    if error["type"] == "extra_forbidden":
        accepted = _accepted(error["loc"][:-1])
        line = f"{where}: unknown key; accepted: {accepted}"
    return line


def _accepted(parent: tuple[Any, ...]) -> str:
    model: type[BaseModel] = BaseEntry if parent and parent[0] == "bases" else DiscoveryConfig
    return ", ".join(model.model_fields)


def _optional() -> str:
    return ", ".join(name for name in DiscoveryConfig.model_fields if name != "bases")


__all__ = ["RELATIONS", "BaseEntry", "DiscoveryConfig", "Relation", "load_config"]
