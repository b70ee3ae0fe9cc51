"""The workloads: hardened pods, probes, resources, replicas, rollout, disruption budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.manifests import BASE, OVERLAY, Manifest, containers, find, pod_templates, render

LAYOUTS = pytest.mark.parametrize("layout", [BASE, OVERLAY], ids=["base", "overlay"])


def hardening_problems(pod: Manifest) -> list[str]:
    """What keeps ``pod`` from running as a non-root numeric user, read-only, with no
    capabilities, no privilege escalation and the runtime's seccomp profile."""
    problems = []
    pod_context = pod.get("securityContext", {})
    seccomp = pod_context.get("seccompProfile", {}).get("type")
    if pod_context.get("runAsNonRoot") is not True:
        problems.append("pod: runAsNonRoot is not true")
    for container in containers(pod):
        name = container["name"]
        context = {**pod_context, **container.get("securityContext", {})}
        uid = context.get("runAsUser")
        if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
            problems.append(f"{name}: runAsUser {uid!r} is not a numeric non-root user")
        if context.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: privilege escalation allowed")
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        capabilities = context.get("capabilities", {})
        if capabilities.get("drop") != ["ALL"] or capabilities.get("add"):
            problems.append(f"{name}: capabilities not dropped")
        if context.get("seccompProfile", {}).get("type", seccomp) != "RuntimeDefault":
            problems.append(f"{name}: seccomp profile is not RuntimeDefault")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                problems.append(f"{name}: no cpu and memory {kind}")
    return problems


@LAYOUTS
def test_every_pod_is_hardened(layout: Path) -> None:
    problems = {
        w["metadata"]["name"]: hardening_problems(p) for w, p in pod_templates(render(layout))
    }
    assert set(problems) == {"imageledger-worker", "imageledger-bridge", "imageledger-migrate"}
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_hardening_check_fails_on_a_weaker_pod() -> None:
    _, pod = next(pod_templates(render(BASE)))
    container = pod["containers"][0]
    container["securityContext"].update(runAsUser="imageledger", readOnlyRootFilesystem=False)
    container["securityContext"]["capabilities"] = {"drop": ["ALL"], "add": ["NET_ADMIN"]}
    del pod["securityContext"]["seccompProfile"]
    del container["securityContext"]["seccompProfile"]
    del container["resources"]["limits"]
    text = " ".join(hardening_problems(pod))
    for part in ("numeric", "writable", "capabilities", "seccomp", "limits"):
        assert part in text


@LAYOUTS
def test_the_workers(layout: Path) -> None:
    objects = render(layout)
    worker = find(objects, "Deployment", "imageledger-worker")
    assert worker["spec"]["replicas"] == 2
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    budget = find(objects, "PodDisruptionBudget", "imageledger-worker")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 0 < budget["spec"]["minAvailable"] < worker["spec"]["replicas"]


@LAYOUTS
def test_the_bridge(layout: Path) -> None:
    bridge = find(render(layout), "Deployment", "imageledger-bridge")
    assert bridge["spec"]["replicas"] == 1
    assert bridge["spec"]["strategy"] == {"type": "Recreate"}
    pod = bridge["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "imageledger-bridge"
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


@LAYOUTS
def test_the_migration_job(layout: Path) -> None:
    job = find(render(layout), "Job", "imageledger-migrate")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in {"OnFailure", "Never"}
    assert pod["automountServiceAccountToken"] is False
    assert job["spec"]["backoffLimit"] > 0
