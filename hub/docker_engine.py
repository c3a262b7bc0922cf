"""The Docker engine client LearnHub's spawner, grading service and reports share."""

from __future__ import annotations

import docker
from docker.utils import kwargs_from_env

ENGINE_TIMEOUT = 10


def docker_client(timeout: float = ENGINE_TIMEOUT) -> docker.APIClient:
    """A client for the engine DockerSpawner uses ($DOCKER_HOST or the local socket)."""
    return docker.APIClient(version="auto", timeout=timeout, **kwargs_from_env())
