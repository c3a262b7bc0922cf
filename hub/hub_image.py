"""The hub image of deploy/compose, built like the learner image on a registry or local base."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .images import (
    SOURCE_ROOT,
    DockerEngine,
    ImageBuildError,
    Progress,
    docker_build,
    docker_tag,
    report_built,
    require_engine,
    resolve_base,
)

HUB_REPOSITORY = "learnhub/hub"


# Pure builders


def hub_tags(version: str = __version__) -> list[str]:
    """The tags of a hub image: the LearnHub version, then `latest`."""
    return [f"{HUB_REPOSITORY}:{docker_tag(version)}", f"{HUB_REPOSITORY}:latest"]


def hub_context_layout(source: Path) -> list[tuple[Path, str]]:
    """(source path, path in the build context) of everything the hub Dockerfile copies,
    except the project's wheel (`learnhub/dist/`) and the build's certificate authorities."""
    hub = source / "images" / "hub"
    return [
        (hub / "Dockerfile", "Dockerfile"),
        (hub / "requirements.txt", "requirements.txt"),
        (hub / "entrypoint.sh", "entrypoint.sh"),
        (hub / "proxy" / "package.json", "proxy/package.json"),
        (hub / "proxy" / "package-lock.json", "proxy/package-lock.json"),
    ]


def stage_hub_context(
    source: Path, context: Path, wheel: Path, build_ca: Iterable[Path] = ()
) -> None:
    """Copy what the hub image is built from into `context` (a directory)."""
    for path, relative in hub_context_layout(source):
        if not path.exists():
            raise ImageBuildError(f"{path} is missing: is {source} a LearnHub checkout?")
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    ca_dir = context / "build-ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    for index, certificate in enumerate(build_ca):
        shutil.copyfile(certificate, ca_dir / f"{index:02d}-{certificate.name}")
    dist = context / "learnhub" / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, dist / wheel.name)


# I/O


@dataclass(frozen=True)
class HubBuild:
    """A built hub image."""

    tags: list[str]
    image_id: str
    base_image: str
    seconds: float


def build_hub_image(
    *,
    source: Path = SOURCE_ROOT,
    base_image: str | None = None,
    no_cache: bool = False,
    pull: bool = True,
    version: str = __version__,
    engine: DockerEngine | None = None,
    progress: Progress = print,
) -> HubBuild:
    """Build `learnhub/hub:<version>` and `:latest` on the learner image's choice of base."""
    engine = engine or DockerEngine()
    started = time.monotonic()
    require_engine(engine)
    base, _built, network = resolve_base(engine, base_image, pull=pull, progress=progress)
    tags = hub_tags(version)
    image_id = docker_build(
        engine,
        source=source,
        stage=stage_hub_context,
        base=base,
        network=network,
        tags=tags,
        version=version,
        no_cache=no_cache,
        what="the hub image",
        progress=progress,
    )
    build = HubBuild(tags, image_id, base, time.monotonic() - started)
    report_built(engine, build.tags, image_id, build.seconds, progress)
    return build
