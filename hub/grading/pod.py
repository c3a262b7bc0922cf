"""A grading sandbox as a Kubernetes pod: the pod of one submission and the network policy
that shuts it off, as plain data (learnhub.kubernetes's builders; docs/kubernetes.md).

The Docker sandbox's container (sandbox.container_create_command) with the same limits. No
sandbox runs these pods yet: the grading service on Kubernetes uses the process sandbox.
"""

from __future__ import annotations

from typing import Any

from ..kubernetes import (
    K8S_ROLE_LABEL,
    LEARNER_UID,
    TMP_VOLUME,
    memory_volume,
    quantity,
    security_context,
)
from .sandbox import CONTAINER_WORKDIR, SANDBOX_LABEL, SANDBOX_ROLE, Limits

SANDBOX_POLICY = "learnhub-grading-sandbox"


def sandbox_pod(
    name: str,
    image: str,
    limits: Limits,
    *,
    annotations: dict[str, str] | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The pod of one submission's sandbox, as `container_create_command` makes its
    container: the runner reads the request on its standard input (attached, once), the
    pod's own network policy (sandbox_network_policy) lets nothing in or out, and the pod
    is killed at the submission's wall clock. `annotations` name the pod (the service's
    submission id, its owner), as the Docker sandbox's labels name its container."""
    scratch = quantity(f"{limits.scratch_mb}m")
    resources = {"cpu": f"{limits.cpus:g}", "memory": f"{limits.memory_mb}Mi"}
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {K8S_ROLE_LABEL: SANDBOX_ROLE},
        "annotations": {SANDBOX_LABEL: SANDBOX_ROLE, **(annotations or {})},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "shareProcessNamespace": True,
            "hostname": "sandbox",
            "activeDeadlineSeconds": int(limits.wall_clock_s),
            "terminationGracePeriodSeconds": 0,
            "securityContext": {
                "runAsNonRoot": True,
                "fsGroup": LEARNER_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "runner",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    # Open files and core dumps as Docker's --ulimit (prlimit: util-linux).
                    "command": [
                        *("prlimit", f"--nofile={limits.open_files}", "--core=0", "--"),
                        *("python", "-I", "/opt/learnhub/runner.py"),
                        *("--workdir", CONTAINER_WORKDIR),
                    ],
                    "stdin": True,
                    "stdinOnce": True,
                    "workingDir": CONTAINER_WORKDIR,
                    # Requests equal to limits: the Guaranteed class, never over-committed.
                    "resources": {"limits": resources, "requests": resources},
                    "securityContext": security_context(),
                    "volumeMounts": [
                        {"name": TMP_VOLUME, "mountPath": "/tmp"},  # noqa: S108
                        {"name": "work", "mountPath": CONTAINER_WORKDIR},
                    ],
                }
            ],
            "volumes": [memory_volume(TMP_VOLUME, scratch), memory_volume("work", scratch)],
        },
    }


def sandbox_network_policy(namespace: str | None = None) -> dict[str, Any]:
    """No traffic in or out of a grading sandbox's pod (Docker's --network none)."""
    metadata: dict[str, Any] = {"name": SANDBOX_POLICY}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchLabels": {K8S_ROLE_LABEL: SANDBOX_ROLE}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [],
        },
    }
