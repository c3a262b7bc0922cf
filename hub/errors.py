"""The error a launch fails with: an HTTP status and a message a person can act on."""

from tornado import web


class LaunchError(web.HTTPError):
    """A launch refused; the message names the problem and is shown to the learner."""

    def __init__(self, status: int, message: str):
        # The message is passed as an argument so a "%" in it is never a format directive.
        super().__init__(status, "%s", message)
        self.message = message
