"""The image builders: base choice, apt sources, docker command lines, the staged context."""

import argparse
import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from learnhub import __version__
from learnhub.cli.images import add_commands, cmd_build
from learnhub.images import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_PATH,
    LOCAL_BASE_IMAGE,
    AptSource,
    BaseStep,
    DockerEngine,
    ImageBuildError,
    apt_settings_for_base,
    base_sources,
    build_network,
    check_registry,
    debootstrap_command,
    docker_tag,
    import_command,
    is_loopback_url,
    learner_build_command,
    learner_context_layout,
    learner_tags,
    local_certificate_authorities,
    parse_apt_sources,
    plan_base,
    push_images,
    registry_tag,
    stage_learner_context,
)

REPO = Path(__file__).resolve().parents[2]
LEARNER = REPO / "images" / "learner"


@pytest.mark.parametrize(
    ("version", "tag"),
    [
        ("0.1.0", "0.1.0"),
        ("0.1.0.dev0", "0.1.0.dev0"),
        ("0.1.0+g1234.dirty", "0.1.0-g1234.dirty"),
        ("", "unknown"),
        (".hidden", "hidden"),
    ],
    ids=["release", "dev", "local-part", "empty", "leading-dot"],
)
def test_docker_tag(version, tag):
    assert docker_tag(version) == tag


def test_learner_tags_are_version_then_latest():
    assert learner_tags("1.2.3") == ["learnhub/learner:1.2.3", "learnhub/learner:latest"]
    assert learner_tags()[0] == f"learnhub/learner:{__version__}"


MY_BASE = "registry.example.edu/python:3.11"


@pytest.mark.parametrize(
    ("requested", "present", "kwargs", "expected"),
    [
        (None, {DEFAULT_BASE_IMAGE}, {}, ("use", DEFAULT_BASE_IMAGE)),
        (None, set(), {}, ("pull", DEFAULT_BASE_IMAGE)),
        (None, set(), {"pull_failed": True}, ("build-local", LOCAL_BASE_IMAGE)),
        (None, {LOCAL_BASE_IMAGE}, {"pull_failed": True}, ("use", LOCAL_BASE_IMAGE)),
        (None, {LOCAL_BASE_IMAGE}, {"allow_pull": False}, ("use", LOCAL_BASE_IMAGE)),
        (None, set(), {"allow_pull": False}, ("build-local", LOCAL_BASE_IMAGE)),
        (
            None,
            {DEFAULT_BASE_IMAGE, LOCAL_BASE_IMAGE},
            {"allow_pull": False},
            ("use", DEFAULT_BASE_IMAGE),
        ),
        (MY_BASE, {MY_BASE}, {}, ("use", MY_BASE)),
        (MY_BASE, {LOCAL_BASE_IMAGE}, {}, ("pull", MY_BASE)),
        (DEFAULT_BASE_IMAGE, set(), {"pull_failed": True}, ("build-local", LOCAL_BASE_IMAGE)),
        (LOCAL_BASE_IMAGE, {LOCAL_BASE_IMAGE}, {}, ("use", LOCAL_BASE_IMAGE)),
        (LOCAL_BASE_IMAGE, set(), {}, ("build-local", LOCAL_BASE_IMAGE)),
    ],
    ids=[
        "default-present",
        "default-absent-pull",
        "pull-failed-build-local",
        "pull-failed-reuse-local",
        "no-pull-reuse-local",
        "no-pull-build-local",
        "default-preferred-over-local",
        "named-present",
        "named-absent-pull-even-with-local",
        "named-default-falls-back",
        "local-asked-present",
        "local-asked-absent",
    ],
)
def test_plan_base(requested, present, kwargs, expected):
    step = plan_base(requested, present, **kwargs)
    assert isinstance(step, BaseStep)
    assert (step.action, step.image) == expected
    assert step.reason


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [({"pull_failed": True}, "registry did not answer"), ({"allow_pull": False}, "pulling is off")],
    ids=["pull-failed", "no-pull"],
)
def test_plan_base_never_swaps_a_named_base_for_debian(kwargs, said):
    with pytest.raises(ImageBuildError, match=said) as info:
        plan_base(MY_BASE, {LOCAL_BASE_IMAGE}, **kwargs)
    assert MY_BASE in str(info.value)
    assert "--base-image" in str(info.value)


DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main

