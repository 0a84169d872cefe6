"""Local executor: the plan's jobs as subprocesses on one machine, at most `workers` at a time.

Each job runs as `rpt-transfer job run ID --plan PLAN`, exactly as in an Argo pod, so a crash in one job
cannot take the executor down, and a killed executor takes its jobs with it (Linux parent-death signal).
A job whose manifest exists is not started again, which is all that resuming needs.

The generate jobs of one group (`plan.group_key`: one model, backend and engine settings) run as one
process, `rpt-transfer job run ID1 ID2 ... --plan PLAN`, so the model is loaded once for all of them, as
in an Argo pod that is given the group. Each job still gets its own outcome.
"""

import ctypes
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from rpt_transfer.cpus import CPUS_ENV, available_cpus
from rpt_transfer.executors.base import FINISHED, Executor, JobState, Outcome, job_argv
from rpt_transfer.jobs.progress import PROGRESS_ENV, parse_progress
from rpt_transfer.plan import Job, Plan
from rpt_transfer.settings import STORE_ENV, TRACKING_ENV
from rpt_transfer.store import Store

_PR_SET_PDEATHSIG = 1
_TAIL_LINES = 20


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the job when the executor dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def command(job_ids: str | Sequence[str], plan_uri: str) -> list[str]:
    """`job_argv` with `rpt-transfer` resolved to this interpreter's installation."""
    argv = job_argv(job_ids, plan_uri)
    script = Path(sys.executable).with_name("rpt-transfer")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "rpt_transfer"]
    return head + argv[1:]


class _Running:
    """One process running one job or a group's jobs, the thread reading its progress lines, and its log."""

    def __init__(
        self, jobs: list[Job], plan_uri: str, log: Path, env: dict[str, str], progress: Progress
    ) -> None:
        self.jobs, self.log, self.started = jobs, log, time.monotonic()
        self.label = _label(jobs[0]) if len(jobs) == 1 else _group_label(jobs)
        self.task: TaskID = progress.add_task(self.label, total=None)
        self._log_file = log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            command([job.id for job in jobs], plan_uri),
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            preexec_fn=_die_with_parent,
        )
        self.reader = threading.Thread(target=self._read, args=(progress,), daemon=True)
        self.reader.start()

    def _read(self, progress: Progress) -> None:
        assert self.process.stdout is not None
        bar = _GroupBar(self.jobs) if len(self.jobs) > 1 else None
        for line in self.process.stdout:
            parsed = parse_progress(line)
            if parsed is None:
                self._log_file.write(line)
                continue
            done, total, label = parsed
            if bar is None:
                progress.update(self.task, completed=done, total=total or None, description=_short(label))
            else:
                progress.update(self.task, completed=bar.update(done, total, label), total=bar.total)

    def finish(self, store: Store) -> list[Outcome]:
        """Each job's outcome; a group's time is shared evenly among its jobs (the summary adds them up).

        A lone job succeeded when its process did. In a group, a job's `failed:` line makes it failed, else
        its manifest in the store makes it done (the process may have died before printing its lines).
        """
        self.reader.join()
        self._log_file.close()
        seconds = (time.monotonic() - self.started) / len(self.jobs)
        if self.process.returncode == 0:
            return [Outcome(job, JobState.DONE, seconds, self.log) for job in self.jobs]
        text = self.log.read_text(encoding="utf-8", errors="replace")
        tail = deque(text.splitlines(), maxlen=_TAIL_LINES)
        last = next((line for line in reversed(tail) if line.strip()), f"exit code {self.process.returncode}")
        failed = _failed_lines(text)
        grouped = len(self.jobs) > 1
        return [
            Outcome(job, JobState.DONE, seconds, self.log)
            if grouped and job.id not in failed and store.is_done(job.key)
            else Outcome(job, JobState.FAILED, seconds, self.log, failed.get(job.id, last.strip()))
            for job in self.jobs
        ]


