"""Record, from vLLM's source, the API surface the vLLM backend uses; parsed with `ast`, never imported.

vLLM needs CUDA and gigabytes of wheels, so it is not installed where the tests run, and its offline API
moves between minor releases. The committed snapshot this writes (`vllm_api.json`) is what the tests'
vLLM double enforces, so a keyword the backend passes or an attribute it reads that the pinned vLLM lacks
fails a test here instead of a GPU job. Regenerate it when the pin moves:

    python -m rpt_transfer.generation.vllm_surface SOURCE > src/rpt_transfer/generation/vllm_api.json

SOURCE is a wheel (.whl), an sdist (.tar.gz, e.g. vllm-0.33.0.tar.gz) or a folder holding `vllm/`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from rpt_transfer.errors import RptError

COMMAND = "python -m rpt_transfer.generation.vllm_surface"
SNAPSHOT = Path(__file__).with_name("vllm_api.json")
"""The committed snapshot of the pinned vLLM's surface."""
ANCHOR = "vllm/entrypoints/llm.py"
"""A file every vLLM source has; where it lies in an archive tells the package root."""
ENV_VARS = ("VLLM_BATCH_INVARIANT", "VLLM_ENABLE_V1_MULTIPROCESSING")
"""Environment variables the backend sets or records; the snapshot says which this vLLM reads."""


class Target(NamedTuple):
    """One class (its fields) or method (its parameters) to record."""

    key: str
    """Its name in the snapshot."""
    module: str
    """Its file, relative to the package root."""
    cls: str
    """The class."""
    method: str | None = None
    """None records the class's annotated fields (dataclass, msgspec Struct, TypedDict)."""


TARGETS = (
    Target("LLM.__init__", "vllm/entrypoints/llm.py", "LLM", "__init__"),
    Target("LLM.generate", "vllm/entrypoints/llm.py", "LLM", "generate"),
    Target("EngineArgs", "vllm/engine/arg_utils.py", "EngineArgs"),
    Target("ModelConfig", "vllm/config/model.py", "ModelConfig"),
    Target("SamplingParams", "vllm/sampling_params.py", "SamplingParams"),
    Target("TokensPrompt", "vllm/inputs/llm.py", "TokensPrompt"),
    Target("RequestOutput", "vllm/outputs.py", "RequestOutput", "__init__"),
    Target("CompletionOutput", "vllm/outputs.py", "CompletionOutput"),
)


class Source:
    """vLLM's files, read from a wheel, an sdist or a folder, addressed relative to the package root."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files = _read_files(path)
        roots = sorted((n.removesuffix(ANCHOR) for n in self._files if n.endswith(ANCHOR)), key=len)
        if not roots:
            raise RptError(f"vLLM source {path}: no {ANCHOR} inside; is this vLLM?")
        self.root = roots[0]

    def text(self, relative: str) -> str:
        """A file's text, by its path under the package root."""
        data = self._files.get(self.root + relative)
        if data is None:
            raise RptError(f"vLLM source {self.path}: no {relative} (moved in this version? update TARGETS)")
        return data.decode("utf-8")

    def version(self) -> str:
        """The version: from `vllm/_version.py` (generated at build), else from the package metadata."""
        if self.root + "vllm/_version.py" in self._files:
            found = _assigned(ast.parse(self.text("vllm/_version.py")), "__version__")
            if isinstance(found, str):
                return found
        for name in sorted(self._files):
            if name.endswith(("PKG-INFO", ".dist-info/METADATA")):
                match = re.search(r"^Version: *(\S+)", self._files[name].decode("utf-8"), re.M)
                if match:
                    return match.group(1)
        raise RptError(f"vLLM source {self.path}: no vllm/_version.py nor package metadata; pass --version")

    def describe(self) -> dict[str, str]:
        """Where the snapshot came from: the archive's name and sha256, or the folder's name."""
        if self.path.is_dir():
            return {"source": f"folder {self.path.name}"}
        with self.path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        return {"source": self.path.name, "sha256": digest}


def load_snapshot(path: Path = SNAPSHOT) -> dict[str, Any]:
    """Read a snapshot written by this module (by default the committed one)."""
    return json.loads(path.read_text())


def surface(source: Source, version: str | None = None) -> dict[str, Any]:
    """The snapshot: version, provenance, and every target's parameters or fields."""
    snapshot: dict[str, Any] = {
        "vllm_version": version or source.version(),
        **source.describe(),
        "generated_by": f"{COMMAND} {source.path.name}",
    }
    trees: dict[str, ast.Module] = {}
    for target in TARGETS:
        tree = trees.setdefault(target.module, ast.parse(source.text(target.module)))
        cls = _class(tree, target, source)
        if target.method is None:
            snapshot[target.key] = _fields(tree, cls)
        else:
            snapshot[target.key] = _method(cls, target, source)
    init = ast.parse(source.text("vllm/__init__.py"))
    exported = _assigned(init, "__all__")
    snapshot["exports"] = sorted(exported) if isinstance(exported, list) else []
    finish = _assigned(ast.parse(source.text("vllm/v1/engine/__init__.py")), "FINISH_REASON_STRINGS")
    snapshot["finish_reasons"] = list(finish) if isinstance(finish, tuple | list) else []
    envs = _env_names(ast.parse(source.text("vllm/envs.py")))
    snapshot["env_vars"] = [name for name in ENV_VARS if name in envs]
    return snapshot