Types: deb
Enabled: no
URIs: http://old.example.org/debian
Suites: bookworm
Components: main
"""

ONE_LINE = (
    "# a local mirror\n"
    "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://127.0.0.1:3142/debian bookworm main contrib\n"
    "deb-src http://127.0.0.1:3142/debian bookworm main\n"
    "deb http://127.0.0.1:3142/debian bookworm-updates main  # updates\n"
    "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
)


def test_parse_deb822_sources():
    assert parse_apt_sources(DEB822) == [
        AptSource("http://deb.debian.org/debian", ("bookworm", "bookworm-updates"), ("main",)),
        AptSource(
            "http://deb.debian.org/debian-security", ("bookworm-security",), ("main", "contrib")
        ),
        AptSource("https://deb.nodesource.com/node_20.x", ("nodistro",), ("main",)),
    ]


def test_parse_one_line_sources():
    assert parse_apt_sources(ONE_LINE) == [
        AptSource("http://127.0.0.1:3142/debian", ("bookworm",), ("main", "contrib")),
        AptSource("http://127.0.0.1:3142/debian", ("bookworm-updates",), ("main",)),
        AptSource("https://packages.cloud.google.com/apt", ("cloud-sdk-bookworm",), ("main",)),
    ]


def test_base_sources_keep_this_machines_debian_mirrors():
    mirror, lines = base_sources(parse_apt_sources(DEB822))
    assert mirror == "http://deb.debian.org/debian"
    assert lines == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]


def test_base_sources_use_a_local_mirror():
    mirror, lines = base_sources(parse_apt_sources(ONE_LINE))
    assert mirror == "http://127.0.0.1:3142/debian"
    assert lines == [
        "deb http://127.0.0.1:3142/debian bookworm main",
        "deb http://127.0.0.1:3142/debian bookworm-updates main",
    ]
    assert build_network(mirror) == "host"


def test_base_sources_fall_back_to_debians_default_mirror():
    mirror, lines = base_sources(
        parse_apt_sources("deb http://archive.ubuntu.com/ubuntu jammy main")
    )
    assert mirror == "http://deb.debian.org/debian"
    assert lines == ["deb http://deb.debian.org/debian bookworm main"]
    assert build_network(mirror) is None


def test_apt_settings_carry_proxy_and_date_checks_only():
    conf = [
        'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n',
        'Acquire::Languages "none";\nAcquire::http::Proxy "http://localhost:3142";\n',
        'APT::Install-Recommends "0";\nAcquire::Check-Valid-Until "false";\n',
    ]
    settings = apt_settings_for_base(conf)
    assert settings == [
        'Acquire::Check-Valid-Until "false";',
        'Acquire::Check-Date "false";',
        'Acquire::http::Proxy "http://localhost:3142";',
    ]
    assert build_network("http://deb.debian.org/debian", settings) == "host"
    assert build_network("http://deb.debian.org/debian", settings[:2]) is None


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:3142/debian", True),
        ("http://127.8.0.1/debian", True),
        ("http://[::1]:80/debian", True),
        ("http://localhost/debian", True),
        ("http://deb.debian.org/debian", False),
        ("http://10.0.0.5/debian", False),
        ("file:///srv/mirror", False),
    ],
)
def test_is_loopback_url(url, loopback):
    assert is_loopback_url(url) is loopback


def test_debootstrap_and_import_commands(tmp_path):
    mirror = "http://deb.debian.org/debian"
    assert debootstrap_command(tmp_path, mirror) == [
        "debootstrap",
        "--variant=minbase",
        "bookworm",
        str(tmp_path),
        mirror,
    ]
    command = import_command(LOCAL_BASE_IMAGE, mirror)
    assert command[:2] == ["docker", "import"]
    assert command[-2:] == ["-", LOCAL_BASE_IMAGE]
    # The Dockerfile builds PATH from nothing, but `docker run` of the base alone needs one.
    assert f"ENV PATH={DEFAULT_PATH}" in command


def test_learner_build_command(tmp_path):
    command = learner_build_command(
        tmp_path, base_image=LOCAL_BASE_IMAGE, tags=learner_tags("1.0"), version="1.0"
    )
    assert command == [
        "docker",
        "build",
        "--build-arg",
        f"BASE_IMAGE={LOCAL_BASE_IMAGE}",
        "--build-arg",
        "LEARNHUB_VERSION=1.0",
        "--tag",
        "learnhub/learner:1.0",
        "--tag",
        "learnhub/learner:latest",
        str(tmp_path),
    ]
    command = learner_build_command(
        tmp_path, base_image="b", tags=["t"], no_cache=True, network="host"
    )
    assert command[-4:] == ["--no-cache", "--network", "host", str(tmp_path)]


def test_stage_learner_context(tmp_path):
    wheel = tmp_path / "learnhub-1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    context = tmp_path / "context"
    stage_learner_context(REPO, context, wheel)
    files = {str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()}
    assert {
        "Dockerfile",
        "requirements.txt",
        "sys-prefix/etc/jupyter/jupyter_server_config.d/learnhub-learner.json",
        "learnhub/sys-prefix/etc/jupyter/jupyter_server_config.d/learnhub_singleuser.json",
        "learnhub/sys-prefix/share/jupyter/labextensions/@learnhub/lab/package.json",
        "learnhub/dist/learnhub-1.0-py3-none-any.whl",
    } <= files
    # Nothing else: a context with the checkout in it would be slow and could leak secrets.
    # nbgrader's config travels in the wheel, as in every install: none in the venv's etc/.
    assert not [f for f in files if "__pycache__" in f or f.endswith((".py", ".pyc"))]
    enabled = json.loads(
        (
            context / "learnhub/sys-prefix/etc/jupyter/jupyter_server_config.d"
            "/learnhub_singleuser.json"
        ).read_text()
    )
    assert enabled["ServerApp"]["jpserver_extensions"] == {"learnhub_singleuser": True}


def test_stage_learner_context_with_build_certificate_authorities(tmp_path):
    wheel = tmp_path / "learnhub-1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    (tmp_path / "ca" / "sub").mkdir(parents=True)
    (tmp_path / "ca" / "proxy.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "ca" / "sub" / "corp.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "ca" / "README").write_text("not a certificate")
    authorities = local_certificate_authorities(tmp_path / "ca")
    assert [p.name for p in authorities] == ["proxy.crt", "corp.crt"]
    assert local_certificate_authorities(tmp_path / "none") == []

    stage_learner_context(REPO, tmp_path / "with", wheel, authorities)
    assert sorted(p.name for p in (tmp_path / "with" / "build-ca").iterdir()) == [
        "00-proxy.crt",
        "01-corp.crt",
    ]
    # The Dockerfile copies build-ca/ whatever it holds, so it is there even when empty.
    stage_learner_context(REPO, tmp_path / "without", wheel)
    assert list((tmp_path / "without" / "build-ca").iterdir()) == []


def test_stage_learner_context_names_a_missing_file(tmp_path):
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(b"PK")
    with pytest.raises(ImageBuildError, match=r"Dockerfile is missing"):
        stage_learner_context(tmp_path / "not-a-checkout", tmp_path / "context", wheel)


def test_context_layout_sources_exist():
    missing = [str(path) for path, _ in learner_context_layout(REPO) if not path.exists()]
    assert missing == []


def _pins(text: str) -> dict[str, str]:
    return {
        m.group(1).lower().replace("_", "-"): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.MULTILINE)
    }


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def test_requirements_pin_everything_the_image_installs():
    pins = _pins((LEARNER / "requirements.txt").read_text())
    wanted = [
        line.split("#")[0].strip()
        for line in (LEARNER / "requirements.in").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    # The image installs the learnhub wheel with --no-deps: all it declares must be pinned.
    unpinned = (_names(wanted) | _names(project)) - set(pins)
    assert unpinned == set()
    assert pins["jupyterhub"] == "6.1.1"
    assert pins["nbgrader"] == "0.9.6"
    assert pins["jupyterlab"].startswith("4.6.")


def test_requirements_are_hash_checked_and_say_how_they_were_made():
    text = (LEARNER / "requirements.txt").read_text()
    head = text.split("\n\n")[0]
    assert "pip-compile" in head
    assert "images/learner/requirements.in pyproject.toml" in head
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 6)[-1])
    pinned = [b for b in blocks if "==" in b.split("\n")[0]]
    assert pinned
    assert [b.split()[0] for b in pinned if "--hash=sha256:" not in b] == []


def test_dockerfile_shape():
    text = (LEARNER / "Dockerfile").read_text()
    instructions = [
        line.split(None, 1)
        for line in text.splitlines()
        if line and not line.startswith((" ", "#"))
    ]
    assert instructions[0] == ["ARG", f"BASE_IMAGE={DEFAULT_BASE_IMAGE}"]
    assert instructions[1] == ["FROM", "${BASE_IMAGE}"]
    user = [i[1] for i in instructions if i[0] == "USER"]
    assert user == ["${LEARNER_UID}:${LEARNER_GID}"]
    assert re.search(r"^ARG LEARNER_UID=1000$", text, re.MULTILINE)
    assert ["EXPOSE", "8888"] in instructions
    assert ["CMD", '["jupyterhub-singleuser"]'] in instructions
    # An anonymous volume would keep a learner's files after their container is gone.
    assert "VOLUME" not in [i[0] for i in instructions]
    assert not re.search(r"(?i)(token|secret|password)\s*=", text)


def test_learner_settings_turn_off_calls_out():
    settings = json.loads(
        (
            LEARNER / "sys-prefix/etc/jupyter/jupyter_server_config.d/learnhub-learner.json"
        ).read_text()
    )
    assert settings["LabApp"]["news_url"] is None
    assert settings["LabApp"]["check_for_updates_class"] == "jupyterlab.NeverCheckForUpdate"


def test_images_build_command_line():
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["images", "build"])
    assert (args.func, args.base_image, args.no_cache, args.no_pull) == (
        cmd_build,
        None,
        False,
        False,
    )
    args = parser.parse_args(
        ["images", "build", "--base-image", MY_BASE, "--no-cache", "--no-pull"]
    )
    assert (args.base_image, args.no_cache, args.no_pull) == (MY_BASE, True, True)
    assert args.push is None
    args = parser.parse_args(["images", "build", "--push", "127.0.0.1:5000"])
    assert args.push == "127.0.0.1:5000"
    with pytest.raises(SystemExit):
        parser.parse_args(["images"])


# --- pushing to the operator's registry --------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("registry.example.edu", "registry.example.edu"),
        ("registry.example.edu:5000/", "registry.example.edu:5000"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("localhost:5000/course-images", "localhost:5000/course-images"),
        ("[::1]:5000", "[::1]:5000"),
    ],
)
def test_registry_names_docker_pushes_to(given, expected):
    assert check_registry(given) == expected
    assert registry_tag(expected, "learnhub/learner:0.1.0") == f"{expected}/learnhub/learner:0.1.0"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("https://registry.example.edu", "without a scheme"),
        ("registry", "is not host[:port][/path]"),  # docker would read a Docker Hub user
        ("registry.example.edu:99999", "out of range"),
        ("registry.example.edu/UPPER", "is not host[:port][/path]"),
        ("registry.example.edu:5000/learnhub:latest", "is not host[:port][/path]"),
    ],
)
def test_registry_names_that_are_refused(given, message):
    with pytest.raises(ImageBuildError, match=re.escape(message)):
        check_registry(given)


class RecordingEngine(DockerEngine):
    """The docker command lines a push would run, answered as docker answers them."""

    def __init__(self):
        super().__init__()
        self.ran: list[tuple[str, ...]] = []

    def _capture(self, *args, timeout=60):
        self.ran.append(args)
        out = f"latest: digest: sha256:{'ab' * 32} size: 1234\n" if args[0] == "push" else ""
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")


def test_push_tags_each_image_for_the_registry_then_pushes_it():
    engine = RecordingEngine()
    pushed = push_images(
        engine,
        "127.0.0.1:5000",
        ["learnhub/learner:0.1.0", "learnhub/learner:latest"],
        progress=lambda _: None,
    )
    assert engine.ran == [
        ("tag", "learnhub/learner:0.1.0", "127.0.0.1:5000/learnhub/learner:0.1.0"),
        ("push", "127.0.0.1:5000/learnhub/learner:0.1.0"),
        ("tag", "learnhub/learner:latest", "127.0.0.1:5000/learnhub/learner:latest"),
        ("push", "127.0.0.1:5000/learnhub/learner:latest"),
    ]
    assert pushed == {
        "127.0.0.1:5000/learnhub/learner:0.1.0": f"sha256:{'ab' * 32}",
        "127.0.0.1:5000/learnhub/learner:latest": f"sha256:{'ab' * 32}",
    }
