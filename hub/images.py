"""Container images: build the learner image on a registry's base or a local Debian one."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import __version__

DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
LOCAL_BASE_IMAGE = "learnhub/base:bookworm"
LEARNER_REPOSITORY = "learnhub/learner"
DEBIAN_SUITE = "bookworm"
# Used only when this machine's apt has no Debian mirror for the suite: debootstrap's own default.
DEBIAN_FALLBACK_MIRROR = "http://deb.debian.org/debian"
# A `docker import`ed image has no environment at all; this is what Debian's images set.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A safety net only: an unreachable registry fails within docker's own dial timeout (~30 s).
# A learner image is about a gigabyte: minutes on a slow link to the registry.
PUSH_TIMEOUT = 1800
PULL_TIMEOUT = 600
# Wheels stamped with a fixed time are byte-identical for identical sources, so an unchanged
# project hits docker's layer cache (1980-01-01, the earliest time a zip file can hold).
WHEEL_EPOCH = "315532800"
# The checkout this module runs from (the images and the sources live beside the package).
SOURCE_ROOT = Path(__file__).resolve().parent.parent
APT_DIR = Path("/etc/apt")
# Where Debian keeps the certificate authorities an administrator added (update-ca-certificates).
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")

Progress = Callable[[str], None]


class ImageBuildError(Exception):
    """A build that cannot go on; the message says why and what to do about it."""


# Pure builders


def docker_tag(version: str) -> str:
    """A Docker tag for a Python version string ("0.1.0+local" becomes "0.1.0-local")."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", version).lstrip(".-")[:128]
    return tag or "unknown"


def learner_tags(version: str = __version__) -> list[str]:
    """The tags of a learner image: the LearnHub version, then `latest`."""
    return [f"{LEARNER_REPOSITORY}:{docker_tag(version)}", f"{LEARNER_REPOSITORY}:latest"]


@dataclass(frozen=True)
class BaseStep:
    """What to do next to have a base image: `use` it, `pull` it, or `build-local` it."""

    action: str
    image: str
    reason: str


def plan_base(
    requested: str | None,
    present: Collection[str],
    *,
    allow_pull: bool = True,
    pull_failed: bool = False,
) -> BaseStep:
    """Decide the learner image's base, given the images present and how a pull went.

    The requested image (default: DEFAULT_BASE_IMAGE) is used when present, else pulled. When
    that is not possible, the default gives way to the local Debian base (built once, then
    reused); an image the operator named does not, since building on something else would
    not be what they asked for.
    """
    base = requested or DEFAULT_BASE_IMAGE
    if base in present:
        return BaseStep("use", base, f"{base} is here")
    if base == LOCAL_BASE_IMAGE:
        return BaseStep("build-local", base, "making the local Debian base with debootstrap")
    if allow_pull and not pull_failed:
        return BaseStep("pull", base, f"{base} is not here: trying its registry")
    why = "its registry did not answer" if pull_failed else "pulling is off"
    if requested and requested != DEFAULT_BASE_IMAGE:
        raise ImageBuildError(
            f"base image {base} is not here and {why}: load it with `docker load`, or "
            f"leave out --base-image to build on a local Debian {DEBIAN_SUITE}"
        )
    if LOCAL_BASE_IMAGE in present:
        return BaseStep(
            "use", LOCAL_BASE_IMAGE, f"{base} is not here and {why}; reusing the local base"
        )
    return BaseStep(
        "build-local",
        LOCAL_BASE_IMAGE,
        f"{base} is not here and {why}; making a local Debian base with debootstrap",
    )


