"""What discover does when the Hub or the input is not as it should be: retries, one-line errors, exit codes.

Bad input and an unreachable Hub end in one `error:` line and exit 2 with nothing written; a 429 or 5xx
that outlasts the retries in one line and exit 75 (Argo retries the pod). A repo that answers but cannot be
used becomes a decision instead. Retry waits are observed through the Hub client's `sleep`, so only the
tests of huggingface_hub's own backoff (listings) wait, one second each.
"""

from pathlib import Path

import hub_scene
import pytest
from hub_scene import BASE, DAPO, GATED, GRPO, GRPO_TEXT, ago, cli, config, populate, trl

import servers_hub
from rpt_transfer.discovery import find_new, load_config
from rpt_transfer.discovery.hub import MAX_WAIT_S, TRIES, Hub, Unusable
from rpt_transfer.errors import EXIT_TRANSIENT, TransientError
from servers_hub import FakeHub
from servers_s3 import free_port

fake_hub = servers_hub.fake_hub
store_env = hub_scene.store_env


@pytest.fixture
def scene(fake_hub: FakeHub, store_env: Path, tmp_path: Path) -> tuple[FakeHub, dict[str, str], Path]:
    return fake_hub, populate(fake_hub), config(tmp_path / "discovery.yaml")


def refused(capsys: pytest.CaptureFixture[str], path: Path, store: Path, code: int = 2) -> str:
    """Run discover; it must fail with one `error:` line and `code`, having written nothing."""
    got, out, err = cli(capsys, "discover", "--config", str(path))
    assert got == code, (out, err)
    assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert not store.exists()
    return err


def info_requests(hub: FakeHub, model: str) -> int:
    return sum(r.path == f"/api/models/{model}" for r in hub.requests)


# -- bad input and an unreachable Hub: one line, exit 2 ---------------------------------------------------


