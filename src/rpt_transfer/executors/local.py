"""Local executor: the plan's jobs as subprocesses on one machine, at most `workers` at a time.

Each job runs as `rpt-transfer job run ID --plan PLAN`, exactly as in an Argo pod, so a crash in one job
cannot take the executor down, and a killed executor takes its jobs with it (Linux parent-death signal).
A job whose manifest exists is not started again, which is all that resuming needs.
"""

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
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


def command(job_id: str, plan_uri: str) -> list[str]:
    """`job_argv` with `rpt-transfer` resolved to this interpreter's installation."""
    argv = job_argv(job_id, plan_uri)
    script = Path(sys.executable).with_name("rpt-transfer")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "rpt_transfer"]
    return head + argv[1:]


class _Running:
    """A job's process, the thread reading its progress lines, and its log."""

    def __init__(self, job: Job, plan_uri: str, log: Path, env: dict[str, str], progress: Progress) -> None:
        self.job, self.log, self.started = job, log, time.monotonic()
        self.task: TaskID = progress.add_task(_label(job), total=None)
        self._log_file = log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            command(job.id, plan_uri),
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
        for line in self.process.stdout:
            parsed = parse_progress(line)
            if parsed is None:
                self._log_file.write(line)
                continue
            done, total, label = parsed
            progress.update(self.task, completed=done, total=total or None, description=_short(label))

    def finish(self) -> Outcome:
        self.reader.join()
        self._log_file.close()
        seconds = time.monotonic() - self.started
        if self.process.returncode == 0:
            return Outcome(self.job, JobState.DONE, seconds, self.log)
        tail = deque(self.log.read_text(encoding="utf-8", errors="replace").splitlines(), maxlen=_TAIL_LINES)
        last = next((line for line in reversed(tail) if line.strip()), f"exit code {self.process.returncode}")
        return Outcome(self.job, JobState.FAILED, seconds, self.log, last.strip())


def _label(job: Job) -> str:
    context = job.context
    what = " × ".join(str(context[k]) for k in ("model", "benchmark") if k in context) or context.get(
        "study", ""
    )
    return _short(f"{job.kind} {what}")


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class LocalExecutor(Executor):
    """Runs jobs as local subprocesses on a bounded pool, in dependency order."""

    def __init__(self, store: Store, workers: int, log_dir: Path, console: Console | None = None) -> None:
        self.store, self.workers, self.log_dir = store, max(1, workers), log_dir
        self.console = console or Console(stderr=True)
        self.plan: Plan | None = None
        self.plan_uri = ""
        self.states: dict[str, JobState] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.running: dict[str, _Running] = {}

    def submit(self, plan: Plan, plan_uri: str) -> None:
        """Record the plan and mark jobs whose manifest exists as cached."""
        self.plan, self.plan_uri = plan, plan_uri
        for job in plan.jobs:
            cached = self.store.is_done(job.key)
            self.states[job.id] = JobState.CACHED if cached else JobState.PENDING
            if cached:
                self.outcomes[job.id] = Outcome(job, JobState.CACHED)

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
            for job in self._ready()[: self.workers - len(self.running)]:
                self.states[job.id] = JobState.RUNNING
                log = self.log_dir / f"{job.kind}-{job.id}.log"
                self.running[job.id] = _Running(job, self.plan_uri, log, env, progress)
            if not self.running:
                return
            self._reap(progress)
            time.sleep(0.05)

    def _ready(self) -> list[Job]:
        assert self.plan is not None
        ok = {JobState.DONE, JobState.CACHED}
        return [
            job
            for job in self.plan.jobs
            if self.states[job.id] is JobState.PENDING and all(self.states[d] in ok for d in job.deps)
        ]

    def _block_dependents(self) -> None:
        assert self.plan is not None
        bad = {JobState.FAILED, JobState.BLOCKED}
        for job in self.plan.jobs:
            if self.states[job.id] is JobState.PENDING and any(self.states[d] in bad for d in job.deps):
                self.states[job.id] = JobState.BLOCKED
                self.outcomes[job.id] = Outcome(job, JobState.BLOCKED, message="a dependency failed")

    def _reap(self, progress: Progress) -> None:
        for job_id, running in list(self.running.items()):
            if running.process.poll() is None:
                continue
            outcome = running.finish()
            del self.running[job_id]
            progress.remove_task(running.task)
            self.states[job_id], self.outcomes[job_id] = outcome.state, outcome
            mark = "[green]done[/]" if outcome.state is JobState.DONE else "[red]FAILED[/]"
            detail = f": {outcome.message} (log: {outcome.log})" if outcome.message else ""
            progress.console.print(
                f"{mark} {_label(outcome.job)} [dim]{outcome.job.id}[/] {outcome.seconds:.1f}s{detail}"
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
