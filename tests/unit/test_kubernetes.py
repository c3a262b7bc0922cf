"""What LearnHub asks of Kubernetes, checked with kubespawner's own pod builder and the
Kubernetes client's models: no cluster (none can run here; docs/kubernetes.md)."""

from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from traitlets.config import Config

from learnhub.grading.pod import SANDBOX_POLICY, sandbox_network_policy, sandbox_pod
from learnhub.grading.sandbox import CONTAINER_WORKDIR, Limits
from learnhub.kubernetes import (
    K8S_ROLE_LABEL,
    STATE_CLAIM,
    learner_spawner_traits,
    quantity,
)
from learnhub.settings import load_settings
from learnhub.spawners import nbgrader_extension_args

EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 (compared, not bound)
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VALUES = DEPLOY / "values.yaml"


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path, monkeypatch):
    """A kubeconfig kubespawner can load; its cluster is never called (manifests only)."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "none", "user": {"token": "unused"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    # Read once, when kubernetes_asyncio is imported: set where it is kept.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))


class User:
    def __init__(self, name):
        self.name = name
        self.id = 1
        self.url = f"/user/{name}/"
        self.escaped_name = name


def spawner_for(username: str, spawner_settings: dict | None = None):
    from learnhub.kubernetes_spawner import KubeLearnerSpawner

    settings = load_settings(None, environ={"LEARNHUB_STATE_DIR": "/nonexistent"})
    traits = learner_spawner_traits({**settings["spawner"], **(spawner_settings or {})})
    return KubeLearnerSpawner(
        _mock=True, user=User(username), config=Config({"KubeLearnerSpawner": traits})
    )


async def as_dict(model) -> dict:
    async with ApiClient() as client:
        return client.sanitize_for_serialization(model)


async def model_round_trip(manifest: dict, kind: str) -> dict:
    """`manifest` read as the client's model `kind` and written back: a misspelt or unknown
    field is dropped on the way, so the round trip differs."""
    async with ApiClient() as client:
        model = client._ApiClient__deserialize(manifest, kind)
        return client.sanitize_for_serialization(model)


async def test_a_learners_pod_is_confined_as_its_container_is():
    pod = await as_dict(await spawner_for("learner-a").get_pod_manifest())
    spec = pod["spec"]
    [container] = spec["containers"]
    context = container["securityContext"]
    assert context["runAsUser"] == 1000 and context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["fsGroup"] == 1000
    assert spec["automountServiceAccountToken"] is False
    # The pause container is PID 1 and reaps, as Docker's --init.
    assert spec["shareProcessNamespace"] is True
    assert spec["enableServiceLinks"] is False
    assert container["resources"]["limits"] == {"cpu": 1.0, "memory": 2 * 1024**3}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"] == {"claimName": "learnhub-home-learner-a"}
    assert volumes["tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/home/learner": "home", "/tmp": "tmp"}
    assert pod["metadata"]["labels"][K8S_ROLE_LABEL] == "learner-server"
    assert container["image"] == "learnhub/learner:latest"


async def test_a_learners_server_gets_the_learners_arguments_and_role():
    spawner = spawner_for("learner-a")
    pod = await as_dict(await spawner.get_pod_manifest())
    [container] = pod["spec"]["containers"]
    # Without a command KubeSpawner drops the arguments: it is named.
    assert container["args"][0] == "jupyterhub-singleuser"
    for argument in nbgrader_extension_args(grader=False):
        assert argument in container["args"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LEARNHUB_SERVER_ROLE"] == "learner"


async def test_a_learners_home_claim_is_made_and_deleted_with_the_learner():
    spawner = spawner_for("learner-a")
    claim = await as_dict(spawner.get_pvc_manifest())
    assert claim["metadata"]["name"] == "learnhub-home-learner-a"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"] == {"storage": "1Gi"}
    assert spawner.storage_pvc_ensure is True
    assert spawner.delete_pvc is True


async def test_a_grader_servers_home_is_its_course_folder_of_the_state_claim():
    spawner = spawner_for("grader-cabcdefgh123")
    pod = await as_dict(await spawner.get_pod_manifest())
    spec = pod["spec"]
    [container] = spec["containers"]
    homes = [v for v in spec["volumes"] if v["name"] == "home"]
    assert homes == [{"name": "home", "persistentVolumeClaim": {"claimName": STATE_CLAIM}}]
    [home] = [m for m in container["volumeMounts"] if m["mountPath"] == "/home/learner"]
    assert home["subPath"] == "courses/cabcdefgh123"
    # No claim of its own is made, and the course's files do not go with the grader account.
    assert spawner.storage_pvc_ensure is False
    assert spawner.delete_pvc is False
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["LEARNHUB_SERVER_ROLE"], env["LEARNHUB_COURSE"]) == ("grader", "cabcdefgh123")
    for argument in nbgrader_extension_args(grader=True):
        assert argument in container["args"]


async def test_limits_from_the_settings_reach_the_pod():
    spawner = spawner_for("learner-b", {"cpu_limit": 0.5, "mem_limit": "512M"})
    pod = await as_dict(await spawner.get_pod_manifest())
    [container] = pod["spec"]["containers"]
    assert container["resources"]["limits"] == {"cpu": 0.5, "memory": 512 * 1024**2}


async def test_a_sandbox_pod_has_the_sandbox_containers_limits():
    limits = Limits(cpus=1.5, memory_mb=768, pids=64, notebook_timeout_s=120, open_files=100)
    pod = sandbox_pod("grade-1", "learnhub/grader:latest", limits, annotations={"id": "s1"})
    assert await model_round_trip(pod, "V1Pod") == pod
    spec = pod["spec"]
    [runner] = spec["containers"]
    assert runner["resources"]["limits"] == {"cpu": "1.5", "memory": "768Mi"}
    assert runner["resources"]["requests"] == runner["resources"]["limits"]
    assert runner["securityContext"]["readOnlyRootFilesystem"] is True
    assert runner["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert runner["stdin"] is True and runner["stdinOnce"] is True
    assert runner["command"][:3] == ["prlimit", "--nofile=100", "--core=0"]
    assert runner["command"][-2:] == ["--workdir", CONTAINER_WORKDIR]
    assert spec["activeDeadlineSeconds"] == int(limits.wall_clock_s)
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    sizes = {v["name"]: v["emptyDir"] for v in spec["volumes"]}
    assert sizes == {n: {"medium": "Memory", "sizeLimit": "64Mi"} for n in ("tmp", "work")}
    assert pod["metadata"]["annotations"]["id"] == "s1"
    # The network policy selects it.
    policy = sandbox_network_policy("learnhub")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


async def test_the_sandbox_policy_lets_nothing_in_or_out():
    policy = sandbox_network_policy("learnhub")
    assert await model_round_trip(policy, "V1NetworkPolicy") == policy
    assert policy["metadata"] == {"name": SANDBOX_POLICY, "namespace": "learnhub"}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == [] and policy["spec"]["egress"] == []


@pytest.mark.parametrize(
    ("docker", "kubernetes"), [("256m", "256Mi"), ("2G", "2Gi"), ("64k", "64Ki"), ("100", "100")]
)
def test_docker_sizes_become_quantities(docker, kubernetes):
    assert quantity(docker) == kubernetes


@pytest.mark.parametrize("bad", ["", "2 GB", "m", "1.5g"])
def test_a_size_that_is_not_one_is_named(bad):
    with pytest.raises(ValueError, match="is not a size"):
        quantity(bad)


def test_the_zero_to_jupyterhub_values_load_learnhub_and_confine_the_learners():
    values = yaml.safe_load(VALUES.read_text())
    hub = values["hub"]
    assert hub["image"]["name"] == "learnhub/hub"
    config = "\n".join(hub["extraConfig"].values())
    assert "load_subconfig(HUB_CONFIG)" in config
    compile(config, "extraConfig", "exec")
    # The keys come from a Secret, as LearnHub reads them.
    assert {"LEARNHUB_CRYPT_KEY", "LEARNHUB_PSEUDONYM_KEY"} <= set(hub["extraEnv"])
    singleuser = values["singleuser"]["networkPolicy"]
    assert singleuser["enabled"] is True
    # Learners reach neither each other nor the cluster's private addresses.
    assert singleuser["egressAllowRules"]["privateIPs"] is False
    assert singleuser["egressAllowRules"]["cloudMetadataServer"] is False
    assert values["hub"]["networkPolicy"]["enabled"] is True
    assert values["cull"]["enabled"] is False


def test_the_kubernetes_settings_open_the_ports_their_services_listen_on(tmp_path):
    from learnhub.service_names import PORT_SETTINGS, service_port

    state = tmp_path / "state"
    environ = {"LEARNHUB_STATE_DIR": str(state), "LEARNHUB_CRYPT_KEY": "0" * 64,
               "LEARNHUB_PSEUDONYM_KEY": "1" * 64}  # fmt: skip
    settings = load_settings(DEPLOY / "learnhub.yaml", environ=environ)
    assert settings["spawner"]["backend"] == "kubernetes"
    values = yaml.safe_load(VALUES.read_text())
    opened = {p["name"]: p["port"] for p in values["hub"]["service"]["extraPorts"]}
    assert opened == {name: service_port(settings, name) for name in PORT_SETTINGS}
    c = kubernetes_config(settings)
    assert c.JupyterHub.spawner_class == "learnhub-kubernetes"
    assert not state.exists()


def test_the_sandbox_policy_file_is_the_builders():
    applied = yaml.safe_load((DEPLOY / "sandbox-network-policy.yaml").read_text())
    assert applied == sandbox_network_policy()


# spawner.backend kubernetes in the hub's configuration (apply_config on a bare Config).


def kubernetes_settings(tmp_path, **extra):
    path = tmp_path / "learnhub.yaml"
    settings = {"spawner": {"backend": "kubernetes", **extra}, "grading": {"sandbox": "process"}}
    path.write_text(yaml.safe_dump(settings))
    # Keys given by environment, as a production hub has them: no state directory is read.
    environ = {"LEARNHUB_STATE_DIR": str(tmp_path / "state"), "LEARNHUB_CRYPT_KEY": "0" * 64,
               "LEARNHUB_PSEUDONYM_KEY": "1" * 64}  # fmt: skip
    return load_settings(path, environ=environ)


def kubernetes_config(settings, chart: Config | None = None) -> Config:
    from learnhub.config import Facts, apply_config
    from learnhub.spawners import SpawnerBackend

    c = chart or Config()
    facts = Facts((), SpawnerBackend("kubernetes", "test"), None, "retention-token")
    apply_config(c, settings, facts)
    return c


def test_the_kubernetes_backend_configures_pods_and_leaves_the_charts_proxy(tmp_path):
    chart = Config()
    # What Zero to JupyterHub's own configuration set before LearnHub's runs.
    chart.ConfigurableHTTPProxy.api_url = "http://proxy-api:8001"
    chart.ConfigurableHTTPProxy.should_start = False
    chart.KubeSpawner.extra_labels = {"hub.jupyter.org/network-access-hub": "true"}
    settings = kubernetes_settings(tmp_path, kubernetes={"node_selector": {"pool": "learners"}})
    c = kubernetes_config(settings, chart)

    assert c.JupyterHub.spawner_class == "learnhub-kubernetes"
    assert c.ConfigurableHTTPProxy.api_url == "http://proxy-api:8001"
    assert c.ConfigurableHTTPProxy.should_start is False
    spawner = c.KubeLearnerSpawner
    assert spawner.extra_labels == {
        "hub.jupyter.org/network-access-hub": "true",
        K8S_ROLE_LABEL: "learner-server",
    }
    assert spawner.node_selector == {"pool": "learners"}
    assert spawner.image == "learnhub/learner:latest"
    assert spawner.container_security_context["readOnlyRootFilesystem"] is True
    assert spawner.state_claim == STATE_CLAIM
    assert c.JupyterHub.hub_connect_ip == "hub"


def listening_at(environ, monkeypatch) -> tuple[str, int]:
    """Where a LearnHub service started with this environment listens."""
    from learnhub.service_app import ServiceApp

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return ServiceApp().address()


def test_learners_reach_learnhubs_services_at_the_hubs_service_name(tmp_path, monkeypatch):
    from learnhub.service_environment import LISTEN_IP_ENV

    c = kubernetes_config(kubernetes_settings(tmp_path, kubernetes={"hub_host": "hub.lh"}))
    services = {s["name"]: s for s in c.JupyterHub.services}
    for name in ("learnhub-courses", "learnhub-grading", "learnhub-retention"):
        service = services[name]
        assert service["url"].startswith("http://hub.lh:"), service["url"]
        # It listens on the pod's interfaces, not on the Service's address.
        environ = {**service["environment"], "JUPYTERHUB_SERVICE_URL": service["url"]}
        assert environ[LISTEN_IP_ENV] == EVERY_INTERFACE
        assert listening_at(environ, monkeypatch)[0] == EVERY_INTERFACE
    environment = c.Spawner.environment
    assert environment["LEARNHUB_EXCHANGE_URL"].startswith("http://hub.lh:")
    assert environment["LEARNHUB_GRADING_URL"].startswith("http://hub.lh:")


def test_other_backends_listen_where_their_url_says(tmp_path, monkeypatch):
    from learnhub.service_environment import LISTEN_IP_ENV, service_environment

    monkeypatch.delenv(LISTEN_IP_ENV, raising=False)
    path = tmp_path / "learnhub.yaml"
    path.write_text("spawner:\n  backend: local\n")
    settings = load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path)})
    environ = {**service_environment(settings), "JUPYTERHUB_SERVICE_URL": "http://10.0.0.5:81"}
    assert LISTEN_IP_ENV not in environ
    assert listening_at(environ, monkeypatch) == ("10.0.0.5", 81)


def test_the_kubernetes_backend_asks_no_docker_engine(tmp_path):
    from learnhub.spawners import learner_server_findings, resolve_backend

    def no_engine(_images):
        raise AssertionError("a Docker engine was asked")

    settings = kubernetes_settings(tmp_path)
    assert resolve_backend(settings, no_engine).name == "kubernetes"
    findings = learner_server_findings(settings, no_engine)
    assert findings[0][0] == "ok" and "Kubernetes pods" in findings[0][1]
    assert "podPidsLimit" in findings[1][1]


def test_docker_sandboxes_are_refused_with_the_kubernetes_backend(tmp_path):
    from learnhub.settings import SettingsError

    path = tmp_path / "learnhub.yaml"
    path.write_text("spawner: {backend: kubernetes}\ngrading: {sandbox: docker}\n")
    with pytest.raises(SettingsError, match=r"'grading\.sandbox' is docker but 'spawner\.backend'"):
        load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path)})


def test_jupyterhub_finds_the_kubernetes_spawner_by_its_entry_point():
    from jupyterhub.app import JupyterHub

    from learnhub.kubernetes_spawner import KubeLearnerSpawner

    assert JupyterHub(spawner_class="learnhub-kubernetes").spawner_class is KubeLearnerSpawner
