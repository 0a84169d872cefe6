"""The Argo interpreter of argo_runner.py on small hand-written templates (quick; `python -c` containers)."""

import json
import sys
from pathlib import Path

import pytest
from argo_runner import (
    ERROR,
    FAILED,
    SKIPPED,
    SUCCEEDED,
    ArgoRunner,
    Invalid,
    Unsupported,
    evaluate_when,
    item_scope,
    k8s_expand,
)

PY = "python"
# A container that prints its argv and the environment variables named in its first argument as JSON.
ECHO = "import json, os, sys; print(json.dumps({'argv': sys.argv[2:], 'env': {k: os.environ.get(k) for k in sys.argv[1].split(',')}}))"


def workflow(
    templates: list[dict], parameters: list[dict] | None = None, entry: str = "main", **spec
) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "mini"},
        "spec": {
            "entrypoint": entry,
            "arguments": {"parameters": parameters or []},
            "templates": templates,
            **spec,
        },
    }


def container(name: str, code: str, args: list[str] | None = None, **fields) -> dict:
    tmpl = {"name": name, "container": {"image": "python:3", "command": [PY, "-c", code], "args": args or []}}
    tmpl.update(fields)
    return tmpl


def runner(doc: dict, tmp_path: Path, **kwargs) -> ArgoRunner:
    return ArgoRunner(doc, commands={PY: sys.executable}, workdir=tmp_path / "pods", **kwargs)


def printed(pod) -> dict:
    return json.loads(pod.stdout)


