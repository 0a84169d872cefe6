"""The store and its manifest protocol, on a local folder and on a real moto S3 server."""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rpt_transfer.errors import ManifestError, StoreError, WriteConflictError
from rpt_transfer.store import (
    MANIFEST_NAME,
    FileStore,
    Manifest,
    S3Store,
    Store,
    software_versions,
)
from rpt_transfer.store.gc import collect_garbage
from servers_s3 import (  # noqa: F401
    TEST_KEY,
    AuthS3,
    free_port,
    s3_auth_server,
    s3_server,
    s3_store_uri,
    set_s3_env,
)
from store_backends import any_store, format_1_manifest, overwrite_raw, remove_raw  # noqa: F401

JOB = "generations/ab12cd34ef56ab78"
INPUTS = {"model": "tiny", "benchmark": "gsm8k", "seed": 0, "sampling": {"temperature": 0.0}}


def commit_job(store: Store, parts: dict[str, bytes], prefix: str = JOB) -> Manifest:
    with store.begin(prefix, job_id="ab12cd34ef56ab78", kind="generate", inputs=INPUTS) as writer:
        for name, data in parts.items():
            writer.put_bytes(name, data)
    manifest = store.manifest(prefix)
    assert manifest is not None
    return manifest


# -- round trip -----------------------------------------------------------------------------------------


def test_round_trip_of_parts_files_folders_and_manifest(store: Store, tmp_path: Path) -> None:
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # past boto3's 8 MiB multipart threshold
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text('{"layers": 2}')
    (model / "sub" / "tokenizer.json").write_text("{}")

    with store.begin(JOB, job_id="ab12cd34ef56ab78", kind="generate", inputs=INPUTS) as writer:
        writer.put_bytes("part-00000.parquet", b"rows")
        writer.put_file("weights.bin", big)
        writer.put_dir(model, under="model")
        assert not store.is_done(JOB)

    manifest = store.manifest(JOB)
    assert manifest is not None and store.is_done(JOB)
    assert (manifest.job_id, manifest.kind, manifest.inputs) == ("ab12cd34ef56ab78", "generate", INPUTS)
    assert manifest.status == "complete" and manifest.format_version == 2
    assert manifest.attempt == writer.attempt and writer.folder == f"{JOB}/{writer.attempt}"
    assert manifest.created_at.endswith("Z")
    assert {"rpt_transfer", "python", "boto3", "pyarrow"} <= set(manifest.software)
    names = ["model/config.json", "model/sub/tokenizer.json", "part-00000.parquet", "weights.bin"]
    assert [info.name for info in manifest.objects] == names
    weights = manifest.object("weights.bin")
    assert weights.size == big.stat().st_size
    assert weights.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()

    assert store.read_object(JOB, "part-00000.parquet") == b"rows"
    listed = [f"{writer.folder}/{name}" for name in names]
    assert store.list_keys(JOB) == sorted([*listed, f"{JOB}/{MANIFEST_NAME}"])
    assert store.object_key(JOB, "model/config.json") == f"{writer.folder}/model/config.json"
    location = store.object_location(JOB, "weights.bin")
    root = store.local_path()
    assert location == (str(root / writer.folder / "weights.bin") if root else store.key_uri(listed[-1]))
    dest = store.download(JOB, tmp_path / "copy")
    assert (dest / "weights.bin").read_bytes() == big.read_bytes()
    assert (dest / "model" / "sub" / "tokenizer.json").read_text() == "{}"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == names


def test_unlisted_object_is_refused_naming_prefix_and_name(store: Store) -> None:
    commit_job(store, {"part-00000.parquet": b"rows"})
    store.write_bytes(f"{JOB}/stray.parquet", b"not listed")
    with pytest.raises(ManifestError, match=rf"{JOB}/{MANIFEST_NAME}.*'stray.parquet'"):
        store.read_object(JOB, "stray.parquet")


def test_commit_inside_the_block_is_not_repeated(store: Store) -> None:
    with store.begin(JOB, job_id="j", kind="score", inputs={}) as writer:
        writer.put_bytes("a", b"1")
        manifest = writer.commit()
        with pytest.raises(RuntimeError, match="committed"):
            writer.put_bytes("b", b"2")
    assert store.manifest(JOB) == manifest