@dataclass(frozen=True)
class AptSource:
    """One `deb` entry of apt's sources (a deb822 stanza may give several suites)."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_apt_sources(text: str) -> list[AptSource]:
    """The enabled `deb` entries of a sources.list (one-line) or a .sources (deb822) text."""
    if re.search(r"^\s*(Types|URIs)\s*:", text, re.MULTILINE | re.IGNORECASE):
        return _parse_deb822(text)
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # drop [arch=... signed-by=...]
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "deb":
            sources.append(AptSource(fields[1], (fields[2],), tuple(fields[3:])))
    return sources


def _parse_deb822(text: str) -> list[AptSource]:
    sources = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        for uri in fields.get("uris", "").split():
            sources.append(AptSource(uri, suites, tuple(fields.get("components", "").split())))
    return sources


def base_sources(sources: Iterable[AptSource], suite: str = DEBIAN_SUITE) -> tuple[str, list[str]]:
    """The mirror for debootstrap and the sources.list lines of the local base.

    Keeps this machine's own Debian mirrors (a local mirror or proxy included) for the suite,
    its updates and its security updates, main only.
    """
    wanted = (suite, f"{suite}-updates", f"{suite}-security")
    mirror = None
    lines: list[str] = []
    for source in sources:
        if "main" not in source.components:
            continue
        for s in source.suites:
            if s not in wanted:
                continue
            line = f"deb {source.uri} {s} main"
            if line not in lines:
                lines.append(line)
            if s == suite and mirror is None:
                mirror = source.uri
    if mirror is None:
        mirror = DEBIAN_FALLBACK_MIRROR
        lines.insert(0, f"deb {mirror} {suite} main")
    return mirror, lines


_APT_CARRIED = re.compile(
    r"^\s*Acquire::(https?::Proxy|Check-Valid-Until|Check-Date)\b.*;\s*$", re.IGNORECASE
)


def apt_settings_for_base(conf_texts: Iterable[str]) -> list[str]:
    """The lines of this machine's apt configuration that say how to reach its mirrors.

    A proxy, and the checks of a Release file's dates (off on machines that use a snapshot),
    go into the local base too, or its `apt-get` would fail where the host's works.
    """
    lines: list[str] = []
    for text in conf_texts:
        for line in text.splitlines():
            if _APT_CARRIED.match(line) and line.strip() not in lines:
                lines.append(line.strip())
    return lines


def is_loopback_url(url: str) -> bool:
    """True for a URL whose host is this machine's loopback (a container cannot reach it)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_network(mirror: str, apt_settings: Sequence[str] = ()) -> str | None:
    """`docker build --network` for the local base: `host` when its mirror is on loopback."""
    urls = [mirror, *(u for line in apt_settings for u in re.findall(r"https?://[^\s\"';]+", line))]
    return "host" if any(is_loopback_url(u) for u in urls) else None


def debootstrap_command(target: Path, mirror: str, suite: str = DEBIAN_SUITE) -> list[str]:
    return ["debootstrap", "--variant=minbase", suite, str(target), mirror]


def import_command(image: str, mirror: str, suite: str = DEBIAN_SUITE) -> list[str]:
    """`docker import` of a root filesystem read from standard input."""
    return [
        "docker",
        "import",
        "--change",
        f"ENV PATH={DEFAULT_PATH}",
        "--change",
        'CMD ["/bin/bash"]',
        "--message",
        f"debootstrap --variant=minbase {suite} {mirror}",
        "-",
        image,
    ]


def learner_build_command(
    context: Path,
    *,
    base_image: str,
    tags: Sequence[str],
    version: str = __version__,
    no_cache: bool = False,
    network: str | None = None,
) -> list[str]:
    """The `docker build` of the learner image from a staged context."""
    command = [
        "docker",
        "build",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--build-arg",
        f"LEARNHUB_VERSION={version}",
    ]
    for tag in tags:
        command += ["--tag", tag]
    if no_cache:
        command.append("--no-cache")
    if network:
        command += ["--network", network]
    command.append(str(context))
    return command


def learner_context_layout(source: Path) -> list[tuple[Path, str]]:
    """(source path, path in the build context) of everything the learner Dockerfile copies,
    except the project's wheel, which goes to `learnhub/dist/`.

    The single-user extension's data files go where `pip install` of a Jupyter extension
    puts them, under the venv's etc/ and share/: the wheel does not carry them. (nbgrader's
    config is not among them: the extension finds it inside the package, as in every install.)
    """
    learner = source / "images" / "learner"
    extension = source / "extensions"
    return [
        (learner / "Dockerfile", "Dockerfile"),
        (learner / "requirements.txt", "requirements.txt"),
        (learner / "sys-prefix", "sys-prefix"),
        (
            extension / "jupyter_server_config.d",
            "learnhub/sys-prefix/etc/jupyter/jupyter_server_config.d",
        ),
        (extension / "labextension", "learnhub/sys-prefix/share/jupyter/labextensions"),
    ]


_CONTEXT_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "node_modules")


