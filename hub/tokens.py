"""The labels of the tokens LearnHub mints, so every module can tell them apart."""

# A launch's token: the learner's own server, for lti.session_lifetime seconds.
SESSION_TOKEN_NOTE = "LearnHub LMS launch session"  # noqa: S105 (a label, not a secret)
# A staff handoff's token: one course's grader server, no longer than the launch token.
FORMGRADER_TOKEN_NOTE = "LearnHub formgrader session"  # noqa: S105 (a label, not a secret)
# The shortest lti.session_lifetime the settings allow, in seconds.
MIN_SESSION_LIFETIME = 300