class _GroupBar:
    """One bar for a group's jobs: the sum of their samples, as the jobs report them one after another.

    A job's progress starts again from 0 (or under a new label) when the next job of the group begins.
    """

    def __init__(self, jobs: list[Job]) -> None:
        self.total = sum(job.context.get("items", 0) * job.inputs["sampling"]["n"] for job in jobs) or None
        self._finished = 0
        self._current = (0, 0, "")

    def update(self, done: int, total: int, label: str) -> int:
        """Samples done over the whole group after one progress line of the current job."""
        before_done, before_total, before_label = self._current
        if label != before_label or done < before_done:
            self._finished += before_total
        self._current = (done, total, label)
        return self._finished + done


def _failed_lines(log_text: str) -> dict[str, str]:
    """Job id → reason, from the `job ID: failed: why` lines that `job run ID ID ...` prints at its end."""
    reasons = {}
    for line in log_text.splitlines():
        head, sep, reason = line.partition(": failed: ")
        if sep and head.startswith("job ") and " " not in head[4:]:
            reasons[head[4:]] = reason.strip()
    return reasons


def _label(job: Job) -> str:
    context = job.context
    what = " × ".join(str(context[k]) for k in ("model", "benchmark") if k in context) or context.get(
        "study", ""
    )
    return _short(f"{job.kind} {what}")


def _group_label(jobs: list[Job]) -> str:
    """A group's bar: "generate base × 3 benchmarks" (and its job count when shards make it more)."""
    benchmarks = len({job.context.get("benchmark") for job in jobs})
    what = f"{benchmarks} benchmark{'s' if benchmarks != 1 else ''}"
    if len(jobs) != benchmarks:
        what += f", {len(jobs)} jobs"
    return _short(f"{jobs[0].kind} {jobs[0].context.get('model', '')} × {what}")


def _log_name(jobs: list[Job]) -> str:
    """`<kind>-<id>.log` for a lone job, `generate-group-<first id>.log` for a group's process."""
    first = jobs[0]
    return f"{first.kind}-{first.id}.log" if len(jobs) == 1 else f"{first.kind}-group-{first.id}.log"