def stage_learner_context(
    source: Path, context: Path, wheel: Path, build_ca: Iterable[Path] = ()
) -> None:
    """Copy what the learner image is built from into `context` (a directory).

    `build_ca` are certificate authorities (PEM `.crt` files) that pip trusts while the
    image installs its dependencies, for a machine whose egress goes through a TLS-inspecting
    proxy; the image's own trust store does not get them.
    """
    for path, relative in learner_context_layout(source):
        if not path.exists():
            raise ImageBuildError(f"{path} is missing: is {source} a LearnHub checkout?")
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target, ignore=_CONTEXT_IGNORED, dirs_exist_ok=True)
        else:
            shutil.copy2(path, target)
    ca_dir = context / "build-ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    for index, certificate in enumerate(build_ca):
        shutil.copyfile(certificate, ca_dir / f"{index:02d}-{certificate.name}")
    dist = context / "learnhub" / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, dist / wheel.name)


# I/O: the Docker CLI, pip, debootstrap


def _say(progress: Progress, message: str) -> None:
    progress(f"[learnhub images] {message}")


def _run(command: Sequence[str], what: str, **kwargs) -> None:
    """Run a command whose output goes straight to ours; raise with `what` when it fails."""
    sys.stdout.flush()
    sys.stderr.flush()
    code = subprocess.run(list(command), check=False, **kwargs).returncode
    if code != 0:
        raise ImageBuildError(f"{what} failed (exit {code}): {' '.join(command)}")


