"""A size limit on the bodies of LearnHub's hub endpoints, enforced before a byte is parsed."""

from __future__ import annotations

import functools
import inspect

from tornado import httputil, web

# Where handlers find the limit: a key of JupyterHub.tornado_settings (hub.max_body_size).
MAX_BODY_SETTINGS_KEY = "learnhub_max_body_size"
DEFAULT_MAX_BODY_SIZE = 256 * 1024
BODY_METHODS = ("post", "put", "patch", "delete")


def too_large(size: int | None, limit: int) -> web.HTTPError:
    said = f"{size} bytes" if size is not None else "more"
    return web.HTTPError(
        413,
        f"This request is too large ({said}; this site accepts at most {limit} bytes). "
        "If your LMS sends launches this large, ask the site's operator to raise "
        "hub.max_body_size.",
    )


def _after_body(method):
    """Run `method` only if the body was accepted, with its form fields parsed."""

    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        if self._body_refused is not None:
            raise self._body_refused
        self._parse_body()
        result = method(self, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    return wrapper


@web.stream_request_body
class LimitedBody(web.RequestHandler):
    """Mixin for a hub handler: its request body is refused with 413 past the limit.

    Tornado would read a body of up to 100 MB into memory and parse it on the event loop
    before any handler code runs (a 20 MB unsigned launch stalled the hub for a second).
    Here the body streams in (`stream_request_body`): a Content-Length over the limit is
    refused as soon as the headers arrive, a chunked body as soon as it passes the limit,
    and only an accepted body is parsed, just before the handler's method runs (every
    `post`/`put`/`patch`/`delete` of a subclass is wrapped for that). A refused body is
    read to its end and dropped, not kept (tornado's own limit still closes the connection
    past 100 MB), and only then answered: tornado closes a connection whose request it
    answered early, and configurable-http-proxy, still sending, would turn that into a 503.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in BODY_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_learnhub_after_body", False):
                wrapped = _after_body(method)
                wrapped._learnhub_after_body = True
                setattr(cls, name, wrapped)

    @property
    def max_body_size(self) -> int:
        return int(self.settings.get(MAX_BODY_SETTINGS_KEY) or DEFAULT_MAX_BODY_SIZE)

    async def prepare(self):
        limit = self.max_body_size
        self._body_chunks: list[bytes] = []
        self._body_size = 0
        self._body_refused: web.HTTPError | None = None
        length = self.request.headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            self._body_refused = too_large(int(length), limit)
        result = super().prepare()
        if inspect.isawaitable(result):
            await result

    def data_received(self, chunk: bytes) -> None:
        if self._body_refused is not None:
            return
        self._body_size += len(chunk)
        if self._body_size > self.max_body_size:
            self._body_chunks = []
            self._body_refused = too_large(None, self.max_body_size)
            return
        self._body_chunks.append(chunk)

    def _parse_body(self) -> None:
        # What tornado's HTTPServerRequest does for a body it read itself.
        request = self.request
        request.body = b"".join(self._body_chunks)
        self._body_chunks = []
        httputil.parse_body_arguments(
            request.headers.get("Content-Type", ""),
            request.body,
            request.body_arguments,
            request.files,
            request.headers,
        )
        for name, values in request.body_arguments.items():
            request.arguments.setdefault(name, []).extend(values)
