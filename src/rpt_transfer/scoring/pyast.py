"""Python source to AST and back, safe to call from several scoring threads at once.

CPython before 3.11.8 keeps the recursion-depth bookkeeping of its AST conversion in global state, so two
threads parsing or compiling at once can fail with "SystemError: AST constructor recursion depth mismatch"
(CPython gh-106905). Scoring runs in a thread pool, so every conversion of ours goes through one lock here,
and code that calls a library which parses (``inspect.getsource``) holds `LOCK` around it.
"""

import ast
import threading
from types import CodeType

LOCK = threading.RLock()
"""Held around every AST conversion the scorers make; re-entrant, so a holder may call `parse`."""


def parse(source: str) -> ast.Module:
    """`ast.parse`, serialised across threads."""
    with LOCK:
        return ast.parse(source)


def compile_module(tree: ast.Module, filename: str, *, optimize: int = -1) -> CodeType:
    """`compile` of a module AST, serialised across threads."""
    with LOCK:
        return compile(tree, filename, "exec", optimize=optimize)
