"""The demo LMS's HTML pages: course page with platform storage, autosubmit, gradebook, returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import tornado.template

from .selection import CourseLink

_AUTOSUBMIT_PAGE = tornado.template.Template(
    """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ title }}</title></head>
<body>
<form id="autosubmit" method="post" action="{{ action }}">
{% for name, value in fields.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% end %}<p>{{ title }}</p>
<button type="submit">Continue</button>
</form>
<script>
// A field named "submit" would shadow form.submit(), so call the prototype's.
HTMLFormElement.prototype.submit.call(document.getElementById("autosubmit"));
</script>
</body>
</html>
""",
    name="autosubmit.html",
)


def autosubmit_form_html(action: str, fields: Mapping[str, str], *, title: str) -> str:
    """A page that POSTs `fields` to `action` at once, with a button for clients without JS."""
    return _AUTOSUBMIT_PAGE.generate(action=action, fields=fields, title=title).decode()


# The storage half of the page follows 1EdTech's "LTI Client Side postMessages" and
# "Platform Storage": the tool in the iframe keeps its OIDC state and nonce here
# when its own cookies are blocked.
_COURSE_PAGE = tornado.template.Template(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ course_title }} · LearnHub demo LMS</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1rem 2rem; }
fieldset { display: inline-block; margin: 0 1rem 1rem 0; }
form { display: inline; }
iframe { width: 100%; height: 75vh; border: 1px solid #888; }
</style>
</head>
<body>
<header>
<h1>{{ course_title }}</h1>
<p>This page plays the LMS. Pick a role to open the course's notebooks, framed below
by this other site the way Canvas or Moodle frame a tool.
<a href="/gradebook">Gradebook</a> · <a href="/admin/register-tool">Register a tool by URL
(administrator)</a></p>
</header>
<main>
{% for version, label in (("lti13", "LTI 1.3"), ("lti11", "LTI 1.1")) %}<fieldset>
<legend>{{ label }}</legend>
{% for role in ("learner", "instructor") %}
<form method="get" action="/launch{{ version[3:] }}" target="tool">
<input type="hidden" name="user" value="demo-{{ role }}">
<input type="hidden" name="role" value="{{ role }}">
<input type="hidden" name="course" value="{{ course_id }}">
<button type="submit">Launch as {{ role }} ({{ label }})</button>
<input name="assignment" size="16" placeholder="assignment link"
 aria-label="Assignment (the link's custom parameter assignment=, optional)">
</form>
{% end %}</fieldset>
{% end %}<fieldset>
<legend>Assignment links</legend>
{% for route, label in (("/deeplink13", "LTI 1.3 deep linking"),
                        ("/contentitem11", "LTI 1.1 Content-Item")) %}
<form method="get" action="{{ route }}" target="tool">
<input type="hidden" name="user" value="demo-instructor">
<input type="hidden" name="role" value="instructor">
<input type="hidden" name="course" value="{{ course_id }}">
<button type="submit">Add assignment links ({{ label }})</button>
</form>
{% end %}{% if links %}<ul id="links">
{% for link, column in links %}<li data-link="{{ link.id }}">
<span class="title">{{ link.title }}</span> ({{ column or "no column" }})
{% for role in ("learner", "instructor") %}<form method="get"
 action="/launch{{ link.lti_version.replace('.', '') }}" target="tool">
<input type="hidden" name="link" value="{{ link.id }}">
<input type="hidden" name="role" value="{{ role }}">
<input type="hidden" name="user" value="demo-{{ role }}">
<input type="hidden" name="course" value="{{ course_id }}">
<button type="submit">Launch as {{ role }}</button>
</form>
{% end %}</li>
{% end %}</ul>{% else %}<p id="no-links">None yet: an instructor adds them by deep linking.</p>
{% end %}</fieldset>
<iframe name="tool" title="{{ course_title }}: LearnHub" src="about:blank"
 allow="clipboard-read; clipboard-write; fullscreen"></iframe>
</main>
<script id="lti-platform-storage">
(function () {
  "use strict";
  // Storage belongs to the framed tool only; any other sender is ignored, not answered.
  const toolOrigins = new Set({% raw json_encode(sorted(tool_origins)) %});
  const stores = new Map();
  // "_parent": the storage lives in this page, the tool frame's parent, not in a frame of its own.
  const supportedMessages = [
    {subject: "lti.capabilities"},
    {subject: "lti.put_data", frame: "_parent"},
    {subject: "lti.get_data", frame: "_parent"},
  ];

  function answer(event, fields) {
    const reply = {subject: event.data.subject + ".response", message_id: event.data.message_id};
    event.source.postMessage(Object.assign(reply, fields), event.origin);
  }

  function refuse(event, code, message) {
    answer(event, {error: {code: code, message: message}});
  }

  window.addEventListener("message", function (event) {
    const data = event.data;
    if (!data || typeof data !== "object" || typeof data.subject !== "string" || !event.source) {
      return;
    }
    if (!toolOrigins.has(event.origin)) {
      console.warn("LTI storage: ignoring " + data.subject + " from " + event.origin);
      return;
    }
    if (!stores.has(event.origin)) {
      stores.set(event.origin, new Map());
    }
    const store = stores.get(event.origin);
    switch (data.subject) {
      case "lti.capabilities":
        return answer(event, {supported_messages: supportedMessages});
      case "lti.put_data":
        if (typeof data.key !== "string" || data.key === "") {
          return refuse(event, "bad_request", "lti.put_data needs a key");
        }
        if (data.value === undefined) {
          return refuse(event, "bad_request", "lti.put_data needs a value");
        }
        store.set(data.key, data.value);
        return answer(event, {key: data.key, value: data.value});
      case "lti.get_data":
        if (typeof data.key !== "string" || data.key === "") {
          return refuse(event, "bad_request", "lti.get_data needs a key");
        }
        const value = store.has(data.key) ? store.get(data.key) : null;
        return answer(event, {key: data.key, value: value});
      default:
        if (data.subject.endsWith(".response")) {
          return;  // answering an answer could start a ping-pong between frames
        }
        return refuse(event, "unsupported_subject", "unsupported subject " + data.subject);
    }
  });
})();
</script>
</body>
</html>
""",
    name="course.html",
)