def _split(jobs: list[Job], parts: int) -> list[list[Job]]:
    """`jobs` in at most `parts` runs of consecutive jobs, as even as can be."""
    size = math.ceil(len(jobs) / max(1, parts))
    return [jobs[start : start + size] for start in range(0, len(jobs), size)]


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class LocalExecutor(Executor):
    """Runs jobs as local subprocesses on a bounded pool, in dependency order (a group's in one process)."""

    def __init__(self, store: Store, workers: int, log_dir: Path, console: Console | None = None) -> None:
        self.store, self.workers, self.log_dir = store, max(1, workers), log_dir
        self.console = console or Console(stderr=True)
        self.plan: Plan | None = None
        self.plan_uri = ""
        self.states: dict[str, JobState] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.running: dict[str, _Running] = {}
        self.units: list[list[Job]] = []

    def submit(self, plan: Plan, plan_uri: str) -> None:
        """Record the plan and mark jobs whose manifest exists as cached."""
        self.plan, self.plan_uri = plan, plan_uri
        for job in plan.jobs:
            cached = self.store.is_done(job.key)
            self.states[job.id] = JobState.CACHED if cached else JobState.PENDING
            if cached:
                self.outcomes[job.id] = Outcome(job, JobState.CACHED)
        self.units = self._units(plan)

    def _units(self, plan: Plan) -> list[list[Job]]:
        """What each process runs, in plan order: a group's pending generate jobs together, else one job.

        With fewer groups than workers, each group is split into `workers // groups` runs of consecutive
        jobs, so that workers do not idle behind one model. Each run loads the model once: more loads than
        one per group, never more than one per job (as before groups), and decided once, at submit, so the
        same plan and workers always give the same processes.
        """
        pending = {job.id for job in plan.jobs if self.states[job.id] is JobState.PENDING}
        groups = [kept for group in plan.groups() if (kept := [job for job in group if job.id in pending])]
        parts = max(1, self.workers // max(1, len(groups)))
        units = [run for group in groups for run in _split(group, parts)]
        grouped = {job.id for group in groups for job in group}
        units += [[job] for job in plan.jobs if job.id in pending and job.id not in grouped]
        order = {job.id: index for index, job in enumerate(plan.jobs)}
        return sorted(units, key=lambda unit: order[unit[0].id])

    def status(self) -> dict[str, JobState]:
        """State of every job by id."""
        return dict(self.states)

    def cancel(self) -> None:
        """Terminate running jobs (SIGTERM, then SIGKILL after 5 s); they leave no manifest."""
        for running in self.running.values():
            running.process.terminate()
        deadline = time.monotonic() + 5
        for running in self.running.values():
            try:
                running.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait()

    def wait(self) -> list[Outcome]:
        """Run every pending job; returns outcomes in plan order."""
        assert self.plan is not None, "submit a plan first"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self._child_env()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        ) as progress:
            overall = progress.add_task("all jobs", total=len(self.plan.jobs))
            try:
                self._loop(progress, overall, env)
            except BaseException:
                self.cancel()
                raise
        return [self.outcomes[job.id] for job in self.plan.jobs]

    def _loop(self, progress: Progress, overall: TaskID, env: dict[str, str]) -> None:
        assert self.plan is not None
        while True:
            self._block_dependents()
            progress.update(overall, completed=sum(s in FINISHED for s in self.states.values()))
            for jobs in self._ready()[: self.workers - len(self.running)]:
                for job in jobs:
                    self.states[job.id] = JobState.RUNNING
                log = self.log_dir / _log_name(jobs)
                self.running[jobs[0].id] = _Running(jobs, self.plan_uri, log, env, progress)
            if not self.running:
                return
            self._reap(progress)
            time.sleep(0.05)

    def _ready(self) -> list[list[Job]]:
        """Units whose pending jobs (those not blocked meanwhile) have every dependency done."""
        ok = {JobState.DONE, JobState.CACHED}
        ready = []
        for unit in self.units:
            jobs = [job for job in unit if self.states[job.id] is JobState.PENDING]
            if jobs and all(self.states[dep] in ok for job in jobs for dep in job.deps):
                ready.append(jobs)
        return ready

    def _block_dependents(self) -> None:
        assert self.plan is not None
        bad = {JobState.FAILED, JobState.BLOCKED}
        for job in self.plan.jobs:
            if self.states[job.id] is JobState.PENDING and any(self.states[d] in bad for d in job.deps):
                self.states[job.id] = JobState.BLOCKED
                self.outcomes[job.id] = Outcome(job, JobState.BLOCKED, message="a dependency failed")

    def _reap(self, progress: Progress) -> None:
        for unit_id, running in list(self.running.items()):
            if running.process.poll() is None:
                continue
            del self.running[unit_id]
            progress.remove_task(running.task)
            for outcome in running.finish(self.store):
                job_id = outcome.job.id
                self.states[job_id], self.outcomes[job_id] = outcome.state, outcome
                mark = "[green]done[/]" if outcome.state is JobState.DONE else "[red]FAILED[/]"
                detail = f": {outcome.message} (log: {outcome.log})" if outcome.message else ""
                progress.console.print(
                    f"{mark} {_label(outcome.job)} [dim]{job_id}[/] {outcome.seconds:.1f}s{detail}"
                )

    def _child_env(self) -> dict[str, str]:
        """Jobs report progress as JSON lines and share the available CPUs instead of each taking all of them.

        RPT_CPUS tells each job its share, which its own pools (sandbox, math, torch) size themselves from.
        RPT_STORE and MLFLOW_TRACKING_URI are cleared: inside a job they override the plan's addresses (for
        pods), and a local run must use the store and MLflow its spec named, whatever the user's shell says.
        """
        threads = str(max(1, available_cpus() // self.workers))
        inherited = {k: v for k, v in os.environ.items() if k not in (STORE_ENV, TRACKING_ENV)}
        return {
            **inherited,
            PROGRESS_ENV: "jsonl",
            "PYTHONUNBUFFERED": "1",
            CPUS_ENV: threads,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "TOKENIZERS_PARALLELISM": "false",
        }
