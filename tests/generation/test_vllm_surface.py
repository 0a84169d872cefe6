"""The vLLM API snapshot: the script that reads it from vLLM's source, and what the committed one says."""

import ast
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rpt_transfer.errors import RptError
from rpt_transfer.generation import BACKEND_VERSIONS, BACKENDS, NEEDS, load_backend
from rpt_transfer.generation.vllm_surface import SNAPSHOT, Source, load_snapshot, surface

BACKEND_SOURCE = Path(__file__).resolve().parents[2] / "src" / "rpt_transfer" / "generation" / "vllm.py"

SYNTHETIC = {
    "vllm/_version.py": "__version__ = version = '9.9.1'\n__version_tuple__ = (9, 9, 1)\n",
    "vllm/__init__.py": "from .version import __version__\n__all__ = ['__version__', 'LLM', 'SamplingParams']\n",
    "vllm/entrypoints/llm.py": (
        "class LLM(Mixin):\n"
        "    def __init__(self, model: str, *, seed: int = 0, tokenizer=None, **kwargs) -> None:\n"
        "        engine_args = EngineArgs(model=model, seed=seed, **kwargs)\n"
        "        self.model_config = engine_args.model_config\n"
        "        self._private = 1\n"
        "        self.llm_engine: object = None\n"
        "    def generate(self, prompts, sampling_params=None, /, *, use_tqdm=True):\n"
        "        return []\n"
    ),
    "vllm/engine/arg_utils.py": (
        "@dataclass\nclass EngineArgs:\n"
        "    model: str = 'x'\n    max_model_len: int | None = None\n    _hidden: int = 0\n"
        "    enable_prefix_caching: bool | None = None\n"
    ),
    "vllm/config/model.py": (
        "class ModelConfig:\n    dtype: str = 'auto'\n    max_model_len: int = Field(default=None, ge=-1)\n"
    ),
    "vllm/sampling_params.py": (
        "class SamplingParams(PydanticMsgspecMixin, msgspec.Struct, omit_defaults=True):\n"
        "    n: int = 1\n    seed: int | None = None\n    stop: str | list[str] | None = None\n"
        "    _eos_token_id: int | None = None\n    registry: ClassVar[dict] = {}\n"
        "    derived: str = field(default=None, init=False)\n"
        "    def method(self) -> None:\n        local: int = 1\n"
    ),
    "vllm/inputs/llm.py": (
        "class _PromptOptions(TypedDict):\n    cache_salt: NotRequired[str]\n"
        "class TokensPrompt(_PromptOptions):\n    prompt_token_ids: list[int]\n    prompt: NotRequired[str]\n"
        "class Partial(TypedDict, total=False):\n    a: int\n"
    ),
    "vllm/outputs.py": (
        "@dataclass\nclass CompletionOutput:\n    index: int\n    text: str\n    finish_reason: str | None = None\n"
        "class RequestOutput:\n"
        "    def __init__(self, request_id: str, outputs: list, *, finished: bool = True, **kwargs) -> None:\n"
        "        self.request_id = request_id\n        self.outputs = outputs\n        self.finished = finished\n"
    ),
    "vllm/v1/engine/__init__.py": "FINISH_REASON_STRINGS = ('stop', 'length', 'abort')\n",
    "vllm/envs.py": (
        "environment_variables: dict[str, Callable[[], Any]] = {\n"
        "    'VLLM_BATCH_INVARIANT': lambda: bool(int(os.getenv('VLLM_BATCH_INVARIANT', '0'))),\n"
        "    'VLLM_OTHER': lambda: None,\n}\n"
    ),
}

EXPECTED = {
    "vllm_version": "9.9.1",
    "LLM.__init__": {
        "params": [
            {"name": "model", "kind": "positional_or_keyword", "required": True},
            {"name": "seed", "kind": "keyword_only", "required": False},
            {"name": "tokenizer", "kind": "keyword_only", "required": False},
        ],
        "var_positional": False,
        "var_keyword": True,
        "var_keyword_forwarded_to": "EngineArgs",
        "attributes": ["llm_engine", "model_config"],
    },
    "LLM.generate": {
        "params": [
            {"name": "prompts", "kind": "positional_only", "required": True},
            {"name": "sampling_params", "kind": "positional_only", "required": False},
            {"name": "use_tqdm", "kind": "keyword_only", "required": False},
        ],
        "var_positional": False,
        "var_keyword": False,
    },
    "EngineArgs": {"fields": ["enable_prefix_caching", "max_model_len", "model"], "required": []},
    "ModelConfig": {"fields": ["dtype", "max_model_len"], "required": []},
    "SamplingParams": {"fields": ["n", "seed", "stop"], "required": []},
    "TokensPrompt": {
        "fields": ["cache_salt", "prompt", "prompt_token_ids"],
        "required": ["prompt_token_ids"],
    },
    "RequestOutput": {
        "params": [
            {"name": "request_id", "kind": "positional_or_keyword", "required": True},
            {"name": "outputs", "kind": "positional_or_keyword", "required": True},
            {"name": "finished", "kind": "keyword_only", "required": False},
        ],
        "var_positional": False,
        "var_keyword": True,
        "var_keyword_forwarded_to": None,
        "attributes": ["finished", "outputs", "request_id"],
    },
    "CompletionOutput": {"fields": ["finish_reason", "index", "text"], "required": ["index", "text"]},
    "exports": ["LLM", "SamplingParams", "__version__"],
    "finish_reasons": ["stop", "length", "abort"],
    "env_vars": ["VLLM_BATCH_INVARIANT"],
}
PROVENANCE = ("source", "sha256", "generated_by")


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def without_provenance(snapshot: dict) -> dict:
    return {key: value for key, value in snapshot.items() if key not in PROVENANCE}


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rpt_transfer.generation.vllm_surface", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_folder_source_gives_the_expected_surface(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "vllm-9.9.1", SYNTHETIC)
    snapshot = surface(Source(source))
    assert without_provenance(snapshot) == EXPECTED
    assert snapshot["source"] == "folder vllm-9.9.1"
    assert "sha256" not in snapshot