def test_manifest_name_is_reserved_and_keys_must_stay_inside(store: Store) -> None:
    writer = store.begin(JOB, job_id="j", kind="score", inputs={})
    with pytest.raises(StoreError, match="reserved"):
        writer.put_bytes(MANIFEST_NAME, b"{}")
    for bad in ("../escape", "/abs", "a//b", ""):
        with pytest.raises(StoreError, match="bad store"):
            writer.put_bytes(bad, b"x")
    with pytest.raises(StoreError, match="bad store key"):
        store.read_bytes("a/../../etc/passwd")


# -- manifest last, killed writers, conflicts ------------------------------------------------------------


def test_manifest_is_written_last_and_not_at_all_when_the_job_fails(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    for method in ("write_bytes", "write_stream", "create_exclusive"):
        original = getattr(store, method)
        monkeypatch.setattr(store, method, lambda key, data, _f=original: order.append(key) or _f(key, data))

    with (
        pytest.raises(ValueError, match="boom"),
        store.begin(JOB, job_id="j", kind="generate", inputs={}) as w,
    ):
        w.put_bytes("part-00000.parquet", b"rows")
        raise ValueError("boom")
    assert order == [f"{w.folder}/part-00000.parquet"]
    assert store.manifest(JOB) is None and not store.is_done(JOB)
    assert store.list_keys(JOB) == []  # a failed attempt removes its own folder
    with pytest.raises(StoreError, match="job not done"):
        store.read_object(JOB, "part-00000.parquet")

    commit_job(store, {"part-00000.parquet": b"a", "part-00001.parquet": b"b"})
    assert order[-1] == f"{JOB}/{MANIFEST_NAME}"


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from rpt_transfer.store import Store

    writer = Store.from_uri(sys.argv[1]).begin(sys.argv[2], job_id="j", kind="generate", inputs={})
    writer.put_bytes("part-00000.parquet", b"a" * 1000)
    writer.put_bytes("part-00001.parquet", b"b" * 1000)
    print("parts written", flush=True)
    time.sleep(120)
    """
)


def test_killed_writer_leaves_no_manifest_and_a_rerun_leaves_its_parts_to_gc(store: Store) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, store.uri, JOB], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "parts written\n"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
    stale = store.list_keys(JOB)
    assert [key.rpartition("/")[2] for key in stale] == ["part-00000.parquet", "part-00001.parquet"]
    assert not store.is_done(JOB) and store.manifest(JOB) is None

    writer = store.begin(JOB, job_id="j", kind="generate", inputs={})
    assert store.list_keys(JOB) == stale  # a starting writer deletes nothing: the other may still be alive
    writer.put_bytes("part-00000.parquet", b"fresh")
    writer.commit()
    fresh = [f"{JOB}/{MANIFEST_NAME}", f"{writer.folder}/part-00000.parquet"]
    assert store.list_keys(JOB) == sorted([*stale, *fresh])
    assert store.read_object(JOB, "part-00000.parquet") == b"fresh"  # the stale parts are not listed

    collect_garbage(store, min_age=timedelta(0))
    assert store.list_keys(JOB) == fresh


def test_second_commit_conflicts_and_keeps_the_first_manifest(store: Store) -> None:
    first = store.begin(JOB, job_id="j", kind="generate", inputs={"run": 1})
    second = store.begin(JOB, job_id="j", kind="generate", inputs={"run": 2})
    first.put_bytes("part-a", b"first")
    committed = first.commit()
    second.put_bytes("part-b", b"second")
    with pytest.raises(WriteConflictError, match="another writer"):
        second.commit()
    assert store.manifest(JOB) == committed and committed.inputs == {"run": 1}
    assert store.read_object(JOB, "part-a") == b"first"
    assert store.list_keys(JOB) == [f"{JOB}/{MANIFEST_NAME}", f"{first.folder}/part-a"]  # the loser's went

    with pytest.raises(WriteConflictError, match="already done"):
        store.begin(JOB, job_id="j", kind="generate", inputs={})
    assert store.read_object(JOB, "part-a") == b"first"  # begin() cleared nothing


@pytest.mark.parametrize(("change", "complaint"), [("remove", "is missing"), ("grow", "has 9 bytes")])
def test_commit_checks_every_object_is_still_there_with_its_size(
    store: Store, change: str, complaint: str
) -> None:
    """An object removed (e.g. by `store gc --min-age 0`) or changed before the commit: nothing is committed."""
    writer = store.begin(JOB, job_id="j", kind="generate", inputs={})
    writer.put_bytes("part-00000.parquet", b"rows")
    writer.put_bytes("part-00001.parquet", b"more")
    key = f"{writer.folder}/part-00001.parquet"
    if change == "remove":
        remove_raw(store, key)
    else:
        overwrite_raw(store, key, b"more rows")
    with pytest.raises(ManifestError, match=rf"{key} {complaint}, this attempt wrote 4; nothing committed"):
        writer.commit()
    assert not store.is_done(JOB) and store.manifest(JOB) is None


def test_a_commit_whose_answer_was_lost_is_recognised_as_its_own(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that retries a create it already made sees "exists": the manifest then names this attempt."""
    original = store.create_exclusive
    monkeypatch.setattr(store, "create_exclusive", lambda key, data: original(key, data) and False)
    writer = store.begin(JOB, job_id="j", kind="generate", inputs={})
    writer.put_bytes("part-00000.parquet", b"rows")
    manifest = writer.commit()
    assert manifest.attempt == writer.attempt and store.manifest(JOB) == manifest
    assert store.read_object(JOB, "part-00000.parquet") == b"rows"  # its objects were kept


def test_format_1_manifests_with_objects_beside_them_still_read(store: Store, tmp_path: Path) -> None:
    data = b"old rows"
    old = format_1_manifest(data)
    store.write_bytes(f"{JOB}/part-00000.parquet", data)
    store.write_bytes(f"{JOB}/{MANIFEST_NAME}", old.to_json())
    manifest = store.manifest(JOB)
    assert manifest is not None and manifest.model_dump() == old.model_dump() and store.is_done(JOB)
    assert store.object_key(JOB, "part-00000.parquet") == f"{JOB}/part-00000.parquet"
    assert store.read_object(JOB, "part-00000.parquet") == data
    assert (store.download(JOB, tmp_path / "d") / "part-00000.parquet").read_bytes() == data
    with pytest.raises(WriteConflictError, match="already done"):
        store.begin(JOB, job_id="j", kind="generate", inputs={})


def test_delete_job_removes_the_manifest_first_and_only_what_it_lists(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = store.begin(JOB, job_id="j", kind="generate", inputs={})
    other.put_bytes("part-00000.parquet", b"a slower attempt's part")
    commit_job(store, {"part-00000.parquet": b"rows"})
    deleted: list[list[str]] = []
    original = store.delete_keys
    monkeypatch.setattr(store, "delete_keys", lambda keys: deleted.append(list(keys)) or original(keys))
    store.delete_job(JOB)
    assert deleted[0] == [f"{JOB}/{MANIFEST_NAME}"]  # not done any more before any object goes
    assert not store.is_done(JOB)
    assert store.list_keys(JOB) == [f"{other.folder}/part-00000.parquet"]  # another attempt's: for gc
    store.delete_job(JOB)  # no manifest: nothing to do


# -- verification ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tampered", "complaint"), [(b"rowz", "sha256"), (b"rows and more", "has 13 bytes, its manifest lists 4")]
)
def test_corrupted_object_is_detected_by_read_and_download(
    store: Store, tmp_path: Path, tampered: bytes, complaint: str
) -> None:
    commit_job(store, {"good.parquet": b"fine", "part-00000.parquet": b"rows"})
    overwrite_raw(store, store.object_key(JOB, "part-00000.parquet"), tampered)

    assert store.read_object(JOB, "good.parquet") == b"fine"
    with pytest.raises(ManifestError, match=rf"{JOB}/attempt-[^/]+/part-00000.parquet.*{complaint}"):
        store.read_object(JOB, "part-00000.parquet")
    with pytest.raises(ManifestError, match=complaint):
        store.download(JOB, tmp_path / "dest")
    assert not (tmp_path / "dest" / "part-00000.parquet").exists()
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["good.parquet"]  # no half-written file


def test_listed_but_missing_object_is_a_manifest_error(store: Store) -> None:
    commit_job(store, {"part-00000.parquet": b"rows"})
    remove_raw(store, store.object_key(JOB, "part-00000.parquet"))
    with pytest.raises(
        ManifestError, match=rf"{JOB}/attempt-[^/]+/part-00000.parquet is listed in its manifest but missing"
    ):
        store.read_object(JOB, "part-00000.parquet")


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"not json", "malformed manifest"),
        (b'{"format_version": 3}', "format_version"),
        (
            b'{"format_version": 2, "job_id": "j", "kind": "k", "inputs": {}, "software": {},'
            b' "created_at": "", "objects": [], "attempt": "../../elsewhere"}',
            "not an attempt name",
        ),
        (
            b'{"job_id": "j", "kind": "k", "inputs": {}, "software": {}, "created_at": "",'
            b' "objects": [{"name": "../../etc/passwd", "sha256": "0", "size": 1}]}',
            "objects.0.name",
        ),
    ],
)
def test_malformed_manifest_is_a_manifest_error_naming_its_key(
    store: Store, content: bytes, complaint: str
) -> None:
    store.write_bytes(f"{JOB}/{MANIFEST_NAME}", content)
    assert store.is_done(JOB)
    with pytest.raises(ManifestError, match=complaint) as caught:
        store.manifest(JOB)
    assert store.key_uri(f"{JOB}/{MANIFEST_NAME}") in str(caught.value)
    assert "\n" not in str(caught.value)


