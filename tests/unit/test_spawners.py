"""Learner-server spawners: backend choice, network and container specs, config appliers."""

# ruff: noqa: S104 (0.0.0.0 is data here: an operator's listen address, a published port)

import asyncio
import copy
from types import SimpleNamespace

import pytest
from tornado import web
from traitlets import TraitError
from traitlets.config import Config

from learnhub.config import update_network, update_options, update_spawner
from learnhub.courses.config import update_courses
from learnhub.settings import SettingsError, load_settings, validate
from learnhub.spawners import (
    ICC_OPTION,
    DockerLearnerSpawner,
    EngineStatus,
    Isolation,
    LearnerNetwork,
    LearnerServersUnavailable,
    LocalLearnerSpawner,
    SpawnerBackend,
    choose_backend,
    hub_listen_ip,
    isolation_problems,
    learner_host_config,
    learner_server_findings,
    network_gateway,
    network_problems,
    network_spec,
    resolve_backend,
)

IMAGE = "learnhub/learner:latest"
ENGINE_UP = EngineStatus("20.10.24")
ENGINE_DOWN = EngineStatus(None, error="Error while fetching server API version")
NO_IMAGE = EngineStatus("20.10.24", missing_images=(IMAGE,))


@pytest.fixture
def settings_for(tmp_path):
    def make(**spawner):
        path = tmp_path / "learnhub.yaml"
        path.write_text(f"spawner: {spawner!r}\n" if spawner else "")
        return load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path / "state")})

    return make


# Which backend


@pytest.mark.parametrize(
    ("requested", "engine", "expected", "because"),
    [
        ("auto", ENGINE_UP, "docker", "Docker engine 20.10.24 answers"),
        ("docker", ENGINE_UP, "docker", f"{IMAGE} is here"),
        ("auto", ENGINE_DOWN, "local", "no Docker engine answers (Error while fetching"),
        ("auto", NO_IMAGE, "local", f"the learner image {IMAGE} is not on this machine"),
        ("local", None, "local", "spawner.backend is local"),
        ("local", ENGINE_UP, "local", "learners are NOT isolated"),
    ],
    ids=["auto-engine", "docker-engine", "auto-no-engine", "auto-no-image", "local", "local-wins"],
)
def test_choose_backend(requested, engine, expected, because):
    backend = choose_backend(requested, IMAGE, engine)
    assert backend.name == expected
    assert because in backend.reason
    assert backend.isolated is (expected == "docker")
    if expected == "local":
        assert "NOT isolated" in backend.reason


@pytest.mark.parametrize(
    ("engine", "because"),
    [(ENGINE_DOWN, "no Docker engine answers"), (NO_IMAGE, "is not on this machine")],
    ids=["no-engine", "no-image"],
)
def test_docker_requested_but_unavailable_is_an_error_with_the_fix(engine, because):
    with pytest.raises(LearnerServersUnavailable) as failed:
        choose_backend("docker", IMAGE, engine)
    message = str(failed.value)
    assert because in message
    assert "learnhub images build" in message
    assert "spawner.backend" in message
    # jupyterhub_config.py stops the hub on SettingsError with this message.
    assert isinstance(failed.value, SettingsError)


class Recorder:
    def __init__(self):
        self.warnings = []

    def warning(self, message, *args):
        self.warnings.append(message % args)


def test_auto_falling_back_to_local_warns_in_the_hub_log(settings_for):
    log = Recorder()
    asked = []

    def status(images):
        asked.append(list(images))
        return ENGINE_DOWN

    backend = resolve_backend(settings_for(), status, log=log)
    assert backend.name == "local"
    assert asked == [[IMAGE]]
    assert len(log.warnings) == 1
    assert "NOT isolated" in log.warnings[0]
    assert "learnhub images build" in log.warnings[0]


