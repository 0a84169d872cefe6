"""Worker processes with a hard timeout per task, for judges that may hang (math-verify on SymPy).

Why a pool of our own: math-verify bounds its time with SIGALRM, which works only on the main thread
and cannot interrupt a computation stuck in C (a bignum power, a huge factorial). A stuck task in
`concurrent.futures` cannot be killed without breaking the whole pool. Here each worker has its own
pair of pipes and one chunk of tasks in flight (consecutive tasks that share a reference, so the
worker parses that reference once and one message carries many tasks); the worker sends one result per
task as it goes, and each result restarts the clock for the next task. A task that passes its deadline
has its worker killed (SIGKILL) and replaced, and comes back as `("timeout", ...)`; the rest of its
chunk goes back to the queue. A worker that dies (a segfault from deep recursion, out of memory) is replaced
too, and its task comes back as `("crashed", ...)`. No task can stop the rest of a batch.

Workers are fresh interpreters (`python -c ...` calling `main` below), not forks and not
`multiprocessing` children: they never inherit a parent's threads or locks (MLflow, PyArrow, PyTorch),
never re-import the caller's `__main__` (so scripts need no `if __name__ == "__main__"` guard), and
get only their own two pipes. The price is about a second to start one (importing SymPy), paid once
per worker and again only when a worker is killed. Workers start lazily, only as many as a batch can
use, in parallel, and each caps its address space, so a runaway computation raises MemoryError there
instead of exhausting the host.

Limits: a worker stuck in C outlives a parent that is itself SIGKILLed until its computation ends (it
exits as soon as it next reads its pipe); a normal exit closes the pool and kills the workers.
"""

import importlib
import os
import resource
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

Outcome = tuple[str, str]
"""A judge's (status, detail); the pool adds the statuses "timeout" and "crashed"."""
Judge = Callable[[str, str], Outcome]
TIMEOUT, CRASHED = "timeout", "crashed"
CHUNK = 32
"""At most this many tasks go to a worker in one message (fewer when the queue is short, for balance)."""
STARTUP_TIMEOUT = 120.0
"""Seconds a new worker may take to import and warm up before the pool gives up (a broken install)."""
WARMUP = (("1", "1"),)
"""Tasks each worker judges before it says it is ready, so lazy set-up never counts against a task
(a pool may name its own: what exercises its judge's lazy imports and parser caches)."""
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# `-c`, not `-m`: running this module as __main__ would import it twice (the package imports it too).
_ENTRY = f"import sys; from {__name__} import main; main(sys.argv[1:])"


class PoolError(RuntimeError):
    """The workers cannot run at all: their imports fail, or they never become ready."""