def test_parameters_inputs_and_pod_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKED_FROM_TEST", "yes")  # a pod never sees the test's own environment
    doc = workflow(
        [
            {
                "name": "main",
                "steps": [[{"name": "say", "template": "say", "arguments": {"parameters": [
                    {"name": "who", "value": "{{workflow.parameters.who}}-{{workflow.name}}"}]}}]],
            },
            container(
                "say",
                ECHO,
                ["A,B,C,D,KEY,OPT,P_X,LEAKED_FROM_TEST,HOME", "{{inputs.parameters.who}}", "{{inputs.parameters.greeting}}",
                 "{{workflow.parameters.mode}}", "$(A)", "$$(A)", "$(NOPE)"],
                inputs={"parameters": [{"name": "who"}, {"name": "greeting", "default": "hello"}]},
            ),
        ],
        parameters=[{"name": "who"}, {"name": "mode", "value": "fast"}, {"name": "count", "value": 3}],
    )  # fmt: skip
    env = [
        {"name": "A", "value": "{{workflow.parameters.mode}}"},
        {"name": "B", "value": "x-$(A)-$(C)"},  # C is defined later: left as written, as Kubernetes does
        {"name": "C", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "D", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
    ]
    env_from = [{"secretRef": {"name": "creds"}}, {"secretRef": {"name": "absent", "optional": True}},
                {"configMapRef": {"name": "cm"}, "prefix": "P_"}]  # fmt: skip
    doc["spec"]["templates"][1]["container"].update(env=env, envFrom=env_from)
    secrets = {"creds": {"token": "s3cret", "KEY": "k1", "OPT": "o"}}
    run = runner(doc, tmp_path, secrets=secrets, config_maps={"cm": {"X": "from-cm"}}).submit(
        {"who": "ann"}, name="wf-1"
    )
    assert run.status == SUCCEEDED, run.nodes
    assert run.parameters == {"who": "ann", "mode": "fast", "count": "3"}
    out = printed(run.pods[0])
    assert out["argv"] == ["ann-wf-1", "hello", "fast", "fast", "$(A)", "$(NOPE)"]
    assert out["env"]["A"] == "fast" and out["env"]["B"] == "x-fast-$(C)" and out["env"]["C"] == "s3cret"
    assert out["env"]["D"] is None and out["env"]["KEY"] == "k1" and out["env"]["P_X"] == "from-cm"
    assert out["env"]["LEAKED_FROM_TEST"] is None
    assert out["env"]["HOME"] == str(run.pods[0].pod_dir / "home")
    assert set(run.pods[0].env) == {
        "A",
        "B",
        "C",
        "KEY",
        "OPT",
        "token",
        "P_X",
        "PATH",
        "HOME",
        "HOSTNAME",
        "LANG",
    }


def test_missing_required_secret_errors_the_pod(tmp_path: Path) -> None:
    doc = workflow([container("main", "print(1)")])
    doc["spec"]["templates"][0]["container"]["envFrom"] = [{"secretRef": {"name": "creds"}}]
    run = runner(doc, tmp_path).submit()
    assert run.status == ERROR and "CreateContainerConfigError" in run.message and run.pods == []


def test_workflow_parameters_are_checked_as_argo_does(tmp_path: Path) -> None:
    doc = workflow(
        [container("main", "print(1)")],
        parameters=[{"name": "study"}, {"name": "e", "value": "a", "enum": ["a", "b"]}],
    )
    with pytest.raises(Invalid, match=r"study\.value or spec\.arguments\.study\.valueFrom is required"):
        runner(doc, tmp_path).submit({})
    with pytest.raises(Invalid, match="not declared"):
        runner(doc, tmp_path).submit({"study": "s", "typo": "x"})
    with pytest.raises(Invalid, match="enum"):
        runner(doc, tmp_path).submit({"study": "s", "e": "c"})
    defaulted = workflow([container("main", "print(1)")], parameters=[{"name": "study", "default": "x"}])
    with pytest.raises(Invalid, match="`default` is not a value"):
        runner(defaulted, tmp_path).submit({})


def test_fan_out_order_items_and_output_parameters(tmp_path: Path) -> None:
    # as a program writes it: spaces, newlines, a number literal Go keeps as written (2.50)
    items = '[{"b": 1, "a": "x", "l": ["p", "q"], "s": "say \\"hi\\""},\n {"b": 2.50, "a": "y", "l": [ ], "s": ""}]'
    # paths reach a container through its args (only args, env values and valueFrom.path are pod-mapped)
    write = f"import os, sys; d = sys.argv[1]; os.makedirs(d, exist_ok=True); open(d + '/items', 'w').write({items!r} + '\\n'); open(d + '/n', 'w').write('2\\n')"
    doc = workflow([
        {"name": "main", "steps": [
            [{"name": "make", "template": "make"}],
            [{"name": "each", "template": "each", "withParam": "{{steps.make.outputs.parameters.items}}",
              "arguments": {"parameters": [{"name": "whole", "value": "{{item}}"}, {"name": "a", "value": "{{item.a}}"},
                                           {"name": "b", "value": "{{item.b}}"}, {"name": "l", "value": "{{item.l}}"},
                                           {"name": "s", "value": "{{item.s}}"}]}},
             {"name": "words", "template": "word", "withItems": ["one", 2, True],
              "arguments": {"parameters": [{"name": "w", "value": "{{item}}"}]}}],
            [{"name": "after", "template": "word", "arguments": {"parameters": [
                {"name": "w", "value": "{{steps.each.outputs.parameters.got}}|{{steps.make.outputs.parameters.n}}|{{workflow.outputs.parameters.count}}"}]}}],
        ]},
        container("make", write, ["/tmp/outputs"], outputs={"parameters": [
            {"name": "items", "valueFrom": {"path": "/tmp/outputs/items"}},
            {"name": "n", "valueFrom": {"path": "/tmp/outputs/n"}, "globalName": "count"},
            {"name": "absent", "valueFrom": {"path": "/tmp/outputs/none", "default": "d"}}]}),
        container("each", "import os, sys; os.makedirs(sys.argv[1], exist_ok=True); open(sys.argv[1] + '/got', 'w').write(sys.argv[3]); print(sys.argv[2:])",
                  ["/tmp/outputs/", "{{inputs.parameters.whole}}", "{{inputs.parameters.a}}", "{{inputs.parameters.b}}", "{{inputs.parameters.l}}", "{{inputs.parameters.s}}"],
                  inputs={"parameters": [{"name": n} for n in ("whole", "a", "b", "l", "s")]},
                  outputs={"parameters": [{"name": "got", "valueFrom": {"path": "/tmp/outputs/got"}}]}),
        container("word", "import sys; print(sys.argv[1])", ["{{inputs.parameters.w}}"], inputs={"parameters": [{"name": "w"}]}),
    ])  # fmt: skip
    run = runner(doc, tmp_path).submit()
    assert run.status == SUCCEEDED, [(n.name, n.message) for n in run.nodes]
    assert [p.template for p in run.pods] == ["make", "each", "each", "word", "word", "word", "word"]
    make = run.pods[0]
    assert make.outputs["n"] == "2" and make.outputs["absent"] == "d"  # one trailing newline trimmed
    assert run.outputs == {"count": "2"}
    first, second = (pod.container_argv[4:] for pod in run.pods[1:3])
    assert first == [
        '{"a":"x","b":1,"l":["p","q"],"s":"say \\"hi\\""}',
        "x",
        "1",
        '["p","q"]',
        'say \\"hi\\"',
    ]
    assert second == ['{"a":"y","b":2.50,"l":[],"s":""}', "y", "2.50", "[]", ""]
    assert [p.stdout.strip() for p in run.pods[3:6]] == ["one", "2", "true"]
    assert run.pods[6].stdout.strip() == '["x","y"]|2|2'
    # pods writing the same container path do not see each other's files
    assert run.pods[1].container_argv[3] == "/tmp/outputs/"
    assert run.pods[1].argv[3] == f"{run.pods[1].pod_dir}/root/tmp/outputs/"
    assert all("/tmp/outputs" not in str(pod.pod_dir) for pod in run.pods)
    assert (run.pods[1].pod_dir / "root/tmp/outputs/got").read_text() == "x"
    assert (run.pods[2].pod_dir / "root/tmp/outputs/got").read_text() == "y"
    names = [n.name for n in run.nodes if n.template == "each"]
    assert names[0].endswith('each(0:a:x,b:1,l:["p","q"],s:say \\"hi\\")')


def test_when_and_empty_fan_out(tmp_path: Path) -> None:
    doc = workflow([
        {"name": "main", "steps": [[
            {"name": "gpu", "template": "word", "when": "{{item.gpus}} > 0", "withParam": '[{"gpus": 2}, {"gpus": 0}]',
             "arguments": {"parameters": [{"name": "w", "value": "gpu{{item.gpus}}"}]}},
            {"name": "cpu", "template": "word", "when": "{{item.gpus}} == 0", "withParam": '[{"gpus": 2}, {"gpus": 0}]',
             "arguments": {"parameters": [{"name": "w", "value": "cpu{{item.gpus}}"}]}},
            {"name": "none", "template": "word", "withParam": "[]", "arguments": {"parameters": [{"name": "w", "value": "{{item}}"}]}},
        ]]},
        container("word", "import sys; print(sys.argv[1])", ["{{inputs.parameters.w}}"], inputs={"parameters": [{"name": "w"}]}),
    ])  # fmt: skip
    run = runner(doc, tmp_path).submit()
    assert run.status == SUCCEEDED
    assert [p.stdout.strip() for p in run.pods] == ["gpu2", "cpu0"]
    assert [n.phase for n in run.nodes if n.phase == SKIPPED] == [SKIPPED] * 3


def test_when_follows_govaluate() -> None:
    assert evaluate_when("Succeeded == Succeeded") and evaluate_when("Failed != Succeeded")
    assert evaluate_when("'a b' == \"a b\"") and not evaluate_when("2 > 10") and evaluate_when("'2' > '10'")
    assert evaluate_when("1 == 1.0") and not evaluate_when("1 == '1'")
    assert evaluate_when("(1 > 0 && !(2 < 1)) || false")
    with pytest.raises(Exception, match="compares a number with a string"):
        evaluate_when("1 > a")
    for expression in ("1 + 1 > 0", "a =~ b", "len(x) > 0", "1 > 0 ? a : b", "tiny-base == tiny-base"):
        with pytest.raises(Unsupported):
            evaluate_when(expression)


def test_item_formatting_matches_argo() -> None:
    assert item_scope("plain") == {"item": "plain"}
    assert item_scope(3) == {"item": "3"} and item_scope(True) == {"item": "true"}
    assert item_scope(["a", 1]) == {"item": '["a",1]'}
    scope = item_scope({"z": {"y": 1, "x": 2}, "a": "<&>"})
    assert scope == {"item": '{"a":"<&>","z":{"y":1,"x":2}}', "item.a": "<&>", "item.z": '{"y":1,"x":2}'}


def test_kubernetes_expansion() -> None:
    assert k8s_expand("$(A)/$$(A)/$(B)/$", {"A": "1"}) == "1/$(A)/$(B)/$"


def test_failure_stops_later_groups_and_exit_handler_sees_failed(tmp_path: Path) -> None:
    doc = workflow(
        [
            {"name": "main", "steps": [
                [{"name": "bad", "template": "fail"}, {"name": "sibling", "template": "ok"}],
                [{"name": "never", "template": "ok"}],
            ]},
            container("fail", "import sys; print('boom', file=sys.stderr); sys.exit(3)",
                      retryStrategy={"limit": "3", "expression": "asInt(lastRetry.exitCode) in [75]"}),
            container("ok", "print('ok')"),
            container("bye", "import sys; print(sys.argv[1:])", ["{{workflow.status}}", "{{workflow.failures}}"]),
        ],
        onExit="bye",
    )  # fmt: skip
    run = runner(doc, tmp_path).submit()
    assert run.status == FAILED and run.exit_status_seen == FAILED
    assert [p.template for p in run.pods] == ["fail", "ok", "bye"]  # the sibling still ran; no retry
    assert run.pods[0].exit_code == 3 and "boom" in run.pods[0].stderr
    assert run.pods[0].retry_strategy == {"limit": "3", "expression": "asInt(lastRetry.exitCode) in [75]"}
    assert (
        run.pods[2].container_argv[3] == FAILED and '"templateName":"fail"' in run.pods[2].container_argv[4]
    )


def test_continue_on_failed_and_failed_exit_handler(tmp_path: Path) -> None:
    doc = workflow(
        [
            {"name": "main", "steps": [
                [{"name": "bad", "template": "fail", "continueOn": {"failed": True}}],
                [{"name": "next", "template": "status", "arguments": {"parameters": [
                    {"name": "s", "value": "{{steps.bad.status}}/{{steps.bad.exitCode}}"}]}}],
            ]},
            container("fail", "import sys; sys.exit(4)"),
            container("status", "import sys; print(sys.argv[1])", ["{{inputs.parameters.s}}"],
                      inputs={"parameters": [{"name": "s"}]}),
        ],
        onExit="fail",
    )  # fmt: skip
    run = runner(doc, tmp_path).submit()
    assert run.exit_status_seen == SUCCEEDED and run.status == FAILED  # the exit handler failed
    assert run.pods[1].stdout.strip() == "Failed/4"


def test_missing_output_file_errors_and_deadline_kills(tmp_path: Path) -> None:
    doc = workflow([
        {"name": "main", "steps": [[{"name": "a", "template": "nofile"}, {"name": "b", "template": "slow"}]]},
        container("nofile", "pass", outputs={"parameters": [{"name": "x", "valueFrom": {"path": "/tmp/outputs/x"}}]}),
        container("slow", "import time; time.sleep(30)", activeDeadlineSeconds="{{workflow.parameters.deadline}}"),
    ], parameters=[{"name": "deadline", "value": "1"}])  # fmt: skip
    run = runner(doc, tmp_path).submit()
    assert run.status == FAILED
    assert run.pods[0].phase == ERROR and "/tmp/outputs/x not found" in run.pods[0].message
    assert run.pods[1].phase == FAILED and "deadline" in run.pods[1].message and run.pods[1].seconds < 10


def test_unresolved_variable_errors_the_node(tmp_path: Path) -> None:
    doc = workflow([container("main", "print(1)", ["{{workflow.outputs.parameters.plan}}"])])
    run = runner(doc, tmp_path).submit()
    assert run.status == ERROR and "failed to resolve {{workflow.outputs.parameters.plan}}" in run.message


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d["spec"]["templates"].append({"name": "x", "dag": {"tasks": []}}), None),
        (lambda d: d["spec"]["templates"][0].update(script={"image": "x", "source": "y"}), "script"),
        (lambda d: d["spec"]["templates"][0].update(dag={"tasks": []}), "dag"),
        (lambda d: d["spec"]["templates"][1].update(resource={"action": "create"}), "resource"),
        (
            lambda d: d["spec"]["templates"][0]["steps"][0][0].update(withSequence={"count": "2"}),
            "withSequence",
        ),
        (lambda d: d["spec"]["templates"][0]["steps"][0][0].update(templateRef={"name": "t"}), "templateRef"),
        (lambda d: d["spec"]["templates"][1]["container"].update(lifecycle={}), "lifecycle"),
        (lambda d: d["spec"]["templates"][1].update(memoize={"key": "k"}), "memoize"),
        (lambda d: d["spec"]["templates"][1].update(sidecars=[]), "sidecars"),
        (lambda d: d["spec"]["templates"][1].update(outputs={"artifacts": []}), "artifacts"),
        (lambda d: d["spec"].update(hooks={}), "hooks"),
        (
            lambda d: d["spec"]["templates"][1]["container"].update(args=["{{=sprig.upper('x')}}"]),
            "expression tag",
        ),
        (lambda d: d["spec"]["templates"][1]["container"].update(command=["sh", "-c", "true"]), "not mapped"),
        (
            lambda d: d["spec"]["templates"][1].update(
                podSpecPatch='{"containers": [{"name": "main", "env": []}]}'
            ),
            "env",
        ),
    ],
)
def test_unknown_fields_are_refused(tmp_path: Path, change, match) -> None:
    doc = workflow(
        [{"name": "main", "steps": [[{"name": "a", "template": "c"}]]}, container("c", "print(1)")]
    )
    change(doc)
    if match is None:  # a dag template is refused when it runs, not when it merely exists
        assert runner(doc, tmp_path).submit().status == SUCCEEDED
        return
    with pytest.raises(Unsupported, match=match):
        runner(doc, tmp_path).submit()


