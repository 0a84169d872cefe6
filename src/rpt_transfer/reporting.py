"""What `rpt-transfer report` does: re-render reports from the store, without scoring anything again.

The plan is the study's current one in the store (`current_plan`: the plan `prepare` wrote last), the
numbers are the score parquet files of its finished score jobs, and the analysis is the aggregate job's
own (`jobs.aggregate` readers and `analysis.write_report`), so a re-rendered report shows the numbers the
job would. Several studies give one report each plus a side-by-side comparison (`analysis.compare`).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from rpt_transfer.analysis.compare import write_comparison
from rpt_transfer.analysis.report import ReportResult, write_report
from rpt_transfer.errors import RptError
from rpt_transfer.hashing import short_hash
from rpt_transfer.jobs.aggregate import evaluation_settings, read_scores, study_pairs, study_provenance
from rpt_transfer.plan import Plan
from rpt_transfer.runner import current_plan, load_and_resolve
from rpt_transfer.store import Store

RENDERED = "rendered"
"""Folder under `reports/<study>/` of a local store that `report` writes to by default (not a job)."""
MAX_LISTED = 5


@dataclass
class Rendered:
    """Where the reports went, and the warnings to print."""

    reports: dict[str, Path] = field(default_factory=dict)
    comparison: Path | None = None
    warnings: list[str] = field(default_factory=list)


def render_reports(study_files: list[Path], out_dir: Path | None) -> Rendered:
    """One report per study; with several studies, also a comparison of them side by side.

    With one study the report goes to `out_dir` (default `<store>/reports/<study>/rendered`); with
    several, each goes to `out_dir/<study>/` and the comparison to `out_dir` (default
    `<store of the first>/reports/compare-<hash of the names>/`).
    """
    if not study_files:
        raise RptError("report: name at least one study file")
    loaded = [_load(path) for path in study_files]
    names = [plan.study for plan, _, _ in loaded]
    if len(set(names)) != len(names):
        raise RptError(f"report: the same study given twice ({', '.join(names)}); accepted: distinct studies")
    first = loaded[0][1]
    if len(loaded) == 1:
        base = out_dir or _default_dir(first, f"reports/{names[0]}/{RENDERED}")
        targets = {names[0]: base}
    else:
        base = out_dir or _default_dir(first, f"reports/compare-{short_hash(names)[:8]}")
        targets = {name: base / name for name in names}
    rendered = Rendered()
    results: dict[str, ReportResult] = {}
    for plan, store, warnings in loaded:
        results[plan.study] = _render(plan, store, warnings, targets[plan.study])
        rendered.reports[plan.study] = targets[plan.study] / "report.html"
        rendered.warnings += [f"{plan.study}: {line}" for line in results[plan.study].warnings]
    if len(loaded) > 1:
        links = {study: os.path.relpath(path, base) for study, path in rendered.reports.items()}
        analyses = {study: result.analysis for study, result in results.items() if result.analysis}
        metrics = {study: result.metrics for study, result in results.items()}
        write_comparison(analyses, metrics, links, base)
        rendered.comparison = base / "compare.html"
    return rendered


def _load(path: Path) -> tuple[Plan, Store, list[str]]:
    """The stored plan of the study in `path`, its store, and warnings about how it was found."""
    spec = load_and_resolve(path, check_store=False, runnable=False)
    store = spec.store
    plan = current_plan(store, spec.study.study)
    warnings = []
    if plan.spec_sha != spec.study.digest():  # as make_plan; no Hub needed
        warnings.append(
            f"the stored plan was made from another version of {path} (or of rpt-transfer); the report "
            "shows the stored plan's jobs (run the study again to bring it up to date)"
        )
    return plan, store, warnings


def _render(plan: Plan, store: Store, warnings: list[str], target: Path) -> ReportResult:
    """Read the finished score jobs of a stored plan and write its report into `target`."""
    scores = [job for job in plan.jobs if job.kind == "score"]
    aggregate = next(job for job in plan.jobs if job.kind == "aggregate")
    done = [job for job in scores if store.is_done(job.key)]
    if not done:
        raise RptError(
            f"study {plan.study!r}: none of its {len(scores)} score jobs is finished in store {store.uri}; "
            "nothing to report (run the study first)"
        )
    missing = [job for job in scores if job not in done]
    if missing:
        cells = ", ".join(f"{j.context['model']} × {j.context['benchmark']}" for j in missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        warnings = [
            *warnings,
            f"{len(missing)} of {len(scores)} score jobs are not finished and left out: {cells}{more}",
        ]
    provenance = {**study_provenance(plan, aggregate, done), "rendered_by": "rpt-transfer report"}
    return write_report(
        study=plan.study,
        scores=read_scores(plan, store, done),
        pairs=study_pairs(aggregate),
        provenance=provenance,
        out_dir=target,
        settings=evaluation_settings(plan, done),
        kind=aggregate.context.get("kind", "observational"),
        extra_warnings=warnings,
    )


def _default_dir(store: Store, key: str) -> Path:
    """A folder in a local store; a remote store has none, so the user must say where."""
    root = store.local_path()
    if root is None:
        raise RptError(f"store {store.uri} is not a local folder: give --out DIR for the report")
    return root / key