class DockerEngine:
    """The Docker engine, through the `docker` command line."""

    def __init__(self, docker: str = "docker"):
        self.docker = docker

    def _command(self, args: Sequence[str]) -> list[str]:
        return [self.docker, *args]

    def _capture(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            self._command(args), capture_output=True, text=True, timeout=timeout, check=False
        )

    def version(self) -> str | None:
        """The engine's version, or None when no engine answers."""
        try:
            result = self._capture("version", "--format", "{{.Server.Version}}", timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if result.returncode != 0:
            return None
        return result.stdout.strip() or None

    def image_id(self, image: str) -> str | None:
        result = self._capture("image", "inspect", "--format", "{{.Id}}", image)
        return result.stdout.strip() if result.returncode == 0 else None

    def present(self, images: Iterable[str]) -> set[str]:
        return {image for image in images if self.image_id(image)}

    def image_size(self, image: str) -> int:
        result = self._capture("image", "inspect", "--format", "{{.Size}}", image)
        return int(result.stdout.strip()) if result.returncode == 0 else 0

    def pull(self, image: str) -> tuple[bool, str]:
        """Pull an image; (done, the last thing docker said)."""
        try:
            result = self._capture("pull", image, timeout=PULL_TIMEOUT)
        except subprocess.TimeoutExpired:
            return False, f"no answer within {PULL_TIMEOUT}s"
        said = (result.stderr or result.stdout).strip().splitlines()
        return result.returncode == 0, said[-1] if said else ""

    def run(self, command: Sequence[str], what: str, **kwargs) -> None:
        """Run a `docker ...` command line built by the builders above, output streamed."""
        _run(self._command(command[1:]), what, **kwargs)

    def tag(self, image: str, target: str) -> None:
        result = self._capture("tag", image, target)
        if result.returncode != 0:
            raise ImageBuildError(f"docker tag {image} {target} failed: {result.stderr.strip()}")

    def push(self, image: str) -> str:
        """Push an image; its digest in the registry (sha256:...)."""
        try:
            result = self._capture("push", image, timeout=PUSH_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise ImageBuildError(
                f"docker push {image}: no answer within {PUSH_TIMEOUT}s"
            ) from None
        said = (result.stderr or result.stdout).strip().splitlines()
        if result.returncode != 0:
            raise ImageBuildError(
                f"docker push {image} failed: {said[-1] if said else 'no message'}"
            )
        digest = re.search(r"digest: (sha256:[0-9a-f]{64})", result.stdout)
        if digest is None:
            raise ImageBuildError(f"docker push {image} gave no digest: {result.stdout[-300:]}")
        return digest.group(1)


# --- pushing to the operator's registry (nodes of a cluster pull from it) ---------------------

# host[:port] with an optional path, as docker names a registry: no scheme, no tag.
REGISTRY_PATTERN = re.compile(
    r"^(?P<host>localhost|\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)$"
)


def check_registry(registry: str) -> str:
    """The registry as `docker push` wants it (host[:port][/path]), or ImageBuildError."""
    cleaned = registry.strip().rstrip("/")
    if "://" in cleaned:
        raise ImageBuildError(
            f"registry {registry!r}: give host[:port] without a scheme, e.g. "
            "registry.example.edu:5000 (docker speaks HTTPS to it, HTTP only to loopback)"
        )
    match = REGISTRY_PATTERN.match(cleaned)
    if match is None or (
        "." not in match["host"] and ":" not in cleaned and match["host"] != "localhost"
    ):
        # Without a dot or a port, docker reads the name as a Docker Hub user.
        raise ImageBuildError(
            f"registry {registry!r} is not host[:port][/path]: e.g. registry.example.edu, "
            "127.0.0.1:5000 or localhost:5000"
        )
    if match["port"] and not 0 < int(match["port"]) < 65536:
        raise ImageBuildError(f"registry {registry!r}: port {match['port']} is out of range")
    return cleaned


def registry_tag(registry: str, tag: str) -> str:
    """`learnhub/learner:0.1.0` in `registry`: `registry/learnhub/learner:0.1.0`."""
    return f"{registry}/{tag}"


def push_images(
    engine: DockerEngine, registry: str, tags: Iterable[str], progress: Progress = print
) -> dict[str, str]:
    """Tag each image for `registry` and push it there; {pushed tag: digest}."""
    registry = check_registry(registry)
    pushed = {}
    for tag in tags:
        target = registry_tag(registry, tag)
        engine.tag(tag, target)
        _say(progress, f"docker push {target}")
        pushed[target] = engine.push(target)
        _say(progress, f"pushed {target} ({pushed[target][:19]})")
    return pushed


def project_files(source: Path) -> list[Path]:
    """The files of the checkout (tracked and new, not ignored), relative to it."""
    try:
        listed = subprocess.run(
            [
                "git",
                "-C",
                str(source),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        # Not a git checkout: everything but what a checkout's .gitignore leaves out.
        skip = {".git", ".venv", "__pycache__", "build", "node_modules", "learnhub-state"}
        return [
            path.relative_to(source)
            for path in source.rglob("*")
            if path.is_file()
            and not skip.intersection(path.relative_to(source).parts)
            and not any(part.endswith(".egg-info") for part in path.parts)
        ]
    names = [name for name in listed.decode().split("\0") if name]
    return [Path(name) for name in names if (source / name).is_file()]


def local_certificate_authorities(directory: Path = LOCAL_CA_DIR) -> list[Path]:
    """The certificate authorities this machine's administrator added to its trust store."""
    return sorted(directory.rglob("*.crt")) if directory.is_dir() else []


def build_wheel(source: Path, dest: Path) -> Path:
    """Build the `learnhub` wheel from a copy of the checkout (so no stale build/ gets in)."""
    with tempfile.TemporaryDirectory(prefix="learnhub-src-") as tmp:
        copy = Path(tmp) / "src"
        for relative in project_files(source):
            target = copy / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, target)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--wheel-dir",
                str(dest),
                str(copy),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": WHEEL_EPOCH, "PIP_NO_INPUT": "1"},
            timeout=600,
            check=False,
        )
    wheels = sorted(dest.glob("learnhub-*.whl"))
    if result.returncode != 0 or not wheels:
        raise ImageBuildError(
            f"building the learnhub wheel failed:\n{result.stdout}{result.stderr}"
        )
    return wheels[-1]


def _read_texts(paths: Iterable[Path], pattern: str) -> list[str]:
    """The texts of the files that exist among `paths`, and in those that are folders, of
    their files matching `pattern`."""
    texts = []
    for path in paths:
        files = sorted(path.glob(pattern)) if path.is_dir() else [path]
        texts += [file.read_text(errors="replace") for file in files if file.is_file()]
    return texts


@dataclass(frozen=True)
class HostApt:
    """How this machine reaches Debian, carried into the local base."""

    mirror: str
    sources: list[str]
    settings: list[str]

    @property
    def build_network(self) -> str | None:
        return build_network(self.mirror, self.settings)


def host_apt() -> HostApt:
    """Read this machine's apt sources and configuration (under APT_DIR)."""
    texts = _read_texts([APT_DIR / "sources.list"], "")
    texts += _read_texts([APT_DIR / "sources.list.d"], "*.list")
    texts += _read_texts([APT_DIR / "sources.list.d"], "*.sources")
    mirror, lines = base_sources(s for text in texts for s in parse_apt_sources(text))
    conf = _read_texts([APT_DIR / "apt.conf", APT_DIR / "apt.conf.d"], "*")
    return HostApt(mirror, lines, apt_settings_for_base(conf))


def build_local_base(
    engine: DockerEngine, *, image: str = LOCAL_BASE_IMAGE, progress: Progress = print
) -> None:
    """Make `image` from Debian with debootstrap and `docker import`.

    Uses this machine's apt mirrors and the settings that reach them (a local mirror or
    proxy included), so the image's `apt-get` works where the host's does.
    """
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"making the local base {image} needs root (debootstrap): run as root, or load a "
            f"base image and pass --base-image"
        )
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(
            "debootstrap is missing: run scripts/provision-docker.sh "
            "(or apt-get install debootstrap)"
        )
    apt = host_apt()
    mirror = apt.mirror
    _say(progress, f"debootstrap --variant=minbase {DEBIAN_SUITE} from {mirror} (about a minute)")
    root = Path(tempfile.mkdtemp(prefix="learnhub-base-", dir="/var/tmp"))
    try:
        _run(debootstrap_command(root, mirror), "debootstrap")
        (root / "etc/apt/sources.list").write_text("\n".join(apt.sources) + "\n")
        if apt.settings:
            (root / "etc/apt/apt.conf.d/99learnhub-host").write_text("\n".join(apt.settings) + "\n")
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftovers).glob("*"):
                if path.is_file():
                    path.unlink()
        # debootstrap copies the host's name and resolver; containers get their own at run time.
        for host_file in ("etc/hostname", "etc/resolv.conf"):
            (root / host_file).write_text("")
        _say(progress, f"importing the root filesystem as {image}")
        sys.stdout.flush()
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
        )
        try:
            engine.run(import_command(image, mirror), "docker import", stdin=tar.stdout)
        finally:
            tar.stdout.close()
            if tar.wait() != 0:
                raise ImageBuildError(f"tar of {root} failed (exit {tar.returncode})")
    finally:
        _remove_root(root)