# -- raw objects ----------------------------------------------------------------------------------------


def test_list_and_delete_treat_prefixes_as_folders(store: Store) -> None:
    for key in ("a/b/1", "a/b/sub/2", "a/bc/3", "c/4"):
        store.write_bytes(key, key.encode())
    assert store.list_keys("a/b") == store.list_keys("a/b/") == ["a/b/1", "a/b/sub/2"]
    assert store.list_keys("") == ["a/b/1", "a/b/sub/2", "a/bc/3", "c/4"]
    assert store.list_keys("nothing/here") == []
    assert store.exists("a/bc/3") and not store.exists("a/b")

    store.delete_prefix("a/b/")
    assert store.list_keys("a") == ["a/bc/3"]
    store.delete_prefix("nothing/here")  # deleting nothing is fine
    with pytest.raises(StoreError, match="whole store"):
        store.delete_prefix("")
    with pytest.raises(StoreError, match=rf"no object at {store.key_uri('a/b/1')}"):
        store.read_bytes("a/b/1")


def test_list_objects_gives_sizes_and_modification_times(store: Store) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)  # S3 times have whole seconds
    store.write_bytes("a/b/1", b"one")
    store.write_bytes("a/b/sub/2", b"second")
    listed = store.list_objects("a/b")
    assert [(obj.key, obj.size) for obj in listed] == [("a/b/1", 3), ("a/b/sub/2", 6)]
    assert all(before <= obj.modified <= datetime.now(UTC) + timedelta(seconds=5) for obj in listed)
    store.delete_keys(["a/b/1", "a/b/absent"])
    assert store.list_keys("a") == ["a/b/sub/2"]


