"""LearnHub's nbgrader settings for learner and grader servers: the course service is the exchange.

Installed as <prefix>/etc/jupyter/nbgrader_config.py. It changes nothing unless the hub
gave the server a course service (LEARNHUB_EXCHANGE_URL), so stock nbgrader commands in the
same environment keep nbgrader's defaults.
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

if os.environ.get("LEARNHUB_EXCHANGE_URL"):
    for step, cls in {
        "exchange": "LearnHubExchange",
        "fetch_assignment": "ExchangeFetchAssignment",
        "fetch_feedback": "ExchangeFetchFeedback",
        "release_assignment": "ExchangeReleaseAssignment",
        "release_feedback": "ExchangeReleaseFeedback",
        "list": "ExchangeList",
        "submit": "ExchangeSubmit",
        "collect": "ExchangeCollect",
    }.items():
        setattr(c.ExchangeFactory, step, f"learnhub_singleuser.exchange.{cls}")
    # Learners' fetched assignments sit in their home, under <course>/<assignment>.
    c.LearnHubExchange.path_includes_course = True