def course_page_html(
    *,
    course_id: str,
    course_title: str,
    tool_origins: Iterable[str],
    links: Iterable[tuple[CourseLink, str | None]],
) -> str:
    """The demo course page: launch buttons, the `links` made by deep linking or Content-Item
    (each with its column's label, or None), the tool's iframe, and platform storage."""
    return _COURSE_PAGE.generate(
        course_id=course_id,
        course_title=course_title,
        tool_origins=set(tool_origins),
        links=list(links),
    ).decode()


_GRADEBOOK_PAGE = tornado.template.Template(
    """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Gradebook · LearnHub demo LMS</title>
<style>body { font-family: system-ui, sans-serif; margin: 1rem 2rem; }
table { border-collapse: collapse; } th, td { border: 1px solid #888; padding: .3rem .6rem; }
</style></head>
<body>
<h1>Gradebook</h1>
{% if rows %}<table id="gradebook">
<thead><tr><th>Course</th><th>Learner</th><th>Column</th><th>Score</th><th>Out of</th>
<th>Progress</th><th>Via</th><th>Received</th></tr></thead>
<tbody>
{% for row in rows %}<tr data-course="{{ row['course'] }}" data-user="{{ row['user_id'] }}"
 data-column="{{ row['column'] }}">
<td>{{ row['course'] }}</td><td>{{ row['user_id'] }}</td><td>{{ row['column'] }}</td>
<td class="score">{{ row['score'] }}</td><td>{{ row['out_of'] }}</td>
<td>{{ row['progress'] }}</td><td>{{ row['via'] }}</td><td>{{ row['received'] }}</td></tr>
{% end %}</tbody>
</table>{% else %}<p id="empty">No grades yet.</p>{% end %}
</body>
</html>
""",
    name="gradebook.html",
)


def gradebook_html(rows: list[dict]) -> str:
    return _GRADEBOOK_PAGE.generate(rows=rows).decode()


_DEEP_LINK_RETURN_PAGE = tornado.template.Template(
    """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Deep linking · LearnHub demo LMS</title>
<style>body { font-family: system-ui, sans-serif; margin: 1rem 2rem; }</style></head>
<body>
{% if links %}<h1>Added {{ len(links) }} link{{ "s" if len(links) > 1 else "" }}
 to {{ course_title }}</h1>
<ul id="added">
{% for link in links %}<li>{{ link.title }}</li>
{% end %}</ul>
{% else %}<h1>No links added to {{ course_title }}</h1>
<p>The tool sent no content items: the selection was cancelled.</p>
{% end %}{% for note in notes %}<p class="tool-message">{{ note }}</p>
{% end %}<p><a href="/course" target="_top">Back to the course</a></p>
</body>
</html>
""",
    name="deep_link_return.html",
)


def deep_link_return_html(
    *, course_title: str, links: list[CourseLink], notes: Iterable[str]
) -> str:
    """The page the tool's frame shows once the LMS has taken a response: the links made and
    the tool's own messages to the instructor (`notes`)."""
    return _DEEP_LINK_RETURN_PAGE.generate(
        course_title=course_title, links=links, notes=list(notes)
    ).decode()
