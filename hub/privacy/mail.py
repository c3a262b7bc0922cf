"""Sending mail through the operator's SMTP server, one message at a time, rate-limited."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from ..settings import LOOPBACK_HOSTS

PASSWORD_ENV = "LEARNHUB_SMTP_PASSWORD"  # noqa: S105 (a variable name, not a secret)
SECURITIES = ("starttls", "tls", "none")


class SmtpSettingsError(ValueError):
    """The smtp settings cannot be used to send; the message names the key and the fix."""


class SmtpConnectError(RuntimeError):
    """The server could not be reached, refused encryption or refused the login."""


class DeliveryError(RuntimeError):
    """The server did not accept one message; str() is the server's answer."""


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to send: the validated `smtp` settings plus the password."""

    host: str
    port: int = 587
    security: str = "starttls"
    timeout: float = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    def __post_init__(self):
        if self.security not in SECURITIES:
            raise SmtpSettingsError(
                f"smtp.security is {self.security!r}: use one of {', '.join(SECURITIES)}"
            )
        if self.security == "none" and self.host not in LOOPBACK_HOSTS:
            raise SmtpSettingsError(
                f"smtp.security 'none' is allowed only for a loopback smtp.host, not "
                f"{self.host!r}: set smtp.security to starttls or tls"
            )
        if self.username and not self.password:
            raise SmtpSettingsError(
                f"smtp.username is set but there is no password: set {PASSWORD_ENV} "
                "(or smtp.password)"
            )
        if self.ca_file and not Path(self.ca_file).is_file():
            raise SmtpSettingsError(f"smtp.ca_file {self.ca_file} does not exist")

    @classmethod
    def from_settings(cls, smtp: Mapping, environ: Mapping[str, str]) -> SmtpServer:
        """Build from the `smtp` settings section; the password variable wins over the file."""
        if not smtp.get("host"):
            raise SmtpSettingsError(
                "smtp.host is not set: name your mail server in the smtp section of the "
                "settings, e.g. smtp: {host: smtp.example.edu, port: 587}"
            )
        return cls(
            host=smtp["host"],
            port=smtp.get("port", 587),
            security=smtp.get("security", "starttls"),
            timeout=smtp.get("timeout", 30),
            username=smtp.get("username"),
            password=environ.get(PASSWORD_ENV) or smtp.get("password"),
            ca_file=smtp.get("ca_file"),
        )

    def describe(self) -> str:
        login = f", as {self.username}" if self.username else ""
        return f"{self.host}:{self.port} ({self.security}{login})"

    def ssl_context(self) -> ssl.SSLContext:
        # Certificate and host name are always checked; ca_file only changes whom we trust.
        return ssl.create_default_context(cafile=self.ca_file)


class TokenBucket:
    """At most `rate_per_minute` takes per minute, with bursts of up to `capacity`.

    The clock and sleep are injectable so the pacing can be tested without waiting.
    """

    def __init__(
        self,
        rate_per_minute: float,
        capacity: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate_per_minute <= 0:
            raise ValueError("TokenBucket.rate_per_minute must be positive")
        if capacity < 1:
            raise ValueError("TokenBucket.capacity must be at least 1")
        self.interval = 60.0 / rate_per_minute
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(capacity)
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) / self.interval)
        self._last = now

    def take(self) -> float:
        """Wait until a token is free and use it; return the seconds waited."""
        waited = 0.0
        self._refill()
        while self._tokens < 1:
            delay = (1 - self._tokens) * self.interval
            self._sleep(delay)
            waited += delay
            self._refill()
        self._tokens -= 1
        return waited


def _answer(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


class SmtpOutbox:
    """A connection to the SMTP server that sends one message at a time.

    A refused message raises DeliveryError and leaves the connection usable for the next
    one; a lost connection is reopened once for the next message, and SmtpConnectError
    means the server cannot be used at all.
    """

    def __init__(self, server: SmtpServer):
        self.server = server
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpOutbox:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> None:
        server = self.server
        try:
            if server.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    server.host,
                    server.port,
                    timeout=server.timeout,
                    context=server.ssl_context(),
                )
            else:
                smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        except (OSError, smtplib.SMTPException) as e:
            raise SmtpConnectError(
                f"cannot connect to {server.describe()}: {e}; check smtp.host, smtp.port "
                "and smtp.security"
            ) from None
        try:
            smtp.ehlo()
            if server.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SmtpConnectError(
                        f"{server.host}:{server.port} does not offer STARTTLS: use the "
                        "submission port (587) or set smtp.security to tls (port 465)"
                    )
                smtp.starttls(context=server.ssl_context())
                smtp.ehlo()
            if server.username:
                smtp.login(server.username, server.password or "")
        except SmtpConnectError:
            smtp.close()
            raise
        except smtplib.SMTPAuthenticationError as e:
            smtp.close()
            raise SmtpConnectError(
                f"{server.host} refused the login of smtp.username {server.username!r}: "
                f"{_answer(e.smtp_code, e.smtp_error)}; check the password "
                f"(LEARNHUB_SMTP_PASSWORD)"
            ) from None
        except ssl.SSLError as e:
            smtp.close()
            raise SmtpConnectError(
                f"TLS with {server.host} failed: {e}; if the server's certificate is signed "
                "by a private authority, set smtp.ca_file"
            ) from None
        except (OSError, smtplib.SMTPException) as e:
            smtp.close()
            raise SmtpConnectError(f"{server.describe()} failed: {e}") from None
        self._smtp = smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def send(self, message: EmailMessage) -> None:
        """Hand one message to the server, or raise DeliveryError with its answer."""
        if self._smtp is None:
            self.connect()
        assert self._smtp is not None
        try:
            refused = self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as e:
            answers = [_answer(code, msg) for code, msg in e.recipients.values()]
            raise DeliveryError("; ".join(answers)) from None
        except smtplib.SMTPResponseException as e:
            # Sender or data refused: smtplib has reset the transaction, the link is fine.
            raise DeliveryError(_answer(e.smtp_code, e.smtp_error)) from None
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            # The next send reconnects; this message is reported as not delivered.
            self._drop()
            raise DeliveryError(f"connection lost: {e or type(e).__name__}") from None
        except smtplib.SMTPException as e:
            raise DeliveryError(str(e)) from None
        if refused:
            answers = [_answer(code, msg) for code, msg in refused.values()]
            raise DeliveryError("; ".join(answers))

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()
