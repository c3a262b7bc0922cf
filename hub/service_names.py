"""The names and ports of LearnHub's hub services, for the config that registers them and
the services."""

from __future__ import annotations

COURSE_SERVICE = "learnhub-courses"
GRADING_SERVICE = "learnhub-grading"
RETENTION_SERVICE = "learnhub-retention"

# Where the course service finds the retention service, to remove a learner who left an
# LMS's roster (courses/roster.py).
RETENTION_URL_ENV = "LEARNHUB_RETENTION_URL"

# Who holds this scope may call the course service (learners' and graders' servers).
COURSE_ACCESS_SCOPE = f"access:services!service={COURSE_SERVICE}"

# Each service listens on a port of its own: the one configured, else the hub API's port
# plus its offset (the services sit next to the hub API).
PORT_OFFSETS = {COURSE_SERVICE: 1, GRADING_SERVICE: 2, RETENTION_SERVICE: 3}
# Where each service's port is configured in learnhub.yaml.
PORT_SETTINGS = {
    COURSE_SERVICE: ("courses", "port"),
    GRADING_SERVICE: ("grading", "port"),
    RETENTION_SERVICE: ("privacy", "retention", "service_port"),
}


def service_port(settings, name: str) -> int:
    """The port the hub service `name` listens on, from LearnHub's settings."""
    configured = settings
    for key in PORT_SETTINGS[name]:
        configured = configured[key]
    return configured or settings["hub"]["api_port"] + PORT_OFFSETS[name]