def test_placement_fields_are_recorded_not_enforced(tmp_path: Path) -> None:
    doc = workflow(
        [container("main", "print(1)", nodeSelector={"gpu": "yes"}, synchronization={"semaphores": []},
                   metadata={"labels": {"role": "x"}})],
        podGC={"strategy": "OnPodSuccess"},
    )  # fmt: skip
    run = runner(doc, tmp_path).submit()
    assert run.status == SUCCEEDED and run.pods[0].labels == {"role": "x"}
    assert {"spec.podGC", "templates.main.nodeSelector", "templates.main.synchronization"} <= set(run.ignored)


def test_a_non_root_pod_that_writes_under_home_is_noted(tmp_path: Path) -> None:
    code = "import os, sys; os.makedirs(os.path.join(os.environ['HOME'], '.cache')) if sys.argv[1:] == ['write'] else None"
    doc = workflow([
        {"name": "main", "steps": [[{"name": "a", "template": "writes"}, {"name": "b", "template": "reads"}]]},
        container("writes", code, ["write"]), container("reads", code),
    ])  # fmt: skip
    for tmpl in doc["spec"]["templates"][1:]:
        tmpl["container"]["securityContext"] = {"runAsUser": 65534, "runAsNonRoot": True}
    run = runner(doc, tmp_path).submit()
    assert run.status == SUCCEEDED
    assert "cannot write in a pod" in run.pods[0].notes[0] and run.pods[1].notes == []