def _remove_root(root: Path) -> None:
    # debootstrap mounts /proc (and more) inside the target; a failed run can leave them.
    mounts = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1].startswith(f"{root}/")
    ]
    for mount in sorted(mounts, reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False)
    if mounts:
        time.sleep(1)
    shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class LearnerBuild:
    """A built learner image."""

    tags: list[str]
    image_id: str
    base_image: str
    base_built: bool
    seconds: float


def resolve_base(
    engine: DockerEngine,
    requested: str | None,
    *,
    pull: bool = True,
    progress: Progress = print,
) -> tuple[str, bool, str | None]:
    """(base image, whether it was built now, docker build network) for the learner image."""
    candidates = {requested or DEFAULT_BASE_IMAGE, LOCAL_BASE_IMAGE}
    step = plan_base(requested, engine.present(candidates), allow_pull=pull)
    if step.action == "pull":
        _say(progress, step.reason)
        pulled, said = engine.pull(step.image)
        if pulled:
            return step.image, False, None
        _say(progress, f"pull of {step.image} failed: {said}")
        step = plan_base(requested, engine.present(candidates), allow_pull=pull, pull_failed=True)
    _say(progress, f"base: {step.image} ({step.reason})")
    built = step.action == "build-local"
    if built:
        started = time.monotonic()
        build_local_base(engine, image=step.image, progress=progress)
        _say(progress, f"made {step.image} in {time.monotonic() - started:.0f}s")
    # The local base's apt uses this machine's mirrors: a loopback one needs the host network.
    network = host_apt().build_network if step.image == LOCAL_BASE_IMAGE else None
    return step.image, built, network


def require_engine(engine: DockerEngine) -> str:
    """The engine's version, or an error that says how to get one running."""
    server = engine.version()
    if server is None:
        raise ImageBuildError(
            "no Docker engine answers: run scripts/provision-docker.sh (as root), or start dockerd"
        )
    return server


