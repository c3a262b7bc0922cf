"""Learner and grader servers as pods, through kubespawner (the `kubernetes` extra):
spawner.backend kubernetes. docs/kubernetes.md says what has not run on a cluster."""

from __future__ import annotations

from kubespawner import KubeSpawner
from traitlets import Unicode

from .kubernetes import HOME_VOLUME, grader_home
from .settings import trait_arguments
from .spawners import CourseServers


class KubeLearnerSpawner(CourseServers, KubeSpawner):
    """Each learner's server in a pod of their own; a course's grader server in one whose
    home is that course's directory of the state claim.

    Its options come from learnhub.kubernetes.learner_spawner_traits (limits, security
    context, a home claim per learner that delete_forever deletes)."""

    state_claim = Unicode(**trait_arguments("spawner.kubernetes.state_claim"))

    def get_env(self):
        return {**super().get_env(), **self.role_environment()}

    def get_args(self):
        return [*super().get_args(), *self.role_args()]

    def as_course_grader(self) -> None:
        """A grader server's home is its course's directory of the state claim: no home
        claim of its own is made, and none is deleted with it (the course's files go when
        the course does)."""
        course = self.grader_course
        if not course:
            return
        volume, mount = grader_home(course, self.state_claim)
        self.volumes = [v for v in self.volumes if v["name"] != HOME_VOLUME] + [volume]
        self.volume_mounts = [m for m in self.volume_mounts if m["name"] != HOME_VOLUME] + [mount]
        self.storage_pvc_ensure = False
        self.delete_pvc = False

    async def _start(self):
        self.as_course_grader()
        return await super()._start()

    async def get_pod_manifest(self):
        self.as_course_grader()
        return await super().get_pod_manifest()

    async def delete_forever(self):
        self.as_course_grader()
        return await super().delete_forever()
