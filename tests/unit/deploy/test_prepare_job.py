"""The prepare Job migrates the schema, then creates the topics, and can run before the workers exist."""

from __future__ import annotations

from typing import Any

from unit.deploy.ops_support import BASE, kustomization, of_kind

PREPARE = {"yibao.io/stage": "prepare"}


def _job(base_docs: list[dict[str, Any]]) -> dict[str, Any]:
    (job,) = of_kind(base_docs, "Job")
    return job


def test_prepare_job_migrates_the_schema_before_creating_topics(base_docs: list[dict[str, Any]]) -> None:
    pod = _job(base_docs)["spec"]["template"]["spec"]
    # init containers run to completion, in order, before the main container starts
    assert [c["command"] for c in pod["initContainers"]] == [["yibao", "db", "upgrade"]]
    assert [c["command"] for c in pod["containers"]] == [["yibao", "topics", "create"]]


def test_prepare_job_reads_the_same_settings_as_the_workers(
        base_docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]) -> None:
    def config_refs(pod: dict[str, Any]) -> set[str]:
        return {source["configMapRef"]["name"] for c in pod.get("initContainers", []) + pod["containers"]
                for source in c.get("envFrom", [])}

    job_refs = config_refs(_job(base_docs)["spec"]["template"]["spec"])
    assert job_refs == {"yibao-config"}
    for name, deployment in deployments.items():
        assert config_refs(deployment["spec"]["template"]["spec"]) == job_refs, name


def test_prepare_stage_holds_everything_the_job_needs(base_docs: list[dict[str, Any]]) -> None:
    # `kubectl apply -k <overlay> -l yibao.io/stage=prepare` must bring the Job and what it refers to
    job = _job(base_docs)
    assert PREPARE.items() <= job["metadata"]["labels"].items()
    pod = job["spec"]["template"]["spec"]
    (account,) = [a for a in of_kind(base_docs, "ServiceAccount")
                  if a["metadata"]["name"] == pod["serviceAccountName"]]
    assert PREPARE.items() <= account["metadata"]["labels"].items()
    (namespace,) = of_kind(base_docs, "Namespace")
    assert PREPARE.items() <= namespace["metadata"]["labels"].items()
    (generator,) = [g for g in kustomization(BASE)["configMapGenerator"] if g["name"] == "yibao-config"]
    assert PREPARE.items() <= generator["options"]["labels"].items()


def test_workers_are_not_in_the_prepare_stage(deployments: dict[str, dict[str, Any]]) -> None:
    for name, deployment in deployments.items():
        assert "yibao.io/stage" not in deployment["metadata"].get("labels", {}), name


def test_namespace_enforces_the_restricted_pod_security_standard(base_docs: list[dict[str, Any]]) -> None:
    (namespace,) = of_kind(base_docs, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert kustomization(BASE)["namespace"] == namespace["metadata"]["name"]