def docker_build(
    engine: DockerEngine,
    *,
    source: Path,
    stage,
    base: str,
    network: str | None,
    tags: list[str],
    version: str,
    no_cache: bool,
    what: str,
    progress: Progress,
) -> str:
    """Build the project's wheel, stage a context with `stage`, run docker build; the image id.

    `stage(source, context, wheel, build_ca)` lays out the small context the Dockerfile
    copies from (stage_learner_context, or the hub image's).
    """
    with tempfile.TemporaryDirectory(prefix="learnhub-image-") as tmp:
        context = Path(tmp) / "context"
        _say(progress, f"building the learnhub wheel from {source}")
        wheel = build_wheel(source, Path(tmp) / "dist")
        build_ca = local_certificate_authorities()
        if build_ca:
            names = ", ".join(path.name for path in build_ca)
            _say(progress, f"pip trusts this machine's own certificate authorities too: {names}")
        stage(source, context, wheel, build_ca)
        _say(progress, f"docker build {', '.join(tags)} on {base}")
        command = learner_build_command(
            context,
            base_image=base,
            tags=tags,
            version=version,
            no_cache=no_cache,
            network=network,
        )
        engine.run(command, f"docker build of {what}")
    image_id = engine.image_id(tags[0])
    if image_id is None:
        raise ImageBuildError(f"docker build ended but {tags[0]} is not there")
    return image_id


def report_built(
    engine: DockerEngine, tags: list[str], image_id: str, seconds: float, progress: Progress
) -> None:
    size = engine.image_size(tags[0]) / 1e6
    _say(progress, f"built {', '.join(tags)} ({image_id[:19]}, {size:.0f} MB) in {seconds:.0f}s")


def build_learner_image(
    *,
    source: Path = SOURCE_ROOT,
    base_image: str | None = None,
    no_cache: bool = False,
    pull: bool = True,
    version: str = __version__,
    engine: DockerEngine | None = None,
    progress: Progress = print,
) -> LearnerBuild:
    """Build `learnhub/learner:<version>` and `:latest`; see plan_base for the base.

    A second build reuses the base and docker's layer cache: with nothing changed it takes
    seconds and gives the same image.
    """
    engine = engine or DockerEngine()
    started = time.monotonic()
    _say(progress, f"Docker engine {require_engine(engine)}")
    base, base_built, network = resolve_base(engine, base_image, pull=pull, progress=progress)
    tags = learner_tags(version)
    image_id = docker_build(
        engine,
        source=source,
        stage=stage_learner_context,
        base=base,
        network=network,
        tags=tags,
        version=version,
        no_cache=no_cache,
        what="the learner image",
        progress=progress,
    )
    build = LearnerBuild(tags, image_id, base, base_built, time.monotonic() - started)
    report_built(engine, build.tags, image_id, build.seconds, progress)
    return build


# The grader image: the learner image plus the sandbox's runner (learnhub.grading)

GRADER_REPOSITORY = "learnhub/grader"


def grader_tags(version: str = __version__) -> list[str]:
    """The tags of a grader image: the LearnHub version, then `latest`."""
    return [f"{GRADER_REPOSITORY}:{docker_tag(version)}", f"{GRADER_REPOSITORY}:latest"]


def grader_context_layout(source: Path) -> list[tuple[Path, str]]:
    """(source path, path in the build context) of what the grader Dockerfile copies."""
    return [
        (source / "images" / "grader" / "Dockerfile", "Dockerfile"),
        (source / "hub" / "grading" / "runner.py", "runner.py"),
    ]


def stage_grader_context(
    source: Path, context: Path, wheel: Path, build_ca: Iterable[Path] = ()
) -> None:
    """Copy what the grader image is built from into `context`; the learner image below it
    already has the wheel and installs nothing more, so `wheel` and `build_ca` go unused."""
    for path, relative in grader_context_layout(source):
        if not path.exists():
            raise ImageBuildError(f"{path} is missing: is {source} a LearnHub checkout?")
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def build_grader_image(
    *,
    source: Path = SOURCE_ROOT,
    no_cache: bool = False,
    version: str = __version__,
    engine: DockerEngine | None = None,
    progress: Progress = print,
) -> LearnerBuild:
    """Build `learnhub/grader:<version>` and `:latest` on this version's learner image, which
    must be here (it is never pulled)."""
    engine = engine or DockerEngine()
    started = time.monotonic()
    require_engine(engine)
    base = learner_tags(version)[0]
    if engine.image_id(base) is None:
        raise ImageBuildError(f"the grader image is built on {base}: build that first")
    tags = grader_tags(version)
    image_id = docker_build(
        engine,
        source=source,
        stage=stage_grader_context,
        base=base,
        network=None,
        tags=tags,
        version=version,
        no_cache=no_cache,
        what="the grader image",
        progress=progress,
    )
    build = LearnerBuild(tags, image_id, base, False, time.monotonic() - started)
    report_built(engine, build.tags, image_id, build.seconds, progress)
    return build