def test_wheel_and_sdist_give_the_same_surface_and_name_their_file(tmp_path: Path) -> None:
    wheel = tmp_path / "vllm-9.9.1-cp38-abi3-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in SYNTHETIC.items():
            archive.writestr(name, text)
        archive.writestr("vllm/_C.abi3.so", b"\x7fELF binary")
    sdist = tmp_path / "vllm-9.9.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, text in SYNTHETIC.items():
            data = text.encode()
            member = tarfile.TarInfo(f"vllm-9.9.1/{name}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    for archive_path in (wheel, sdist):
        snapshot = surface(Source(archive_path))
        assert without_provenance(snapshot) == EXPECTED
        assert snapshot["source"] == archive_path.name
        assert snapshot["sha256"] == hashlib.sha256(archive_path.read_bytes()).hexdigest()


def test_version_comes_from_metadata_or_the_command_line(tmp_path: Path) -> None:
    files = {name: text for name, text in SYNTHETIC.items() if name != "vllm/_version.py"}
    source = write_tree(tmp_path / "checkout", files)
    with pytest.raises(RptError, match=r"no vllm/_version.py nor package metadata; pass --version"):
        surface(Source(source))
    assert surface(Source(source), "1.2.3")["vllm_version"] == "1.2.3"
    (source / "PKG-INFO").write_text("Metadata-Version: 2.4\nName: vllm\nVersion: 0.33.0rc1\n")
    assert surface(Source(source))["vllm_version"] == "0.33.0rc1"


def test_command_writes_json_and_fails_on_one_line(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", SYNTHETIC)
    (tmp_path / "notes.txt").write_text("not vLLM")
    done = run_script(str(source))
    assert done.returncode == 0, done.stderr
    assert without_provenance(json.loads(done.stdout)) == EXPECTED
    assert json.loads(done.stdout)["generated_by"] == "python -m rpt_transfer.generation.vllm_surface src"
    for args, message in [
        ((str(tmp_path / "absent.whl"),), "no such file or folder"),
        ((str(write_tree(tmp_path / "empty", {"README": "x"})),), "no vllm/entrypoints/llm.py inside"),
        ((str(tmp_path / "notes.txt"),), "not a folder, wheel (.whl) or sdist (.tar.gz)"),
    ]:
        failed = run_script(*args)
        assert failed.returncode == 2 and failed.stdout == ""
        assert failed.stderr.count("\n") == 1 and message in failed.stderr, failed.stderr
    moved = write_tree(tmp_path / "moved", {k: v for k, v in SYNTHETIC.items() if k != "vllm/outputs.py"})
    failed = run_script(str(moved))
    assert failed.returncode == 2 and "no vllm/outputs.py (moved in this version?" in failed.stderr


def test_committed_snapshot_is_vllm_0_33_and_names_what_the_backend_needs() -> None:
    snapshot = load_snapshot()
    assert SNAPSHOT.name == "vllm_api.json"
    assert snapshot["vllm_version"].startswith("0.33.")
    assert snapshot["source"].startswith(f"vllm-{snapshot['vllm_version']}") and len(snapshot["sha256"]) == 64
    init = {p["name"] for p in snapshot["LLM.__init__"]["params"]}
    assert {"model", "tokenizer", "tensor_parallel_size", "gpu_memory_utilization", "dtype", "seed"} <= init
    assert {"enforce_eager"} <= init
    assert snapshot["LLM.__init__"]["var_keyword_forwarded_to"] == "EngineArgs"
    assert {"max_model_len", "enable_prefix_caching", "generation_config"} <= set(
        snapshot["EngineArgs"]["fields"]
    )
    assert "model_config" in snapshot["LLM.__init__"]["attributes"]
    assert {"prompts", "sampling_params", "use_tqdm"} <= {
        p["name"] for p in snapshot["LLM.generate"]["params"]
    }
    assert {"dtype", "max_model_len"} <= set(snapshot["ModelConfig"]["fields"])
    sampling = set(snapshot["SamplingParams"]["fields"])
    assert {"n", "seed", "temperature", "top_p", "top_k", "max_tokens", "stop", "detokenize"} <= sampling
    assert {"skip_special_tokens", "include_stop_str_in_output", "ignore_eos"} <= sampling
    assert snapshot["TokensPrompt"]["required"] == ["prompt_token_ids"]
    assert "outputs" in snapshot["RequestOutput"]["attributes"]
    assert {"token_ids", "finish_reason", "stop_reason"} <= set(snapshot["CompletionOutput"]["fields"])
    assert {"stop", "length"} <= set(snapshot["finish_reasons"])
    assert snapshot["env_vars"] == ["VLLM_BATCH_INVARIANT", "VLLM_ENABLE_V1_MULTIPROCESSING"]
    assert {"LLM", "SamplingParams", "TokensPrompt", "__version__"} <= set(snapshot["exports"])


# Which snapshot entry each name in vllm.py stands for; the static check below relies on these names.
HOLDERS = {
    "request_output": "RequestOutput",
    "completion": "CompletionOutput",
    "model_config": "ModelConfig",
}


def allowed(snapshot: dict, entry: str) -> set[str]:
    recorded = snapshot[entry]
    if "fields" in recorded:
        return set(recorded["fields"])
    names = {p["name"] for p in recorded["params"]}
    if recorded.get("var_keyword_forwarded_to"):
        names |= set(snapshot[recorded["var_keyword_forwarded_to"]]["fields"])
    return names


def attributes(snapshot: dict, entry: str) -> set[str]:
    recorded = snapshot[entry if entry != "LLM" else "LLM.__init__"]
    return set(recorded.get("attributes", recorded.get("fields", [])))


def test_backend_source_passes_and_reads_only_what_the_snapshot_has() -> None:
    """Static check of vllm.py: keywords of every vLLM call, attributes read off vLLM objects."""
    snapshot = load_snapshot()
    tree = ast.parse(BACKEND_SOURCE.read_text())
    callees = {"LLM": "LLM.__init__", "SamplingParams": "SamplingParams", "TokensPrompt": "TokensPrompt"}
    checked: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            entry = callees.get(node.func.attr) if owner == "self._vllm" else None
            entry = "LLM.generate" if owner == "self._llm" and node.func.attr == "generate" else entry
            if entry is not None:
                keywords = {k.arg for k in node.keywords if k.arg is not None}
                assert keywords <= allowed(snapshot, entry), (entry, keywords - allowed(snapshot, entry))
                checked.setdefault(entry, set()).update(keywords)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            owner = ast.unparse(node.value)
            if owner in HOLDERS:
                assert node.attr in attributes(snapshot, HOLDERS[owner]), (owner, node.attr)
                checked.setdefault(HOLDERS[owner], set()).add(node.attr)
            if owner == "self._llm":
                assert node.attr in attributes(snapshot, "LLM") | {"generate"}, node.attr
                checked.setdefault("LLM", set()).add(node.attr)
            if owner == "self._vllm":
                assert node.attr in snapshot["exports"], node.attr
        if isinstance(node, ast.FunctionDef) and node.name == "effective_sampling":
            returned = [n.value for n in ast.walk(node) if isinstance(n, ast.Return)]
            assert len(returned) == 1 and isinstance(returned[0], ast.Dict)
            keys = {k.value for k in returned[0].keys if isinstance(k, ast.Constant)}
            assert keys <= allowed(snapshot, "SamplingParams"), keys - allowed(snapshot, "SamplingParams")
            checked.setdefault("SamplingParams", set()).update(keys)
    # The check saw every kind of use (it would pass vacuously if the names in vllm.py changed).
    assert {"LLM.__init__", "LLM.generate", "SamplingParams", "TokensPrompt", "LLM"} <= set(checked)
    assert {"RequestOutput", "CompletionOutput", "ModelConfig"} <= set(checked)
    assert {"max_model_len", "enable_prefix_caching", "generation_config"} <= checked["LLM.__init__"]
    assert {"seed", "n", "temperature", "top_p", "top_k", "max_tokens", "stop"} <= checked["SamplingParams"]
    assert {"token_ids", "finish_reason", "stop_reason"} <= checked["CompletionOutput"]


def test_vllm_is_registered_and_asks_for_the_gpu_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BACKEND_VERSIONS["vllm"] == "1" and "vllm" in BACKENDS
    assert NEEDS["vllm"].extra == "gpu" and NEEDS["vllm"].modules == ("vllm",)
    for name in [n for n in sys.modules if n == "vllm" or n.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)  # a double another test imported
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    assert NEEDS["vllm"].missing() == "needs vllm, which is not installed: pip install 'rpt-transfer[gpu]'"
    (tmp_path / "config.json").write_text('{"max_position_embeddings": 64}')
    with pytest.raises(RptError, match=r"vllm is not installed; pip install 'rpt-transfer\[gpu\]'") as err:
        load_backend("vllm", model_path=tmp_path, prompt_mode="raw")
    assert "\n" not in str(err.value)


def test_module_imports_without_vllm_torch_or_transformers() -> None:
    code = (
        "import sys, rpt_transfer.generation.vllm, rpt_transfer.generation.vllm_surface; "
        "assert not {'vllm', 'torch', 'transformers'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
