"""Kubernetes (Zero to JupyterHub): what LearnHub asks of KubeSpawner for learner and grader
servers, and the pod of one grading sandbox, as plain data.

Pure builders, as kubespawner's objects.py: no cluster is asked, nothing is imported from
kubespawner or a Kubernetes client. They carry over what the Docker backend guarantees
(spawners.learner_host_config; the sandbox's pod is learnhub.grading.pod) where Kubernetes
has the same control, and `NOT_IN_A_POD_SPEC` names what only the cluster's operator can
set. docs/kubernetes.md says which of this has run on a cluster (none of it yet).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from .services import _current
from .settings import Settings

# The learner image's user (images/learner/Dockerfile), who owns the home and course files.
LEARNER_UID = 1000
HOME = "/home/learner"
HOME_VOLUME = "home"
TMP_VOLUME = "tmp"
# The claim of LearnHub's state directory (ReadWriteMany): the hub's pod mounts it whole
# (courses, exchange, the services' files), a course's grader server its course's folder
# only, as home (subPath). Learners' servers never mount it.
STATE_CLAIM = "learnhub-state"
PVC_NAME_TEMPLATE = "learnhub-home-{username}"
# Kubernetes label keys: a DNS prefix, then a name.
K8S_ROLE_LABEL = "learnhub.org/role"

# What Docker sets per container and a pod spec cannot: the cluster's operator sets it.
NOT_IN_A_POD_SPEC = {
    "pids limit": "the kubelet's podPidsLimit (KubeletConfiguration), for every pod of a node",
    "init process": "shareProcessNamespace makes the pause container PID 1, which reaps",
    "log size": "the kubelet's containerLogMaxSize",
}


def security_context(*, read_only: bool = True) -> dict[str, Any]:
    """A container's securityContext: uid 1000, no capabilities, no privilege escalation,
    the runtime's default seccomp profile, a read-only root filesystem."""
    return {
        "runAsUser": LEARNER_UID,
        "runAsGroup": LEARNER_UID,
        "runAsNonRoot": True,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def memory_volume(name: str, size: str) -> dict[str, Any]:
    """An emptyDir in memory (charged to the pod's memory limit), at most `size`."""
    return {"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": size}}


def quantity(docker_size: str) -> str:
    """Docker's size syntax (256m, 2G) as a Kubernetes quantity (256Mi, 2Gi)."""
    text = str(docker_size).strip()
    units = {"k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti"}
    if text[-1:].lower() in units and text[:-1].isdigit():
        return text[:-1] + units[text[-1].lower()]
    if text.isdigit():
        return text
    raise ValueError(f"{docker_size!r} is not a size such as 256m or 2G")


def learner_spawner_traits(
    spawner: dict[str, Any],
    *,
    tmp_size: str = "256m",
    storage_capacity: str = "1Gi",
    storage_class: str | None = None,
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    """KubeSpawner's options (c.KubeLearnerSpawner) for the `spawner` section of
    learnhub.yaml: the Docker backend's limits and confinement, a home claim per learner
    deleted with the learner, no service account token, no image but the first allowed."""
    traits: dict[str, Any] = {
        "image": spawner["images"][0],
        # Images come from the operator's registry (`learnhub images build --push`).
        "image_pull_policy": "IfNotPresent",
        "uid": LEARNER_UID,
        "gid": LEARNER_UID,
        "fs_gid": LEARNER_UID,
        "privileged": False,
        "allow_privilege_escalation": False,
        "container_security_context": security_context(),
        "pod_security_context": {
            "runAsNonRoot": True,
            "fsGroup": LEARNER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # A learner's server needs nothing of the Kubernetes API.
        "automount_service_account_token": False,
        "extra_pod_config": {"shareProcessNamespace": True, "enableServiceLinks": False},
        "working_dir": HOME,
        # Named, so that KubeSpawner passes the server's arguments (role, extensions) on.
        "cmd": ["jupyterhub-singleuser"],
        "storage_pvc_ensure": True,
        "pvc_name_template": PVC_NAME_TEMPLATE,
        "storage_capacity": storage_capacity,
        "storage_access_modes": ["ReadWriteOnce"],
        # delete_forever (the hub deleting the learner: erasure, expiry) deletes the claim.
        "delete_pvc": True,
        "volumes": [
            {"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": "{pvc_name}"}},
            memory_volume(TMP_VOLUME, quantity(tmp_size)),
        ],
        "volume_mounts": [
            {"name": HOME_VOLUME, "mountPath": HOME},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},  # noqa: S108 (the pod's own /tmp)
        ],
        "extra_labels": {K8S_ROLE_LABEL: "learner-server"},
        "start_timeout": spawner["start_timeout"],
    }
    if spawner.get("cpu_limit"):
        traits["cpu_limit"] = float(spawner["cpu_limit"])
    if spawner.get("mem_limit"):
        # JupyterHub's byte specification, as for DockerSpawner (2G is 2 GiB).
        traits["mem_limit"] = spawner["mem_limit"]
    if storage_class:
        traits["storage_class"] = storage_class
    if node_selector:
        traits["node_selector"] = dict(node_selector)
    return traits


def grader_home(course: str, claim: str = STATE_CLAIM) -> tuple[dict, dict]:
    """The volume and mount that make a course's directory of the state claim (its
    courses/<course>) a grader server's home, in place of a home claim of its own."""
    volume = {"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": claim}}
    mount = {"name": HOME_VOLUME, "mountPath": HOME, "subPath": f"courses/{course}"}
    return volume, mount


def update_kubernetes(c, settings: Settings) -> None:
    """Learner and grader servers as pods (spawner.backend kubernetes), on top of what Zero
    to JupyterHub's chart configured: its labels and pod options stay, LearnHub's are added.
    LearnHub's services listen on every interface of the hub's pod and learners reach them
    at spawner.kubernetes.hub_host (service_environment, apply_config)."""
    spawner = settings["spawner"]
    kubernetes = spawner["kubernetes"]
    traits = learner_spawner_traits(
        spawner,
        storage_capacity=kubernetes["storage_capacity"],
        storage_class=kubernetes["storage_class"],
        node_selector=kubernetes["node_selector"],
    )
    for name in ("extra_labels", "extra_pod_config", "node_selector"):
        if name in traits:
            traits[name] = {**_current(c.KubeSpawner, name, {}), **traits[name]}
    for name, value in traits.items():
        setattr(c.KubeLearnerSpawner, name, value)
    c.JupyterHub.hub_connect_ip = kubernetes["hub_host"]


def kubernetes_findings(settings: Settings) -> list[tuple[str, str]]:
    """`learnhub doctor` lines for spawner.backend kubernetes (no cluster is asked)."""
    spawner = settings["spawner"]
    kubernetes = spawner["kubernetes"]
    if importlib.util.find_spec("kubespawner") is None:
        return [
            (
                "error",
                "learner servers: spawner.backend is kubernetes but kubespawner is not "
                "installed: pip install 'learnhub[kubernetes]'",
            )
        ]
    limits = f"{spawner['cpu_limit']} CPU, {spawner['mem_limit']} memory per learner"
    return [
        (
            "ok",
            f"learner servers: Kubernetes pods (KubeSpawner), {limits}; homes on claims of "
            f"{kubernetes['storage_capacity']}, state on {kubernetes['state_claim']}; "
            f"services at {kubernetes['hub_host']}",
        ),
        ("warning", f"not set by a pod spec, set them on the cluster: {unset_on_a_pod()}"),
    ]


def unset_on_a_pod() -> str:
    return "; ".join(f"{what} ({how})" for what, how in NOT_IN_A_POD_SPEC.items())