def test_local_backend_never_asks_docker_nor_warns_at_start(settings_for):
    log = Recorder()

    def status(images):
        raise AssertionError("the engine was asked")

    assert resolve_backend(settings_for(backend="local"), status, log=log).name == "local"
    assert log.warnings == []


@pytest.mark.parametrize(
    ("spawner", "engine", "level", "says"),
    [
        ({"backend": "local"}, ENGINE_UP, "warning", "local processes (spawner.backend is local"),
        ({}, ENGINE_DOWN, "warning", "spawner.backend is auto and no Docker engine answers"),
        ({}, NO_IMAGE, "warning", f"the learner image {IMAGE} is not on this machine"),
        ({"backend": "docker"}, ENGINE_DOWN, "error", "spawner.backend is docker but no Docker"),
    ],
    ids=["local", "auto-no-engine", "auto-no-image", "docker-no-engine"],
)
def test_doctor_says_which_mode_and_why(settings_for, spawner, engine, level, says):
    findings = learner_server_findings(settings_for(**spawner), lambda _images: engine)
    assert findings[0][0] == level
    assert findings[0][1].startswith("learner servers: ")
    assert says in findings[0][1]


# The learners' network


@pytest.mark.parametrize("egress", [True, False], ids=["egress", "no-egress"])
def test_network_spec_disables_inter_container_traffic(egress):
    spec = network_spec("learners", egress)
    assert spec["name"] == "learners"
    assert spec["driver"] == "bridge"
    assert spec["options"] == {ICC_OPTION: "false"}
    assert spec["internal"] is (not egress)


GOOD_NETWORK = {
    "Name": "learners",
    "Driver": "bridge",
    "Internal": False,
    "Options": {ICC_OPTION: "false"},
    "IPAM": {"Config": [{"Subnet": "172.20.0.0/16", "Gateway": "172.20.0.1"}]},
}


def network(**changes):
    inspected = copy.deepcopy(GOOD_NETWORK)
    inspected.update(changes)
    return inspected


@pytest.mark.parametrize(
    ("inspected", "egress", "problem"),
    [
        (network(), True, None),
        (network(Internal=True), False, None),
        (network(Options={}), True, "lets containers reach each other"),
        (network(Options={ICC_OPTION: "true"}), True, "lets containers reach each other"),
        (network(), False, "must be internal (spawner.egress is false)"),
        (network(Internal=True), True, "must be with egress"),
        (network(Driver="overlay"), True, "overlay driver"),
        (network(IPAM={"Config": [{"Gateway": "fd00::1"}]}), True, "no IPv4 gateway"),
    ],
    ids=["ok", "ok-internal", "icc-default", "icc-on", "egress-off", "egress-on", "driver", "v6"],
)
def test_network_problems(inspected, egress, problem):
    problems = network_problems(inspected, egress)
    if problem is None:
        assert problems == []
        assert network_gateway(inspected) == "172.20.0.1"
    else:
        assert len(problems) == 1
        assert problem in problems[0]


@pytest.mark.parametrize(
    ("api_ip", "listen"),
    [("127.0.0.1", "172.20.0.1"), ("localhost", "172.20.0.1"), ("0.0.0.0", "0.0.0.0")],
    ids=["loopback", "localhost", "operator-choice"],
)
def test_hub_listens_where_containers_reach_it(api_ip, listen):
    assert hub_listen_ip(api_ip, "172.20.0.1") == listen


# The learner's container


def test_host_config_confines_the_container():
    config = learner_host_config(pids_limit=128, mem_limit=2**29, tmp_size="64m", read_only=True)
    assert config["pids_limit"] == 128
    assert config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges"]
    assert config["privileged"] is False
    assert config["init"] is True
    assert config["read_only"] is True
    assert config["tmpfs"] == {"/tmp": "rw,exec,nosuid,nodev,size=64m"}
    assert config["memswap_limit"] == 2**29
    assert config["log_config"]["config"]["max-size"] == "10m"