def test_write_bytes_replaces_whole_objects(store: Store) -> None:
    store.write_bytes("x/y", b"old")
    store.write_bytes("x/y", b"new")
    assert store.read_bytes("x/y") == b"new"
    assert store.list_keys("x") == ["x/y"]  # no temporary files left behind


# -- URIs -----------------------------------------------------------------------------------------------


def test_from_uri_accepts_file_uris_plain_paths_and_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "with space"
    from_uri = Store.from_uri(folder.as_uri())
    assert isinstance(from_uri, FileStore) and from_uri.local_path() == folder
    assert Store.from_uri(from_uri.uri).uri == from_uri.uri
    monkeypatch.chdir(tmp_path)
    relative = Store.from_uri("rel/store")
    assert relative.local_path() == tmp_path / "rel" / "store"
    assert relative.uri == (tmp_path / "rel" / "store").as_uri()
    assert Store.from_uri(str(folder)).uri == from_uri.uri

    s3 = Store.from_uri("s3://bucket/some/prefix/")
    assert isinstance(s3, S3Store) and s3.uri == "s3://bucket/some/prefix" and s3.local_path() is None
    assert s3.key_uri("a/b") == "s3://bucket/some/prefix/a/b"
    assert Store.from_uri("s3://bucket").uri == "s3://bucket"


@pytest.mark.parametrize(
    ("uri", "complaint"),
    [
        ("gs://bucket/prefix", "unsupported store URI 'gs://bucket/prefix'"),
        ("http://example.com/x", "unsupported store URI"),
        ("file://relative/path", "not absolute"),
        ("s3://", "names no bucket"),
        ("", "empty store URI"),
    ],
)
def test_from_uri_rejects_other_forms_naming_the_accepted_ones(uri: str, complaint: str) -> None:
    with pytest.raises(StoreError, match=complaint) as caught:
        Store.from_uri(uri)
    if "unsupported" in complaint:
        assert "file:///abs/path, a plain path, or s3://bucket/prefix" in str(caught.value)


