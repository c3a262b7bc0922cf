"""Autograding with learners' code run only inside a sandbox: a container or a subprocess."""

from .autograde import (
    AutogradeError,
    AutogradeResult,
    NotebookResult,
    Tampering,
    autograde_submission,
)
from .sandbox import (
    DEFAULT_IMAGE,
    DockerSandbox,
    Execution,
    LimitEvent,
    Limits,
    ProcessSandbox,
    Sandbox,
    SandboxError,
    instructor_message,
)

__all__ = [
    "DEFAULT_IMAGE",
    "AutogradeError",
    "AutogradeResult",
    "DockerSandbox",
    "Execution",
    "LimitEvent",
    "Limits",
    "NotebookResult",
    "ProcessSandbox",
    "Sandbox",
    "SandboxError",
    "Tampering",
    "autograde_submission",
    "instructor_message",
]
