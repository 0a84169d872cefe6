"""Warm Python: a forked launcher runs `python -I -S -B <script or -c code>` as that command would.

Plus the builtins that `site` adds to every normal `python3 prog.py` (exit, quit, help, copyright, ...).
"""

import atexit
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
    runs nothing else. The launcher adds them once, before it forks any run.
    """
    import site  # cheap: everything it imports is loaded already

    site.setquit()
    site.setcopyright()
    site.sethelper()


def _run_python_warm(args: list[str], env: dict[str, str]) -> NoReturn:
    """Run `python -I -S -B <args>` inside this already-started interpreter, then exit as Python would.

    Ending with os._exit after the shutdown steps a program can observe (thread joins, atexit, flushing)
    skips tearing down the launcher's modules, which would cost more than the whole run.
    """
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    os.environ.update((name, value) for name, value in env.items() if os.environ.get(name) != value)
    if args[0] == "-c":
        code, filename, sys.argv = compile(args[1], "<string>", "exec"), "<string>", ["-c", *args[2:]]
    else:
        filename, sys.argv = args[0], list(args)
        code = _load_script(filename)
    main = types.ModuleType("__main__")
    if filename != "<string>":
        main.__file__ = filename
    sys.modules["__main__"] = main
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives until exit
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1
    )
    try:
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