def test_software_versions_come_from_metadata() -> None:
    versions = software_versions()
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["rpt_transfer"] and "boto3" in versions


# -- access checks: S3 ----------------------------------------------------------------------------------


def test_unreachable_endpoint_fails_fast_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    set_s3_env(monkeypatch, endpoint, TEST_KEY, TEST_KEY)
    store = Store.from_uri("s3://bucket/prefix")
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot reach S3 endpoint") as caught:
        store.check_access()
    assert time.monotonic() - started < 15
    assert endpoint in str(caught.value) and "AWS_ENDPOINT_URL" in str(caught.value)
    with pytest.raises(StoreError, match="cannot reach"):
        store.is_done(JOB)


def test_malformed_endpoint_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_s3_env(monkeypatch, "localhost:9000", TEST_KEY, TEST_KEY)
    with pytest.raises(StoreError, match="AWS_ENDPOINT_URL must look like"):
        Store.from_uri("s3://bucket/prefix").check_access()


def test_missing_bucket_is_named(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    set_s3_env(monkeypatch, s3_server, TEST_KEY, TEST_KEY)
    with pytest.raises(StoreError, match="no such S3 bucket 'no-such-bucket-rpt'"):
        Store.from_uri("s3://no-such-bucket-rpt/prefix").check_access()


def test_missing_credentials_are_named(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    set_s3_env(monkeypatch, s3_server, TEST_KEY, TEST_KEY)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match=r"bucket 'b-x'.*AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        Store.from_uri("s3://b-x/prefix").check_access()


@pytest.mark.parametrize("wrong", ["key", "secret"])
def test_wrong_credentials_are_refused_naming_bucket_and_variables(
    s3_auth_server: AuthS3,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    wrong: str,
) -> None:
    server = s3_auth_server
    uri = f"s3://{server.bucket}/prefix"
    set_s3_env(monkeypatch, server.endpoint, server.access_key, server.secret_key)
    Store.from_uri(uri).check_access()  # the right credentials work

    if wrong == "key":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    else:
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(StoreError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") as caught:
        Store.from_uri(uri).check_access()
    assert server.bucket in str(caught.value)


# -- access checks: folders -----------------------------------------------------------------------------


def test_file_store_under_a_regular_file_is_not_writable(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("")
    store = Store.from_uri(str(tmp_path / "plain-file" / "store"))
    with pytest.raises(StoreError, match="plain-file"):
        store.check_access()
    with pytest.raises(StoreError, match="cannot write to store folder"):
        store.write_bytes("a/b", b"x")


def test_check_access_creates_a_missing_root_but_only_when_writing(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.from_uri(str(tmp_path / "new")).check_access(write=False)
    Store.from_uri(str(tmp_path / "new")).check_access()
    assert (tmp_path / "new").is_dir() and list((tmp_path / "new").iterdir()) == []


_CHECK_ACCESS = textwrap.dedent(
    """
    import sys
    from rpt_transfer.errors import StoreError
    from rpt_transfer.store import Store

    try:
        Store.from_uri(sys.argv[1]).check_access()
    except StoreError as err:
        print(f"StoreError: {err}")
    else:
        print("writable")
    """
)
_PR_CAPBSET_DROP = 24
_DAC_CAPABILITIES = (1, 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: what lets root ignore file modes


def _drop_dac_capabilities() -> None:
    """Run in the child before exec: without these, even root obeys a folder's mode bits."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in _DAC_CAPABILITIES:
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_file_store_in_a_read_only_folder(tmp_path: Path) -> None:
    """Chmod does not stop root, so as root the check runs in a child without root's file capabilities."""
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    try:
        if os.geteuid() != 0:
            with pytest.raises(StoreError, match=f"cannot use store folder {folder}"):
                Store.from_uri(str(folder)).check_access()
            return
        try:
            result = subprocess.run(
                [sys.executable, "-c", _CHECK_ACCESS, str(folder)],
                capture_output=True,
                text=True,
                timeout=60,
                preexec_fn=_drop_dac_capabilities,
            )
        except subprocess.SubprocessError as err:  # preexec_fn failed: this container lacks CAP_SETPCAP
            pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE in a child: {err}")
        assert result.stdout.startswith(f"StoreError: cannot use store folder {folder}"), result
    finally:
        folder.chmod(0o755)