def _class(tree: ast.Module, target: Target, source: Source) -> ast.ClassDef:
    """The target's class definition at the module's top level."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == target.cls:
            return node
    raise RptError(f"vLLM source {source.path}: no class {target.cls} in {target.module}")


def _method(cls: ast.ClassDef, target: Target, source: Source) -> dict[str, Any]:
    """A method's parameters (less `self`), its `*args`/`**kwargs`, and what `__init__` sets on self."""
    method = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == target.method), None)
    if method is None:
        raise RptError(f"vLLM source {source.path}: no method {target.cls}.{target.method}")
    args = method.args
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    params = [
        {
            "name": arg.arg,
            "kind": "positional_only" if arg in args.posonlyargs else "positional_or_keyword",
            "required": index < first_default,
        }
        for index, arg in enumerate(positional)
    ]
    params += [
        {"name": arg.arg, "kind": "keyword_only", "required": default is None}
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    recorded: dict[str, Any] = {
        "params": [p for p in params if p["name"] != "self"],
        "var_positional": args.vararg is not None,
        "var_keyword": args.kwarg is not None,
    }
    if args.kwarg is not None:
        recorded["var_keyword_forwarded_to"] = _forwarded_to(method, args.kwarg.arg)
    if target.method == "__init__":
        recorded["attributes"] = sorted(_self_attributes(method))
    return recorded


def _fields(tree: ast.Module, cls: ast.ClassDef) -> dict[str, list[str]]:
    """Class-level annotated fields, through base classes of the same module.

    Left out: private names, `ClassVar`s and `field(init=False)`, none of which a constructor takes.
    `required` are fields with no default (TypedDict: per `total=` and `Required`/`NotRequired`).
    """
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    lineage = list(_lineage(cls, classes))
    typed_dict = any(_base_name(base) == "TypedDict" for node in lineage for base in node.bases)
    fields: dict[str, bool] = {}
    for node in lineage:
        total = not any(k.arg == "total" and _is_false(k.value) for k in node.keywords)
        for statement in node.body:
            if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
                continue
            name, annotation = statement.target.id, ast.unparse(statement.annotation)
            if name.startswith("_") or annotation.startswith(("ClassVar", "typing.ClassVar")):
                continue
            if _not_init(statement.value):
                continue
            if typed_dict:
                fields[name] = annotation.startswith("Required") or (
                    total and not annotation.startswith("NotRequired")
                )
            else:
                fields[name] = statement.value is None
    return {"fields": sorted(fields), "required": sorted(n for n, required in fields.items() if required)}


def _is_false(node: ast.expr) -> bool:
    """Whether an expression is the literal False."""
    return isinstance(node, ast.Constant) and node.value is False


def _not_init(value: ast.expr | None) -> bool:
    """Whether a field's default is `field(..., init=False)` (dataclasses, msgspec, pydantic alike)."""
    return isinstance(value, ast.Call) and any(k.arg == "init" and _is_false(k.value) for k in value.keywords)


def _lineage(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> Iterator[ast.ClassDef]:
    """The class's same-module bases, farthest first, then the class itself."""
    for base in cls.bases:
        name = _base_name(base)
        if name in classes and classes[name] is not cls:
            yield from _lineage(classes[name], classes)
    yield cls


def _base_name(node: ast.expr) -> str:
    """`Foo` for a base written `Foo` or `module.Foo`."""
    return node.attr if isinstance(node, ast.Attribute) else ast.unparse(node)


def _self_attributes(method: ast.FunctionDef) -> set[str]:
    """Names the method assigns on `self` (the instance attributes `__init__` creates)."""
    found = set()
    for node in ast.walk(method):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
                and not target.attr.startswith("_")
            ):
                found.add(target.attr)
    return found


def _forwarded_to(method: ast.FunctionDef, kwarg: str) -> str | None:
    """The callee that receives the method's `**kwarg`, e.g. `EngineArgs` for `LLM.__init__`."""
    for node in ast.walk(method):
        if isinstance(node, ast.Call) and any(
            k.arg is None and isinstance(k.value, ast.Name) and k.value.id == kwarg for k in node.keywords
        ):
            return ast.unparse(node.func)
    return None


def _assigned(tree: ast.Module, name: str) -> Any:
    """The literal value a module assigns to `name` at top level (also `a = name = value`), or None."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return None
    return None


def _env_names(tree: ast.Module) -> set[str]:
    """Keys of `environment_variables` in `vllm/envs.py`: every variable vLLM reads."""
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        value = getattr(node, "value", None)
        named = any(isinstance(t, ast.Name) and t.id == "environment_variables" for t in targets)
        if named and isinstance(value, ast.Dict):
            return {k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return set()


def _wanted(name: str) -> bool:
    """Python files and package metadata: all this reads of a source (wheels are mostly binaries)."""
    return name.endswith((".py", "PKG-INFO", ".dist-info/METADATA"))


def _read_files(path: Path) -> dict[str, bytes]:
    """The wanted files of a folder, wheel or sdist, by their path inside it."""
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if _wanted(p.name)}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist() if _wanted(name)}
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            files = {}
            for member in tar:
                reader = tar.extractfile(member) if member.isfile() and _wanted(member.name) else None
                if reader is not None:
                    files[member.name] = reader.read()
            return files
    raise RptError(f"vLLM source {path}: not a folder, wheel (.whl) or sdist (.tar.gz)")


def main(argv: list[str] | None = None) -> int:
    """Print the snapshot of SOURCE as JSON on stdout; a problem is one line on stderr, exit 2."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="vLLM wheel (.whl), sdist (.tar.gz) or source folder")
    parser.add_argument("--version", help="vLLM version, when the source does not say (a git checkout)")
    args = parser.parse_args(argv)
    try:
        if not args.source.exists():
            raise RptError(f"vLLM source {args.source}: no such file or folder")
        snapshot = surface(Source(args.source), args.version)
    except RptError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    json.dump(snapshot, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
