"""What every module of the `rpt-transfer` command shares: its two consoles and the study argument."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console(highlight=False, soft_wrap=True, emoji=False)  # `:name:` in a user's value stays as written
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

StudyArg = Annotated[Path, typer.Argument(help="Study spec (YAML).", show_default=False)]