def test_an_unreachable_hub_names_the_endpoint_and_hf_endpoint(
    scene: tuple, store_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, path = scene
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", closed)
    err = refused(capsys, path, store_env)
    assert f"cannot reach the Hub at {closed} (HF_ENDPOINT={closed}) for base model {BASE} at main" in err


def test_offline_mode_is_refused_before_any_request(
    scene: tuple, store_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hub, _, path = scene
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = refused(capsys, path, store_env)
    assert "HF_HUB_OFFLINE is set, but discovery needs the Hub at http://127.0.0.1:" in err
    assert hub.requests == []


def test_a_token_without_access_is_one_line_and_the_token_is_sent_as_given(
    scene: tuple, store_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hub, _, path = scene
    hub.token, hub.require_token = "hf_good", True
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    err = refused(capsys, path, store_env)
    assert f"refused the token in HF_TOKEN for base model {BASE} at main (401): it has no access" in err
    assert [r.header("Authorization") for r in hub.requests] == ["Bearer hf_wrong"]


def test_the_right_token_sees_private_models_which_are_skipped(
    scene: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, _, path = scene
    hub.token, hub.require_token = "hf_good", True
    secret = "zed/R1-1.5B-GRPO-Private"
    hub.add_model(
        secret, created_at=ago(), card=trl("grpo", BASE, ["openai/gsm8k"]), body=GRPO_TEXT, private=True
    )
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    found = find_new(load_config(path), path, Hub())
    (private,) = [d for d in found.decisions if d.id == secret]
    assert private.outcome == "skipped" and private.reason.startswith("private")
    assert {r.header("Authorization") for r in hub.requests} == {"Bearer hf_good"}


def test_anonymous_listings_leave_private_models_out(scene: tuple) -> None:
    hub, _, path = scene
    hub.add_model("zed/R1-1.5B-GRPO-Private", created_at=ago(), card=trl("grpo", BASE), private=True)
    found = find_new(load_config(path), path, Hub())
    assert "zed/R1-1.5B-GRPO-Private" not in {d.id for d in found.decisions}
    assert all(r.header("Authorization") is None for r in hub.requests)


def test_an_unknown_base_names_the_config_file_and_the_base(
    scene: tuple, store_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(
        tmp_path / "typo.yaml", bases=[{"hub": BASE}, {"hub": "deepseek-ai/DeepSeek-R1-Distill-Qwen-15B"}]
    )
    err = refused(capsys, path, store_env)
    assert f"{path}: bases: base deepseek-ai/DeepSeek-R1-Distill-Qwen-15B is not a model on the Hub at" in err


def test_an_unknown_revision_of_a_base_names_it(
    scene: tuple, store_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path / "rev.yaml", bases=[{"hub": BASE, "revision": "v9"}])
    err = refused(capsys, path, store_env)
    assert f"{path}: bases: base {BASE} has no branch, tag or commit 'v9'" in err


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"bases": [{"hub": BASE, "revison": "main"}]},
            "bases[0].revison: unknown key; accepted: hub, revision, prompt_mode",
        ),
        ({"lookback_days": 3}, "lookback_days: unknown key; accepted: bases, relations, max_params_b"),
        (
            {"relations": ["finetune", "distill"]},
            "relations[1]: Input should be 'finetune', 'adapter', 'merge' or 'quantized'",
        ),
        ({"study": {"models": {}}}, "study: Value error, `models` is written by discovery"),
        (
            {"study": {"benchmarks": ["gsm8kk"]}},
            ": study: benchmarks[0]: unknown benchmark 'gsm8kk' (did you mean gsm8k?)",
        ),
        ({"bases": []}, "bases: List should have at least 1 item"),
        ({"study_prefix": "Discovered"}, "study_prefix: String should match pattern"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_file_and_the_field(
    scene: tuple,
    store_env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict,
    expected: str,
) -> None:
    hub, _, _ = scene
    path = config(tmp_path / "bad.yaml", **changes)
    err = refused(capsys, path, store_env)
    assert err.startswith(f"error: {path}") and expected in err, err
    assert hub.requests == []


def test_a_missing_or_malformed_config_file_is_one_line(
    scene: tuple, store_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "no such discovery config file" in refused(capsys, tmp_path / "absent.yaml", store_env)
    broken = tmp_path / "broken.yaml"
    broken.write_text("bases: [\n")
    assert f"{broken}: malformed YAML at line" in refused(capsys, broken, store_env)


# -- rate limits and server errors ------------------------------------------------------------------------


def test_a_429_with_retry_after_on_a_listing_is_retried_by_the_client(scene: tuple) -> None:
    hub, _, path = scene
    hub.fail("/api/models", 429, headers={"Retry-After": "0"}, exact=True)  # the client waits 0 + 1 s
    found = find_new(load_config(path), path, Hub())
    assert len(found.accepted) == 3
    first_pages = [r for r in hub.requests if r.path == "/api/models" and "cursor" not in r.query]
    assert len(first_pages) == 3  # base 1 twice (429, then the page), base 2 once


def test_model_info_honours_ratelimit_and_retry_after_and_backs_off_on_5xx(scene: tuple) -> None:
    hub, _, path = scene
    hub.rate_limit_header(f"/api/models/{GRPO}", reset=7, exact=True)
    hub.fail(f"/api/models/{GRPO}", 503, exact=True)  # no Retry-After: 2 s, the backoff of a second try
    hub.fail(f"/api/models/{DAPO}", 429, headers={"Retry-After": "3"}, exact=True)
    waits: list[float] = []
    found = find_new(load_config(path), path, Hub(sleep=waits.append))
    assert waits == [7.0, 2.0, 3.0]
    assert len(found.accepted) == 3 and info_requests(hub, GRPO) == 3 and info_requests(hub, DAPO) == 2


def test_a_5xx_that_outlasts_the_retries_is_one_line_and_exit_75(
    scene: tuple, store_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub, _, path = scene
    hub.fail(f"/api/models/{GRPO}", 503, times=None, headers={"Retry-After": "0"}, exact=True)
    err = refused(capsys, path, store_env, code=EXIT_TRANSIENT)
    assert f"answered 503 for model info of {GRPO} after {TRIES} tries; run again later" in err
    assert info_requests(hub, GRPO) == TRIES


def test_a_rate_limit_longer_than_the_longest_wait_ends_the_run_at_once(scene: tuple) -> None:
    hub, _, path = scene
    hub.fail(
        f"/api/models/{GRPO}", 429, times=None, headers={"Retry-After": str(int(MAX_WAIT_S) + 1)}, exact=True
    )
    waits: list[float] = []
    with pytest.raises(TransientError, match=rf"rate-limited model info of {GRPO} \(429\) after 1 tries"):
        find_new(load_config(path), path, Hub(sleep=waits.append))
    assert waits == [] and info_requests(hub, GRPO) == 1


# -- repos that answer but cannot be used: decisions ------------------------------------------------------


def test_a_model_gone_since_the_listing_is_skipped_and_not_retried(scene: tuple) -> None:
    hub, _, path = scene
    hub.fail(f"/api/models/{GRPO}", 404, times=None, headers={"X-Error-Code": "RepoNotFound"}, exact=True)
    found = find_new(load_config(path), path, Hub())
    (gone,) = [d for d in found.decisions if d.id == GRPO]
    assert (gone.outcome, gone.retryable) == ("skipped", False) and gone.reason.startswith("gone")


def test_a_commit_gone_before_its_readme_is_read_is_skipped_and_retried_later(scene: tuple) -> None:
    hub, sha, path = scene
    hub.fail(f"/{GRPO}/resolve/", 404, times=None, headers={"X-Error-Code": "RevisionNotFound"})
    found = find_new(load_config(path), path, Hub())
    (broken,) = [d for d in found.decisions if d.id == GRPO]
    assert (broken.outcome, broken.retryable, broken.sha) == ("skipped", True, sha[GRPO])
    assert broken.reason.startswith("broken")


def test_gated_files_make_the_readme_unusable(scene: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    hub, sha, _ = scene
    with pytest.raises(Unusable, match="gated"):  # anonymous: 401 GatedRepo
        Hub().readme(GATED, sha[GATED])
    hub.token = "hf_good"
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    with pytest.raises(Unusable, match="gated"):  # a token not granted: 403 GatedRepo
        Hub().readme(GATED, sha[GATED])
    hub.granted.add(GATED)
    assert Hub().readme(GATED, sha[GATED]).startswith("---\nbase_model:")
