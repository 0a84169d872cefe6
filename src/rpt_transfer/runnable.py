"""Whether this installation can run a study's generation backend and trainer, asked of their registries.

`validate`, `plan` and `run` refuse a backend or trainer here, before any job starts, instead of letting
`job run` fail after other jobs have run. The answer comes from the registries themselves (the
generation backend table and the trainer table, each with the packages its loaders import), so a backend
or trainer that a later version registers is checked without changing this module. Nothing heavy is
imported: packages are looked up with importlib, not loaded.
"""

import importlib.util
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple, get_args

if TYPE_CHECKING:
    from rpt_transfer.spec import InterventionalStudy, ObservationalStudy


class Needs(NamedTuple):
    """The packages a registered backend's loader imports, and the pip extra that installs them."""

    modules: tuple[str, ...]
    """Top-level import names; looked up, never imported."""
    extra: str | None = None
    """`rpt-transfer[extra]` installs them; None when they are core dependencies."""

    def missing(self) -> str | None:
        """What to install when a package is absent (e.g. `pip install 'rpt-transfer[gpu]'`), else None."""
        absent = [name for name in self.modules if not _importable(name)]
        if not absent:
            return None
        install = f"pip install 'rpt-transfer[{self.extra}]'" if self.extra else "pip install rpt-transfer"
        return f"needs {', '.join(absent)}, which is not installed: {install}"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or half-imported package counts as absent
        return False


def unavailable(
    name: str, loaders: Mapping[str, object], needs: Mapping[str, Needs], known: Iterable[str]
) -> str | None:
    """Why this installation cannot run `name` (one line ending in what it accepts), or None when it can.

    `loaders` is the registry, `needs` its packages per name, `known` the names the spec language has.
    """

    def runs(candidate: str) -> bool:
        need = needs.get(candidate)
        return candidate in loaders and (need is None or need.missing() is None)

    accepted = ", ".join(sorted(n for n in known if runs(n))) or "(none)"
    if name not in loaders:
        return f"not available in this version of rpt-transfer (got {name!r}); accepted: {accepted}"
    need = needs.get(name)
    problem = need.missing() if need is not None else None
    if problem is not None:
        return f"{problem} (got {name!r}); accepted: {accepted}"
    return None


def study_problems(study: "ObservationalStudy | InterventionalStudy") -> list[str]:
    """The study's backend and trainer that this installation cannot run, as `field: problem` lines."""
    from rpt_transfer.generation import BACKENDS
    from rpt_transfer.generation import NEEDS as BACKEND_NEEDS
    from rpt_transfer.spec import BackendName, InterventionalStudy
    from rpt_transfer.training.base import NEEDS as TRAINER_NEEDS
    from rpt_transfer.training.base import TRAINERS
    from rpt_transfer.training.config import TrainerName

    problems = []
    backend = unavailable(study.resources.backend, BACKENDS, BACKEND_NEEDS, get_args(BackendName))
    if backend is not None:
        problems.append(f"resources.backend: {backend}")
    if isinstance(study, InterventionalStudy):
        trainer = unavailable(study.trainer, TRAINERS, TRAINER_NEEDS, get_args(TrainerName))
        if trainer is not None:
            problems.append(f"trainer: {trainer}")
    return problems
