"""Warm Python: a forked launcher runs `python -I -S -B <script or -c code>` as that command would.

Plus the builtins that `site` adds to every normal `python3 prog.py` (exit, quit, help, copyright, ...).
What is the same for every run is made once in the launcher, before it forks (`WarmStart`): each page a
forked run touches costs it a fault, so work done in every run costs far more than the same work done
once in the launcher.
"""

import atexit
import gc
import importlib.util
import marshal
import os
import sys
import types
from typing import NoReturn


def _add_site_builtins() -> None:
    """Add exit, quit, help, copyright, credits and license to builtins, as `site` does at start-up.

    Programs written for `python3 prog.py` end with `exit()` or `quit()`; under -S they would die with a
    NameError. Only these builtins: site-packages stay out of sys.path (-S), and importing `site` under -S
    runs nothing else.
    """
    import site  # cheap: everything it imports is loaded already

    site.setquit()
    site.setcopyright()
    site.sethelper()


class WarmStart:
    """What every warm run starts from, made once in the launcher before it forks any run.

    - The builtins `site` adds (`_add_site_builtins`).
    - The AST node types: CPython builds them (about a hundred classes) on the first `compile` in a
      process; built here, no run that compiles pays for them.
    - The environment: the launcher's own (`launcher._sandbox_env`) with the working directory as HOME and
      TMPDIR, which is what most runs ask for.
    - The standard streams: text files on descriptors 0, 1 and 2, made while those are pipes, as they
      are in every run, so each run only installs them.
    - Compiled `-c` programs the host marked as its own (`cache_code`): compiled here once, never in
      each run, and their text crosses the socket once. Only the host's programs: model-written text
      is never compiled outside the sandbox.
    """

    def __init__(self, workdir: str | None) -> None:
        """`workdir`: every run's working directory when it is always the same (namespaces: /tmp)."""
        _add_site_builtins()
        if workdir is not None:  # a run's HOME and TMPDIR (`child._isolate`), so runs need not set them
            os.environ.update(HOME=workdir, TMPDIR=workdir)
        self.environment = dict(os.environ)
        """The environment every run inherits; a run whose own differs changes it."""
        compile("", "<warm>", "exec")
        self.streams = _streams_made_on_pipes()
        self._programs: dict[int, types.CodeType | str] = {}
        gc.freeze()  # what the launcher made stays out of the runs' collections: fewer copied pages

    def hold(self, request: dict) -> None:
        """In the launcher, before the fork: keep a new `cache_code` program, compiled once.

        The host sends a program's text once, with a new id (`Launcher._program`), then only the id.
        A program that does not compile is kept as text and put back in the command: each run compiles
        it and reports the error as `python -c` would.
        """
        program = request.get("program")
        if program is None:
            return
        at = len(request["warm"]) + 1  # where the command holds the text (empty once sent)
        if program.get("new"):
            text = request["cmd"][at]
            try:
                self._programs[program["id"]] = compile(text, "<string>", "exec")
            except (SyntaxError, ValueError):
                self._programs[program["id"]] = text
            gc.freeze()
        kept = self._programs[program["id"]]
        if isinstance(kept, str):
            request["cmd"][at] = kept

    def compiled(self, request: dict) -> types.CodeType | None:
        """In the run: the request's program as `hold` compiled it, else None (the run compiles)."""
        program = request.get("program")
        kept = self._programs.get(program["id"]) if program else None
        return kept if isinstance(kept, types.CodeType) else None


def _open_streams() -> tuple:
    """Text files on descriptors 0, 1 and 2 as `python` makes them in this environment.

    Encoding, error handler and names are those this interpreter chose for its own streams (the launcher
    runs with the runs' environment); stderr is line-buffered, as in every Python since 3.9.
    """
    streams = []
    for fd, model in enumerate((sys.__stdin__, sys.__stdout__, sys.__stderr__)):
        stream = open(  # noqa: SIM115 - it lives as long as the process
            fd,
            "w" if fd else "r",
            encoding=model.encoding if model else "utf-8",
            errors=model.errors if model else None,
            closefd=False,
            buffering=1 if fd == 2 else -1,
        )
        stream.buffer.raw.name = model.name if model else ("<stdin>", "<stdout>", "<stderr>")[fd]
        streams.append(stream)
    return tuple(streams)


def _streams_made_on_pipes() -> tuple:
    """`_open_streams` while descriptors 0-2 are pipes, as in a run; then the launcher's own are back.

    A text file remembers at creation whether its descriptor could seek and its block size; made on
    the launcher's /dev/null they would claim to seek. The launcher never writes to them, so every run
    inherits them empty.
    """
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    read, write = os.pipe()
    try:
        for fd, end in ((0, read), (1, write), (2, write)):
            os.dup2(end, fd)
        return _open_streams()
    finally:
        for fd, original in enumerate(saved):
            os.dup2(original, fd)
            os.close(original)
        os.close(read)
        os.close(write)


def _run_python_warm(
    args: list[str], env: dict[str, str], warm: WarmStart, compiled: types.CodeType | None
) -> NoReturn:
    """Run `python -I -S -B <args>` inside this already-started interpreter, then exit as Python would.

    `compiled`: the `-c` code compiled by the launcher (`WarmStart.hold`), else None. Ending with
    os._exit after the shutdown steps a program can observe (thread joins, atexit, flushing) skips
    tearing down the launcher's modules, which would cost more than the whole run.
    """
    if env != warm.environment:  # most runs have the environment the launcher set up for them
        for name in [name for name in os.environ if name not in env]:
            del os.environ[name]
        os.environ.update((name, value) for name, value in env.items() if os.environ.get(name) != value)
    command = args[0] == "-c"
    sys.argv = ["-c", *args[2:]] if command else list(args)
    main = types.ModuleType("__main__")
    if not command:
        main.__file__ = args[0]
    sys.modules["__main__"] = main
    sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = warm.streams
    try:  # a program that does not compile is reported as `python` reports it
        code = (compiled or compile(args[1], "<string>", "exec")) if command else _load_script(args[0])
        exec(code, main.__dict__)  # this is the sandboxed program
        status = 0
    except SystemExit as exit_:
        status = _exit_status(exit_)
    except BaseException as err:  # report like the interpreter: traceback, exit status 1
        import traceback  # only now (the launcher preloads it); see the note in `server`

        traceback.print_exception(type(err), err, err.__traceback__.tb_next if err.__traceback__ else None)
        status = 1
    _shut_down(status)


def _load_script(filename: str) -> types.CodeType:
    """The script's code: compiled source, or for a .pyc file (as `python file.pyc` runs) its bytecode."""
    with open(filename, "rb") as script:
        data = script.read()
    if filename.endswith(".pyc") and data[:4] == importlib.util.MAGIC_NUMBER:
        return marshal.loads(data[16:])
    return compile(data, filename, "exec")


def _exit_status(exit_: SystemExit) -> int:
    """The status `python` exits with for this SystemExit (a non-integer is printed, status 1)."""
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code & 0xFF
    print(exit_.code, file=sys.stderr)
    return 1


def _shut_down(code: int) -> NoReturn:
    """Join non-daemon threads, run atexit handlers, flush the streams, then leave at once."""
    threads = sys.modules.get("threading")
    if threads is not None:
        threads._shutdown()  # what interpreter exit does: wait for non-daemon threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: Python then exits with 120
            code = code or 120
    os._exit(code)
