"""Call the `rpt-transfer` entry point in this process: the fuzz test runs it hundreds of times in seconds."""

import sys
from typing import NamedTuple

import pytest

from rpt_transfer.cli import main


class CliResult(NamedTuple):
    """What a user would see: the exit code and both output streams."""

    returncode: int
    stdout: str
    stderr: str


def call_cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """Run `rpt-transfer ARGS` through `rpt_transfer.cli.main`, exactly as the console script does."""
    capsys.readouterr()  # drop what came before
    saved = sys.argv
    sys.argv = ["rpt-transfer", *args]
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code
    else:  # main always exits
        raise AssertionError("rpt_transfer.cli.main returned instead of exiting")
    finally:
        sys.argv = saved
    captured = capsys.readouterr()
    return CliResult(
        code if isinstance(code, int) else (0 if code is None else 1), captured.out, captured.err
    )


def error_lines(stderr: str) -> list[str]:
    """The `error:` lines of a command's stderr."""
    return [line for line in stderr.splitlines() if line.startswith("error: ")]
