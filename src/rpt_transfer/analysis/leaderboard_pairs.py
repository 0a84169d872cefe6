"""`pairs.json`: what a study report compared, so the leaderboard can key its rows without the plan.

The aggregate job writes it into every report folder. Per pair it names where each model's weights came
from (a Hub id at a commit, or the job that trained them), the RPT domains and algorithm, and the
evaluation settings the numbers rest on. Two reports whose pair has the same models and the same settings
fingerprint hold the same numbers (every job is content-addressed); a different fingerprint is a different,
incomparable evaluation, and the leaderboard shows it as a row of its own.

The fingerprint hashes the settings per benchmark and role exactly as `analysis.comparability` compares
them (`jobs.aggregate.evaluation_settings`: sampling, sample limit, benchmark version, scorer, prompt mode,
backend), so "comparable" means the same thing in a report and on the leaderboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rpt_transfer.analysis.tables import PairInfo
from rpt_transfer.errors import RptError
from rpt_transfer.hashing import short_hash

PAIRS_FILE = "pairs.json"
"""File of the report folder that describes its pairs (this module's `PairsFile`)."""
ROLES = ("base", "rpt")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelSource(_Frozen):
    """Where one model's weights came from, and how big it is where that was counted."""

    name: str
    """The study's name for the model (a label: the same weights may have other names elsewhere)."""
    source: str
    """Hub repository id, `train job` / `pretrain job` for weights a job made, or a store path."""
    revision: str
    """The Hub commit, the id of the job that made the weights, or `(store checkpoint)`."""
    parameters: int | None = None
    """Parameter count, where a generate job had the weights (HF or vLLM backend); else unknown."""

    @property
    def key(self) -> str:
        """`source@revision`: the identity of the weights (the model-size registry's key for Hub models)."""
        return f"{self.source}@{self.revision}"


class PairRecord(_Frozen):
    """One RPT/base pair of a report: the models, the training, and the settings of its evaluation."""

    name: str
    """The pair's name in the study (its rows in the report's tables carry it in `pair`)."""
    rpt: ModelSource
    """The RPT model."""
    base: ModelSource
    """The base model it was post-trained from."""
    domains: list[str]
    """Domains of the RPT training data (benchmarks of these domains are `seen`)."""
    algorithm: str
    """The RPT algorithm, e.g. `grpo`."""
    settings: dict[str, Any]
    """The evaluation settings, condensed for people (`condensed`): a key alone where every benchmark
    and both models agree, else qualified by role and benchmark."""
    fingerprint: str
    """Short hash of the full settings per benchmark and role: equal means comparable."""


class PairsFile(_Frozen):
    """The whole `pairs.json` of one report."""

    format_version: Literal[1] = 1
    """Layout of this file; readers reject versions they do not know."""
    study: str
    """The study the report belongs to."""
    pairs: list[PairRecord]
    """Every pair of the study, in the study's order."""

    def to_json(self) -> str:
        """Stable, readable JSON (sorted keys, indented)."""
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> PairsFile:
        """Parse a stored file; RptError naming where it lies and its first problem."""
        try:
            return cls.model_validate_json(data)
        except ValueError as err:
            first = str(err).splitlines()[0:3]
            raise RptError(f"{where}: not a readable {PAIRS_FILE} ({' '.join(first)})") from None


Settings = Mapping[tuple[str, str], Mapping[str, Any]]
"""Per (model name, benchmark): flat settings, as `jobs.aggregate.evaluation_settings` returns them."""


def pairs_file(
    study: str, pairs: Sequence[PairInfo], sources: Mapping[str, ModelSource], settings: Settings
) -> PairsFile:
    """The `pairs.json` of a report: each pair with its models' sources and its settings fingerprint."""
    records = []
    for pair in pairs:
        full = pair_settings(pair, settings)
        records.append(
            PairRecord(
                name=pair.name,
                rpt=sources[pair.rpt_model],
                base=sources[pair.base_model],
                domains=list(pair.rpt_domains),
                algorithm=pair.algorithm,
                settings=condensed(full),
                fingerprint=short_hash(full),
            )
        )
    return PairsFile(study=study, pairs=records)


def pair_settings(pair: PairInfo, settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    """Benchmark -> role -> settings, for every benchmark either model of the pair was evaluated on.

    Keyed by role rather than model name, so renaming a model in a study changes nothing.
    """
    models = {"base": pair.base_model, "rpt": pair.rpt_model}
    benchmarks = sorted({bench for model, bench in settings if model in models.values()})
    return {
        bench: {role: dict(settings.get((model, bench), {})) for role, model in models.items()}
        for bench in benchmarks
    }


def condensed(full: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Settings for people: `key` where all agree, `key (role)` where the roles differ, else per benchmark.

    `benchmarks` lists the benchmarks evaluated, since a different set is a different evaluation too.
    """
    out: dict[str, Any] = {"benchmarks": ",".join(full)}
    keys = sorted({key for roles in full.values() for values in roles.values() for key in values})
    for key in keys:
        cells = {(bench, role): full[bench][role].get(key) for bench in full for role in ROLES}
        if len({_text(value) for value in cells.values()}) == 1:
            out[key] = next(iter(cells.values()))
            continue
        per_role = {role: {_text(cells[bench, role]) for bench in full} for role in ROLES}
        if all(len(values) == 1 for values in per_role.values()):
            out |= {f"{key} ({role})": cells[next(iter(full)), role] for role in ROLES}
            continue
        out |= {f"{key} [{bench}, {role}]": value for (bench, role), value in cells.items()}
    return out


def _text(value: Any) -> str:
    """A hashable, comparable form of a setting value (lists and dicts included)."""
    return repr(value)
