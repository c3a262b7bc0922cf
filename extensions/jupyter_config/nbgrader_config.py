"""nbgrader in a server the hub started: the course service is the exchange, and nothing else.

Not installed anywhere: the LearnHub server extension puts this folder first on
$JUPYTER_CONFIG_PATH when the hub starts the server (learnhub_singleuser.course_service), so
nbgrader reads it wherever it loads its config in that server (formgrader, the assignment
list, and nbgrader commands in its terminals), in every install: editable, wheel or image.
With no LEARNHUB_EXCHANGE_URL the exchange classes refuse with that reason; nbgrader's
shared exchange folder is never used instead.
"""

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

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
