"""Run the installed OpenRLHF's own `train_ppo_ray` argument handling, without ray, deepspeed or GPUs.

`openrlhf/cli/train_ppo_ray.py` builds its parser and checks the parsed flags under
`if __name__ == "__main__":`, after module-level imports of ray and the trainer. This takes exactly that
block from the installed file (read, never imported), and runs it with `parse_args()` given our argv and
`train(args)` replaced by a function of the caller's: so the real parser refuses an unknown flag or choice
(`SystemExit` 2) and the real assertions run on the real parsed `args`.

The installed wheel is found through its distribution metadata, so this works whether or not a fake
`openrlhf` package shadows the real one on `sys.path`.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def installed_file(relative: str) -> Path:
    """A file of the installed OpenRLHF wheel (e.g. `openrlhf/cli/train_ppo_ray.py`)."""
    path = Path(str(importlib.metadata.distribution("openrlhf").locate_file(relative)))
    if not path.is_file():
        raise FileNotFoundError(f"{relative} is not in the installed openrlhf")
    return path


def _main_block(source: Path) -> list[ast.stmt]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            return node.body
    raise ValueError(f"{source}: no `if __name__ == '__main__':` block")


class _ArgvInto(ast.NodeTransformer):
    """`parser.parse_args()` becomes `parser.parse_args(__argv__)`."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "parse_args" and not node.args:
            node.args = [ast.Name("__argv__", ast.Load())]
        return node


def _hierarchize(args: argparse.Namespace) -> SimpleNamespace:
    namespace: dict[str, Any] = {}
    exec(installed_file("openrlhf/utils/config.py").read_text(encoding="utf-8"), namespace)
    return namespace["hierarchize"](args)


def run_main(argv: list[str], train: Callable[[Any], None]) -> None:
    """OpenRLHF's `__main__` block on `argv`, calling `train(args)` where it would train."""
    body = _main_block(installed_file("openrlhf/cli/train_ppo_ray.py"))
    body = [_without_config_import(stmt) for stmt in body]
    module = ast.fix_missing_locations(_ArgvInto().visit(ast.Module(body=body, type_ignores=[])))
    namespace = {
        "__name__": "openrlhf_main",
        "__argv__": argv,
        "argparse": argparse,
        "datetime": datetime,
        "os": os,
        "train": train,
        "hierarchize": _hierarchize,
    }
    exec(compile(module, "train_ppo_ray.py:__main__", "exec"), namespace)


def _without_config_import(statement: ast.stmt) -> ast.stmt:
    """Drop `from openrlhf.utils.config import hierarchize` (its package imports torch); ours is bound."""
    if isinstance(statement, ast.ImportFrom) and statement.module == "openrlhf.utils.config":
        return ast.Pass()
    return statement