EXPECTED = Isolation(
    images=[IMAGE],
    volume="learnhub-home-lx",
    home="/home/learner",
    network="learners",
    pids_limit=128,
    mem_limit=2**29,
    cpu_limit=0.5,
)

GOOD_CONTAINER = {
    "Config": {"Image": IMAGE, "User": "1000:1000"},
    "HostConfig": {
        "Privileged": False,
        "CapDrop": ["ALL"],
        "CapAdd": None,
        "SecurityOpt": ["no-new-privileges"],
        "Init": True,
        "ReadonlyRootfs": True,
        "PidsLimit": 128,
        "Memory": 2**29,
        "CpuPeriod": 100_000,
        "CpuQuota": 50_000,
        "NetworkMode": "learners",
        "PortBindings": {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
    },
    "Mounts": [
        {"Type": "volume", "Name": "learnhub-home-lx", "Destination": "/home/learner", "RW": True}
    ],
}


def container(config=None, host=None, mounts=None):
    inspected = copy.deepcopy(GOOD_CONTAINER)
    inspected["Config"].update(config or {})
    inspected["HostConfig"].update(host or {})
    if mounts is not None:
        inspected["Mounts"] = mounts
    return inspected


OTHER_VOLUME = {"Type": "volume", "Name": "learnhub-home-ly", "Destination": "/home/learner"}


@pytest.mark.parametrize(
    ("inspected", "problem"),
    [
        (container(config={"Image": "python:3.11"}), "image python:3.11 is not one of"),
        (container(config={"User": ""}), "runs as root"),
        (container(config={"User": "0:0"}), "runs as root"),
        (container(host={"Privileged": True}), "is privileged"),
        (container(host={"CapDrop": []}), "keeps Linux capabilities"),
        (container(host={"CapAdd": ["NET_ADMIN"]}), "keeps Linux capabilities"),
        (container(host={"SecurityOpt": None}), "no-new-privileges is not set"),
        (container(host={"Init": False}), "no init process"),
        (container(host={"ReadonlyRootfs": False}), "read-only root filesystem is False"),
        (container(host={"PidsLimit": 0}), "pids limit is 0, not 128"),
        (container(host={"Memory": 0}), "memory limit is 0"),
        (container(host={"CpuQuota": 0}), "CPU limit is 0.0, not 0.5"),
        (container(mounts=[]), "is not the learner's own volume"),
        (container(mounts=[{**OTHER_VOLUME, "RW": True}]), "is not the learner's own volume"),
        (container(mounts=[{**GOOD_CONTAINER["Mounts"][0], "RW": False}]), "own volume"),
        (container(host={"NetworkMode": "bridge"}), "is on network bridge"),
        (
            container(host={"PortBindings": {"8888/tcp": [{"HostIp": "0.0.0.0"}]}}),
            "publishes 8888/tcp on 0.0.0.0",
        ),
        (container(host={"PortBindings": {"8888/tcp": [{"HostIp": ""}]}}), "every address"),
    ],
    ids=[
        "image",
        "no-user",
        "root",
        "privileged",
        "caps-kept",
        "cap-added",
        "new-privileges",
        "init",
        "writable-root",
        "pids",
        "memory",
        "cpu",
        "no-home",
        "other-home",
        "read-only-home",
        "network",
        "public-port",
        "any-port",
    ],
)
def test_isolation_problems(inspected, problem):
    problems = isolation_problems(inspected, EXPECTED)
    assert len(problems) == 1, problems
    assert problem in problems[0]


def test_a_confined_container_has_no_isolation_problems():
    assert isolation_problems(GOOD_CONTAINER, EXPECTED) == []
    nano = container(host={"CpuQuota": 0, "NanoCpus": 500_000_000})
    assert isolation_problems(nano, EXPECTED) == []


# The config appliers and the spawner they configure


def docker_spawner(c: Config, username="lx") -> DockerLearnerSpawner:
    return DockerLearnerSpawner(config=c, user=SimpleNamespace(name=username))


def test_update_spawner_for_docker(settings_for):
    settings = settings_for(
        images=[IMAGE, "learnhub/learner:0.1"], cpu_limit=0.5, mem_limit="512M", pids_limit=128
    )
    c = Config()
    update_options(c, settings)  # the keys copied unchanged: images, limits, network
    update_spawner(c, settings, ["https://lms.example.edu"], SpawnerBackend("docker", "test"))
    assert c.JupyterHub.spawner_class == "learnhub-docker"
    # The host's jupyterhub-singleuser path means nothing in a container: the image's CMD runs.
    assert "cmd" not in c.Spawner
    assert "cmd" not in c.DockerLearnerSpawner
    assert c.Spawner.environment["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"
    assert c.Spawner.environment["LEARNHUB_FRAME_ANCESTORS"] == "https://lms.example.edu"

    spawner = docker_spawner(c)
    assert spawner.image == IMAGE
    assert spawner.allowed_images == {IMAGE: IMAGE, "learnhub/learner:0.1": "learnhub/learner:0.1"}
    assert spawner.cpu_limit == 0.5
    assert spawner.mem_limit == 512 * 2**20
    assert spawner.network_name == "learnhub-learners"
    assert spawner.remove is True
    assert spawner.pull_policy == "never"
    assert spawner.object_name == "learnhub-lx"
    assert spawner.home_volume == "learnhub-home-lx"
    assert spawner.volume_binds == {"learnhub-home-lx": {"bind": "/home/learner", "mode": "rw"}}
    host = spawner.extra_host_config
    assert host["pids_limit"] == 128
    assert host["memswap_limit"] == 512 * 2**20
    assert host["cap_drop"] == ["ALL"]
    labels = spawner._render_templates(spawner.extra_create_kwargs)["labels"]
    assert labels == {"org.learnhub.user": "lx", "org.learnhub.role": "learner-server"}
    expected = spawner.expected_isolation()
    assert expected.images == [IMAGE, "learnhub/learner:0.1"]
    assert (expected.pids_limit, expected.mem_limit, expected.cpu_limit) == (128, 2**29, 0.5)


def test_update_spawner_for_local_processes(settings_for):
    settings = settings_for(backend="local")
    c = Config()
    update_spawner(c, settings, [], SpawnerBackend("local", "test"))
    assert c.JupyterHub.spawner_class == "learnhub-local"
    assert c.LocalLearnerSpawner.cmd[0].endswith("/bin/jupyterhub-singleuser")
    assert c.LocalLearnerSpawner.home_dir_template.endswith("/homes/{username}")


@pytest.mark.parametrize(
    ("api_ip", "internal", "hub_ip", "internal_ip"),
    [
        ("127.0.0.1", False, "172.20.0.1", False),
        ("127.0.0.1", True, "172.20.0.1", True),
        ("0.0.0.0", False, "0.0.0.0", False),
    ],
    ids=["egress", "internal", "operator-listen-address"],
)
def test_update_network(tmp_path, api_ip, internal, hub_ip, internal_ip):
    path = tmp_path / "learnhub.yaml"
    path.write_text(f"hub: {{api_ip: '{api_ip}'}}\n")
    settings = load_settings(path, environ={"LEARNHUB_STATE_DIR": str(tmp_path)})
    c = Config()
    update_network(c, settings, LearnerNetwork("learners", "172.20.0.1", internal))
    assert c.JupyterHub.hub_ip == hub_ip
    assert c.JupyterHub.hub_connect_ip == "172.20.0.1"
    assert c.DockerLearnerSpawner.network_name == "learners"
    assert c.DockerLearnerSpawner.host_ip == "127.0.0.1"
    assert c.DockerLearnerSpawner.use_internal_ip is internal_ip


def test_a_user_cannot_ask_for_another_image():
    c = Config()
    c.DockerLearnerSpawner.image = IMAGE
    c.DockerLearnerSpawner.allowed_images = [IMAGE]
    spawner = docker_spawner(c)
    assert asyncio.run(spawner.check_allowed(IMAGE)) == IMAGE
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(spawner.check_allowed("python:3.11"))
    assert refused.value.status_code == 400
    assert "Image python:3.11 is not allowed" in refused.value.log_message
    assert f"run only {IMAGE} (the operator's spawner.images)" in refused.value.log_message


@pytest.mark.parametrize("value", ["*", lambda spawner: ["any"]], ids=["any", "callable"])
def test_allowed_images_must_be_a_list(value):
    with pytest.raises(TraitError, match="must list the images"):
        DockerLearnerSpawner(allowed_images=value)


# Settings


def test_spawner_settings_defaults():
    spawner = validate({})["spawner"]
    assert spawner["backend"] == "auto"
    assert spawner["images"] == [IMAGE]
    assert (spawner["cpu_limit"], spawner["mem_limit"], spawner["pids_limit"]) == (1, "2G", 256)
    assert spawner["egress"] is True
    assert spawner["network"] == "learnhub-learners"


@pytest.mark.parametrize(
    ("spawner", "message"),
    [
        ({"backend": "podman"}, "'spawner.backend' is 'podman': use one of 'auto'"),
        ({"mem_limit": "2 GB"}, "'spawner.mem_limit': '2 GB' does not match"),
        ({"cpu_limit": 0}, "'spawner.cpu_limit': 0 is less than or equal to the minimum"),
        ({"pids_limit": 10}, "'spawner.pids_limit' is 10"),
        ({"images": []}, "'spawner.images': [] should be non-empty"),
        ({"images": ["Bad Image"]}, "'spawner.images.0': 'Bad Image' does not match"),
        ({"egress": "no"}, "'spawner.egress' must be of type boolean"),
        ({"network": "-x"}, "'spawner.network': '-x' does not match"),
        ({"cpu_limt": 1}, "unknown key 'spawner.cpu_limt': did you mean 'cpu_limit'?"),
    ],
    ids=["backend", "mem", "cpu", "pids", "no-images", "image", "egress", "network", "typo"],
)
def test_spawner_settings_errors_name_the_key(spawner, message):
    with pytest.raises(SettingsError) as failed:
        validate({"spawner": spawner})
    assert message in str(failed.value)


@pytest.mark.parametrize("backend", ["local", "docker"])
@pytest.mark.parametrize(
    ("username", "on", "off"),
    [
        ("lx", "assignment_list", "formgrader"),
        ("grader-cabcdefghijk", "formgrader", "assignment_list"),
    ],
    ids=["learner", "grader"],
)
def test_every_server_gets_the_course_service_from_its_spawner(
    settings_for, backend, username, on, off
):
    """nbgrader is wired in the server by LearnHub's extension (learnhub_singleuser.
    course_service), so its command line must turn that on and its environment must say
    where the course service is, whatever the backend and whatever is installed."""
    settings = settings_for(backend=backend)
    c = Config()
    update_spawner(c, settings, [], SpawnerBackend(backend, "test"))
    update_courses(c, settings, connect_ip="127.0.0.1", containers=backend == "docker")
    cls = DockerLearnerSpawner if backend == "docker" else LocalLearnerSpawner
    spawner = cls(config=c, user=SimpleNamespace(name=username, url="/user/x/"))
    args = spawner.get_args()
    assert "--ServerApp.jpserver_extensions=learnhub_singleuser=True" in args
    assert f"--ServerApp.jpserver_extensions=nbgrader.server_extensions.{on}=True" in args
    assert f"--ServerApp.jpserver_extensions=nbgrader.server_extensions.{off}=False" in args
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "learnhub-courses"]
    assert service["url"].startswith("http://127.0.0.1:")
    assert spawner.environment["LEARNHUB_EXCHANGE_URL"] == (
        service["url"] + "/services/learnhub-courses/"
    )
