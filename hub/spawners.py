"""Spawners for learner servers."""

from __future__ import annotations

import os

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode


class LocalLearnerSpawner(SimpleLocalProcessSpawner):
    """Learner servers as local processes of the hub's user: for a demo, never for a class.

    Every learner runs with the hub's privileges and can read every other learner's
    files; the hub says so in its log at each start.
    """

    home_dir_template = Unicode(
        "learnhub-state/homes/{username}",
        config=True,
        help="Folder holding each learner's files; {username} is the hub username. "
        "Default learnhub-state/homes/{username}.",
    )

    def get_args(self):
        args = super().get_args()
        if os.geteuid() == 0:
            # jupyter-server refuses root without it; this spawner is a demo mode anyway.
            args.append("--allow-root")
        return args

    async def start(self):
        self.log.warning(
            "Learner server for %s runs as a local process: learners are NOT isolated "
            "from each other. Use the Docker spawner for real classes.",
            self.user.name,
        )
        return await super().start()