def _limit_memory(memory_mb: int | None) -> None:
    """Cap this process's address space, so a runaway bignum raises MemoryError here, not OOM there.

    Linux only: macOS refuses most RLIMIT_AS values, and there the timeout alone bounds a worker.
    """
    if not memory_mb or sys.platform != "linux":
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_mb * 1024 * 1024
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _load_judge(path: str) -> Judge:
    """The function named "package.module:function"."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _judge_safely(judge: Judge, task: tuple[str, str]) -> Outcome:
    """Judge one task; any exception becomes an "error" outcome so the worker lives on."""
    try:
        return judge(*task)
    except Exception as err:  # SymPy raises anything on hostile input; one task must not end the worker
        return "error", f"{type(err).__name__}: {str(err)[:200]}"


def serve(tasks: Connection, results: Connection, judge_path: str) -> None:
    """Worker loop: warm up, say "ready", then judge chunks of tasks until the pipe closes or sends None."""
    try:
        judge = _load_judge(judge_path)
        for task in tasks.recv():  # the pool's warm-up tasks, sent first
            judge(*task)
    except Exception as err:  # e.g. math-verify not installed: tell the parent why instead of dying mute
        results.send(("failed", f"{type(err).__name__}: {err}"))
        return
    results.send(("ready", ""))
    while True:
        try:
            chunk = tasks.recv()
        except EOFError:  # the parent is gone
            return
        if chunk is None:
            return
        for task in chunk:
            results.send(_judge_safely(judge, task))


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    tasks: Connection
    results: Connection
    deadline: float
    ready: bool = False
    in_flight: deque[int] = field(default_factory=deque)
    """The batch indices sent to this worker and not yet answered, in the order it judges them."""

    @property
    def busy(self) -> bool:
        return bool(self.in_flight)

    def stop(self) -> None:
        """Kill the process outright: it may be stuck in C, where nothing gentler reaches it."""
        self.process.kill()
        self.process.wait()
        self.tasks.close()
        self.results.close()


@dataclass
class _Batch:
    tasks: Sequence[tuple[str, str]]
    timeout: float
    queue: deque[int] = field(default_factory=deque)
    results: list[Outcome | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.queue.extend(range(len(self.tasks)))
        self.results = [None] * len(self.tasks)

    def busy(self, workers: list[_Worker]) -> bool:
        return bool(self.queue) or any(worker.busy for worker in workers)

    def next_chunk(self, workers: int) -> list[int]:
        """The next queued tasks that share the first one's reference, at most a fair share of the queue."""
        size = max(1, min(CHUNK, -(-len(self.queue) // workers)))
        chunk = [self.queue.popleft()]
        key = self.tasks[chunk[0]][-1]
        while self.queue and len(chunk) < size and self.tasks[self.queue[0]][-1] == key:
            chunk.append(self.queue.popleft())
        return chunk

    def requeue(self, indices: deque[int]) -> None:
        """Put unanswered tasks back at the front of the queue, in their order."""
        self.queue.extendleft(reversed(indices))
        indices.clear()


class WorkerPool:
    """Up to `size` worker processes that judge (answer, reference) tasks with a hard timeout each.

    `judge` names a module-level function as "package.module:function"; it returns (status, detail).
    Thread-safe: batches from several threads run one after another. A forked child must make its own
    pool (`run` refuses one inherited from its parent).
    """

    def __init__(
        self,
        judge: str,
        size: int,
        *,
        memory_mb: int | None = 4096,
        warmup: Sequence[tuple[str, str]] = WARMUP,
    ) -> None:
        """Prepare the pool; no process starts until a batch needs one."""
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {size}")
        if ":" not in judge:
            raise ValueError(f"judge must be 'package.module:function', got {judge!r}")
        self.judge, self.size, self.memory_mb, self.warmup = judge, size, memory_mb, list(warmup)
        self.pid = os.getpid()
        """The process that owns the workers; a forked child must not use them."""
        self.replaced = 0
        """How many workers were killed or died and were replaced (for tests and logs)."""
        self.judged = 0
        """How many tasks this pool was given to judge (for tests and logs)."""
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, tasks: Sequence[tuple[str, str]], timeout: float) -> list[Outcome]:
        """Judge every task, each within `timeout` seconds of compute, in the order given."""
        if os.getpid() != self.pid:
            raise PoolError("this worker pool belongs to the parent process; make a new one after fork")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        batch = _Batch(tasks, timeout)
        self.judged += len(tasks)
        with self._lock:
            try:
                while len(self._workers) < min(self.size, len(tasks)):
                    self._workers.append(self._start())
                while batch.busy(self._workers):
                    self._dispatch(batch)
                    self._wait(batch)
            finally:  # after Ctrl-C or an error, a late answer must not land in the next batch
                for worker in [worker for worker in self._workers if worker.busy]:
                    self._workers.remove(worker)
                    worker.stop()
        missing = [index for index, result in enumerate(batch.results) if result is None]
        if missing:  # would be a bug in the loop above; never hand back a shorter list
            raise PoolError(f"{len(missing)} tasks got no outcome, the first is task {missing[0]}")
        return [result for result in batch.results if result is not None]

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the live workers have used, from /proc; 0.0 where there is none.

        For throughput measurements on a busy machine, where CPU time says more than wall time.
        """
        total = 0.0
        for worker in list(self._workers):
            try:
                fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def close(self) -> None:
        """Ask idle workers to exit and kill the rest; the pool starts new ones if used again."""
        if os.getpid() != self.pid:  # a forked child's atexit must not kill its parent's workers
            return
        with self._lock:
            for worker in self._workers:
                if worker.ready and not worker.busy:
                    self._ask_to_exit(worker)
                worker.stop()
            self._workers.clear()

    @staticmethod
    def _ask_to_exit(worker: _Worker) -> None:
        try:
            worker.tasks.send(None)
        except (BrokenPipeError, ConnectionResetError):  # it died on its own meanwhile; stop() reaps it
            return
        try:
            worker.process.wait(1)
        except subprocess.TimeoutExpired:  # still busy: stop() kills it
            return

    def _start(self) -> _Worker:
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        path = os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
        args = [self.judge, str(task_read), str(result_write), str(self.memory_mb or 0)]
        command = [sys.executable, "-c", _ENTRY, *args]
        process = subprocess.Popen(
            command,
            pass_fds=(task_read, result_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,  # Ctrl-C reaches the parent, which stops the workers itself
        )
        os.close(task_read)
        os.close(result_write)
        tasks, results = Connection(task_write, readable=False), Connection(result_read, writable=False)
        tasks.send(self.warmup)  # small: fits the pipe's buffer, so this never waits for the worker
        return _Worker(process, tasks, results, deadline=time.monotonic() + STARTUP_TIMEOUT)

    def _replace(self, worker: _Worker) -> None:
        worker.stop()
        self._workers[self._workers.index(worker)] = self._start()
        self.replaced += 1

    def _dispatch(self, batch: _Batch) -> None:
        for worker in list(self._workers):
            if not (worker.ready and not worker.busy and batch.queue):
                continue
            chunk = batch.next_chunk(len(self._workers))
            try:
                worker.tasks.send([batch.tasks[index] for index in chunk])
            except (BrokenPipeError, ConnectionResetError):  # it died while idle: requeue and replace
                batch.requeue(deque(chunk))
                self._replace(worker)
                continue
            worker.in_flight.extend(chunk)
            worker.deadline = time.monotonic() + batch.timeout

    def _wait(self, batch: _Batch) -> None:
        """Take every answer that arrives before the nearest deadline, then kill what is overdue."""
        waiting = [worker for worker in self._workers if worker.busy or not worker.ready]
        if not waiting:
            return
        delay = max(0.0, min(worker.deadline for worker in waiting) - time.monotonic())
        arrived = set(wait([worker.results for worker in waiting], delay))
        for worker in waiting:
            if worker.results in arrived:
                self._receive(worker, batch)
                while worker.busy and worker in self._workers and worker.results.poll():
                    self._receive(worker, batch)  # the rest of a chunk's results, already there
            elif time.monotonic() >= worker.deadline:
                self._overdue(worker, batch)

    def _receive(self, worker: _Worker, batch: _Batch) -> None:
        try:
            status, detail = worker.results.recv()
        except (EOFError, ConnectionResetError):
            self._died(worker, batch)
            return
        if worker.busy:
            batch.results[worker.in_flight.popleft()] = (status, detail)
            worker.deadline = time.monotonic() + batch.timeout  # the clock restarts for its next task
        elif status == "ready":
            worker.ready = True
        else:
            raise PoolError(f"math worker failed to start: {detail}")

    def _died(self, worker: _Worker, batch: _Batch) -> None:
        code = worker.process.wait()
        if not worker.busy:
            raise PoolError(f"math worker died while starting (exit code {code}); see its stderr above")
        batch.results[worker.in_flight.popleft()] = (CRASHED, f"worker died (exit code {code})")
        batch.requeue(worker.in_flight)
        self._replace(worker)

    def _overdue(self, worker: _Worker, batch: _Batch) -> None:
        if not worker.busy:
            raise PoolError(f"math worker not ready after {STARTUP_TIMEOUT:.0f} s")
        batch.results[worker.in_flight.popleft()] = (
            TIMEOUT,
            f"no verdict within {batch.timeout:g} s; worker killed",
        )
        batch.requeue(worker.in_flight)
        self._replace(worker)


def main(argv: Sequence[str]) -> None:
    """Worker entry point, given JUDGE TASK_FD RESULT_FD MEMORY_MB (see `_ENTRY`)."""
    judge_path, task_fd, result_fd, memory_mb = argv
    _limit_memory(int(memory_mb))
    serve(Connection(int(task_fd), writable=False), Connection(int(result_fd), readable=False), judge_path)
