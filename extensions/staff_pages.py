"""Formgrader's pages in a grader server: LMS and learner values as text, only its own scripts.

nbgrader's submission page prints the learner's first and last name into the page
unescaped (`formgrade_macros.html.j2`), and renders the learner's notebook, whose markdown
and outputs are HTML the learner wrote. A name such as `Alice<script>...</script>`, sent by
the LMS, ran in the instructor's session. Three things stop that here:

- the submission page gets the values nbgrader prints raw already HTML-escaped
  (`SafeFormgradeExporter`), so they show as the text they are;
- the learner's notebook is rendered with nbconvert's `sanitize_html`, whose cleaning here
  (`clean_learner_html`) keeps the formatting of markdown and HTML outputs (headings,
  lists, tables, code, inline images) and drops every other tag, attribute and URL scheme,
  so scripts and event handlers show as text or not at all; JavaScript outputs are not
  rendered;
- every formgrader page carries a Content-Security-Policy whose `script-src` admits only
  this server's files, the inline scripts of nbgrader's and nbconvert's own templates (each
  gets the response's nonce when its template is loaded, before any value is rendered into
  it) and, by hash, the few inline event handlers those templates contain. Markup that
  reaches the page some other way cannot run.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import html
import re
import secrets
from collections.abc import Iterable

import bleach
from jinja2 import BaseLoader, Environment, pass_context
from nbconvert.exporters import HTMLExporter
from tornado.web import OutputTransform
from traitlets import default

CSP = "Content-Security-Policy"
NONCE_GLOBAL = "learnhub_csp_nonce"
# The resources nbgrader's submission page prints without escaping.
RAW_RESOURCES = ("first_name", "last_name", "student")

_nonce: contextvars.ContextVar[str] = contextvars.ContextVar("learnhub_csp_nonce", default="")
_SCRIPT_TAG = re.compile(r"<script(?=[\s>])", re.IGNORECASE)
# A static inline event handler of a template: on<event>="code" with no template expression.
_EVENT_HANDLER = re.compile(r'\son[a-z]+="([^"{}]*)"')


# What a learner's markdown and HTML outputs may keep on a staff page.
LEARNER_TAGS = frozenset(
    {
        *("a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd"),
        *("del", "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2"),
        *("h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre"),
        *("q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table"),
        *("tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var"),
    }
)
_SAFE_LINK = re.compile(r"(?:https?:|mailto:|#|/|\.|[^:/?#]*(?:[/?#]|$))", re.IGNORECASE)


def _learner_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "id", "title", "align"):
        return True
    if tag == "a" and name == "href":
        return bool(_SAFE_LINK.match(value))
    if tag == "img":
        # Inline images only: a URL elsewhere would have the instructor's browser call it.
        return name == "alt" or (name == "src" and value.startswith("data:image/"))
    return tag in ("td", "th") and name in ("colspan", "rowspan")


def clean_learner_html(markup) -> str:
    """HTML a learner wrote, with only formatting left (LEARNER_TAGS); everything else,
    <script> included, is removed and its text shown as text."""
    markup = markup.decode() if isinstance(markup, bytes) else str(markup)
    return bleach.clean(
        markup,
        tags=LEARNER_TAGS,
        attributes=_learner_attribute,
        protocols=["http", "https", "mailto", "data"],
        strip=True,
    )


def current_nonce() -> str:
    """The nonce of the response being rendered (set by FormgraderCSP for each request)."""
    return _nonce.get()


def with_nonces(source: str) -> str:
    """A template's source whose every <script> element carries the response's nonce.

    Applied to the template's own text when it is loaded, so only scripts the template's
    author wrote get the nonce; whatever values are rendered into it later never do.
    """
    return _SCRIPT_TAG.sub(f'<script nonce="{{{{ {NONCE_GLOBAL}() }}}}"', source)


def handler_hashes(sources: Iterable[str]) -> set[str]:
    """CSP hash sources of the static inline event handlers in these template sources."""
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
        for source in sources
        for code in _EVENT_HANDLER.findall(source)
    }


class NoncedLoader(BaseLoader):
    """A Jinja loader that hands out another loader's templates with_nonces, and remembers
    the inline event handlers it saw (for the policy's hashes)."""

    def __init__(self, loader: BaseLoader):
        self.loader = loader
        self.hashes: set[str] = set()

    def get_source(self, environment, template):
        source, filename, uptodate = self.loader.get_source(environment, template)
        self.hashes |= handler_hashes([source])
        return with_nonces(source), filename, uptodate

    def list_templates(self):
        return self.loader.list_templates()


def nonced(environment: Environment) -> NoncedLoader:
    """Make `environment` load its templates with nonces; its loader, for the hashes."""
    loader = NoncedLoader(environment.loader)
    environment.loader = loader
    environment.globals[NONCE_GLOBAL] = current_nonce
    return loader


def formgrader_csp(nonce: str, hashes: Iterable[str]) -> str:
    """The policy of a formgrader page. Styles may be inline (nbgrader's templates and
    Bootstrap use style attributes); images may be data: URLs (notebook outputs)."""
    scripts = " ".join(["'self'", f"'nonce-{nonce}'", *sorted(hashes)])
    if hashes:
        scripts += " 'unsafe-hashes'"
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SafeFormgradeExporter(HTMLExporter):
    """nbgrader's submission-page exporter, with learners' values kept as text."""

    @default("sanitize_html")
    def _default_sanitize_html(self):
        return True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loaders: list[NoncedLoader] = []

    @property
    def hashes(self) -> set[str]:
        return set().union(*(loader.hashes for loader in self.loaders))

    def _create_environment(self):
        environment = super()._create_environment()
        # What sanitize_html pipes HTML outputs through (nbconvert's own keeps too little
        # to read an answer: it escapes <p> and headings).
        environment.filters["clean_html"] = clean_learner_html
        self.loaders.append(nonced(environment))
        return environment

    @pass_context
    def markdown2html(self, context, source):
        # nbgrader's submission template renders markdown cells itself, without the
        # clean_html of nbconvert's own templates.
        return clean_learner_html(super().markdown2html(context, source))

    def from_filename(self, filename, resources=None, **kw):
        if resources is not None:
            resources = {
                **resources,
                **{
                    key: html.escape(str(resources[key]))
                    for key in RAW_RESOURCES
                    if resources.get(key) is not None
                },
            }
        return super().from_filename(filename, resources=resources, **kw)


class FormgraderCSP(OutputTransform):
    """Give each formgrader page a fresh nonce and the policy that admits only it.

    A transform is made for each request before its handler runs, so the nonce it sets is
    the one the handler's templates render with.
    """

    prefix = "/formgrader/"
    loaders: list = []

    def __init__(self, request):
        super().__init__(request)
        self.applies = request.path.startswith(self.prefix)
        self.nonce = secrets.token_urlsafe(18)
        if self.applies:
            _nonce.set(self.nonce)

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        if self.applies:
            hashes = set().union(*(getattr(loader, "hashes", set()) for loader in self.loaders))
            headers[CSP] = formgrader_csp(self.nonce, hashes)
        return status_code, headers, chunk


def secure_formgrader(web_app, base_url: str) -> None:
    """Once nbgrader's formgrader is loaded: its pages as SafeFormgradeExporter and
    NoncedLoader render them, under FormgraderCSP."""
    settings = web_app.settings
    loaders = []
    environment = settings.get("nbgrader_jinja2_env")
    if environment is not None:
        loaders.append(nonced(environment))
    exporter = settings.get("nbgrader_exporter")
    if exporter is not None:
        safe = SafeFormgradeExporter(config=exporter.config)
        settings["nbgrader_exporter"] = safe
        loaders.append(safe)
    FormgraderCSP.prefix = base_url.rstrip("/") + "/formgrader"
    FormgraderCSP.loaders = loaders
    web_app.add_transform(FormgraderCSP)
