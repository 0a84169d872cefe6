"""`rpt-transfer validate`: every problem that `plan` and `run` would hit, found at once, writing nothing.

In this order, one line each (`FILE: field.path: problem (got X); accepted: ...`):

1. the spec's fields (pydantic), then, on a spec whose fields are sound, the checks that span fields and
   whether this installation can run the study's backend and trainer (`spec.load_study(runnable=True)`);
2. the store: reachable, and writable or creatable, without creating it;
3. the plan, built exactly as `plan` and `run` build it, so whatever stops planning stops `validate` too;
4. backend openai: every server the plan sends requests to answers, takes the key and serves the model.

`plan` and `run` run steps 1 and 3 themselves and refuse with the first problem; `validate` lists them all.
"""

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from rpt_transfer.errors import RptError, SpecError, StoreError
from rpt_transfer.settings import Settings
from rpt_transfer.spec import problems_error
from rpt_transfer.store import Store
from rpt_transfer.store.base import ACCEPTED_URIS

if TYPE_CHECKING:
    from rpt_transfer.plan import Plan
    from rpt_transfer.runner import Loaded
    from rpt_transfer.spec import InterventionalStudy, ObservationalStudy


def open_store(path: Path, resolved: Settings) -> Store:
    """The store the settings name; a URI or path that cannot name a store is a problem of the spec file."""
    where = store_field(resolved)
    try:
        return Store.from_uri(resolved.store_uri)
    except StoreError as err:
        raise problems_error(str(path), [f"{where}: {err}"]) from None
    except (OSError, ValueError, RuntimeError) as err:  # too long, unreadable, a NUL, `~user` of no user
        problem = f"not a usable path ({err}) (got {resolved.store_uri!r}); accepted: {ACCEPTED_URIS}"
        raise problems_error(str(path), [f"{where}: {problem}"]) from None


def store_field(resolved: Settings) -> str:
    """Where the store came from, as messages name it: `store`, or `store (from RPT_STORE)`."""
    return "store" if resolved.store_from.startswith("the study") else f"store (from {resolved.store_from})"


def check_store(store: Store) -> None:
    """Can `run` use this store? Reachable and writable; a missing folder must be creatable, not created.

    An existing store gets its usual probe (an object written and deleted again). For a missing folder,
    the nearest existing folder above it gets the probe instead (an empty folder made and removed at
    once), so `validate` never leaves a store behind where there was none.
    """
    root = store.local_path()
    if root is None or _exists(root):
        store.check_access(write=True)
        return
    ancestor = next(parent for parent in root.parents if _exists(parent))
    if not ancestor.is_dir():
        raise StoreError(f"store folder {root} cannot be created: {ancestor} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".rpt-access-check.", dir=ancestor))
    except OSError as err:
        raise StoreError(f"store folder {root} cannot be created in {ancestor}: {err.strerror}") from None


def _exists(path: Path) -> bool:
    """Whether a path exists; one the OS refuses to look up (too long, no permission) is a store problem."""
    try:
        return path.exists()
    except OSError as err:
        raise StoreError(f"store folder {path}: {err.strerror}") from None


def validate_study(path: Path) -> "Loaded":
    """The checked study, or a SpecError listing every problem: the spec's, then the store's and plan's."""
    from rpt_transfer.runner import load_and_resolve

    loaded = load_and_resolve(path, check_store=False, runnable=True)  # SpecError: every spec problem
    problems = []
    try:
        check_store(loaded.store)
    except StoreError as err:
        problems.append(f"{store_field(loaded.settings)}: {err}")
    try:
        plan = loaded.plan()
    except RptError as first:  # planning stops here; look on for the problems behind this one
        problems += planning_problems(loaded.study, first)
    else:
        problems += server_problems(loaded.study, plan)
    if problems:
        raise problems_error(str(path), problems)
    return loaded


def server_problems(study: "ObservationalStudy | InterventionalStudy", plan: "Plan") -> list[str]:
    """Backend openai: ask each distinct server of the plan's generate jobs what every job will ask first.

    The backend's own pre-flight (`GET /models`: reachable, key accepted, model served), with one retry
    and a short timeout: a server still starting is better reported now than after an hour of other jobs.
    """
    if study.resources.backend != "openai":
        return []
    from rpt_transfer.generation.openai import OpenAIBackend
    from rpt_transfer.hashing import canonical_json

    problems: list[str] = []
    asked: set[str] = set()
    for job in plan.jobs:
        engine = job.context.get("engine") if job.kind == "generate" else None
        if engine is None or canonical_json(engine) in asked:
            continue
        asked.add(canonical_json(engine))
        own = study.server_of(job.context["model"])[2]
        field = f"models.{job.context['model']}.endpoint" if own else "resources.openai"
        quick = {"max_retries": min(engine["max_retries"], 1), "timeout_s": min(engine["timeout_s"], 10.0)}
        try:
            OpenAIBackend(prompt_mode=job.inputs["prompt_mode"], **{**engine, **quick}, max_backoff_s=1.0)
        except RptError as err:
            if f"{field}: {err}" not in problems:
                problems.append(f"{field}: {err}")
    return problems


def planning_problems(study: "ObservationalStudy | InterventionalStudy", first: RptError) -> list[str]:
    """Every problem planning hits, `plan`'s own first: each model and each benchmark is planned on its own.

    Planning stops at its first problem; this asks the planner for each model's weights and each benchmark's
    identity in turn, as building the plan does, and keeps every distinct problem. When the Hub cannot be
    reached at all, one line says so (it names every model stuck on a branch) rather than one per model.
    """
    from rpt_transfer import benchmarks
    from rpt_transfer.planner import _Planner, study_pairs
    from rpt_transfer.revisions import HubUnavailable

    found = _lines(first)
    stuck = isinstance(first, HubUnavailable)
    planner = _Planner(study)
    names = dict.fromkeys(name for pair in study_pairs(study) for name in (pair.base, pair.rpt))
    steps = [lambda name=name: planner.model_ref(name) for name in names]
    steps += [
        lambda bench=bench: planner.bench_identity(bench, study.benchmark_options.get(bench.name))
        for bench in benchmarks.expand(study.benchmarks)
    ]
    for step in steps:
        try:
            step()
        except HubUnavailable as err:
            found += [] if stuck else _lines(err)
            stuck = True
        except RptError as err:
            found += [line for line in _lines(err) if line not in found]
    return found


def _lines(err: RptError) -> list[str]:
    return list(err.problems) if isinstance(err, SpecError) else [str(err)]