RAYJOB = """apiVersion: ray.io/v1
kind: RayJob
metadata:
  generateName: t-
spec:
  entrypoint: {{=toJson("python -c 'import os, sys; print(os.environ[\\"WHO\\"]); sys.exit(" + inputs.parameters.code + ")'")}}
  rayClusterSpec:
    headGroupSpec:
      template:
        spec:
          containers:
          - name: ray-head
            image: python:3
            env: [{name: WHO, value: {{=toJson(workflow.parameters.who)}}}]
"""


def resource(success: str = "status.jobStatus == SUCCEEDED", kind: str = "RayJob") -> dict:
    return {
        "name": "job",
        "inputs": {"parameters": [{"name": "code"}]},
        "resource": {
            "action": "create",
            "manifest": RAYJOB.replace("kind: RayJob", f"kind: {kind}"),
            "successCondition": success,
            "failureCondition": "status.jobDeploymentStatus == Failed",
        },
    }


def calls(*codes: str) -> dict:
    steps = [[{"name": f"s{i}", "template": "job", "arguments": {"parameters": [{"name": "code", "value": c}]}}]
             for i, c in enumerate(codes)]  # fmt: skip
    return {"name": "main", "steps": steps}


def test_a_rayjob_runs_its_entrypoint_as_its_head_and_its_conditions_decide(tmp_path: Path) -> None:
    doc = workflow([calls("0", "3"), resource()], [{"name": "who", "value": "ann"}])
    run = runner(doc, tmp_path).submit()
    assert run.status == FAILED
    assert [(pod.phase, pod.exit_code, pod.stdout.strip()) for pod in run.pods] == [
        (SUCCEEDED, 0, "ann"), (FAILED, 3, "ann")
    ]  # fmt: skip
    assert [obj["status"]["jobDeploymentStatus"] for obj in run.resources] == ["Complete", "Failed"]
    assert run.nodes[1].message == "failure condition 'status.jobDeploymentStatus == Failed' evaluated true"
    params = [{"name": "who", "value": "bo"}]
    waits = runner(
        workflow([calls("0"), resource("status.jobStatus == NEVER")], params), tmp_path / "b"
    ).submit()
    (node,) = [node for node in waits.nodes if node.template == "job"]
    assert node.phase == ERROR and "Argo would wait until the deadline" in node.message
    with pytest.raises(Unsupported, match=r"only ray\.io/v1 RayJob"):
        runner(workflow([calls("0"), resource(kind="ConfigMap")], params), tmp_path / "c").submit()
