"""The names of LearnHub's hub services, for the config that registers them and the services."""

from __future__ import annotations

COURSE_SERVICE = "learnhub-courses"
GRADING_SERVICE = "learnhub-grading"
RETENTION_SERVICE = "learnhub-retention"

# Who holds this scope may call the course service (learners' and graders' servers).
COURSE_ACCESS_SCOPE = f"access:services!service={COURSE_SERVICE}"
