"""The assignment picker, the tool's side: LTI Deep Linking 2.0's request checked as
strictly as a launch, its answer's claims and signature; LTI 1.1 Content-Item's request and
its signed answer; the sealed picker state, the return URL bound to the LMS, and the course
catalog the picker offers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import jwt
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from learnhub import assignment_picker as picker
from learnhub.courses.catalog import course_catalog
from learnhub.errors import LaunchError
from learnhub.lti11 import content_item as ci
from learnhub.lti11.validator import expected_signature, validate_launch
from learnhub.lti13 import constants as c
from learnhub.lti13 import deep_linking as dl
from learnhub.lti13.handlers import identity_from_claims
from learnhub.lti13.keys import new_private_pem, public_jwk
from learnhub.lti13.validator import check_claims

REPO = Path(__file__).resolve().parents[2]
LAUNCH = "https://hub.example/hub/lti13/launch"
RETURN = "https://lms.example/deep_link_return?x=1"
KEY = b"k" * 32


def settings(**changes):
    made = {
        "deep_link_return_url": RETURN,
        "accept_types": ["link", "ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe", "window"],
        "accept_multiple": True,
        "data": "opaque-7",
    }
    made.update(changes)
    return {k: v for k, v in made.items() if v is not ...}


def request_claims(**changes):
    made = {
        "iss": "https://lms.example",
        "aud": "tool-1",
        "sub": "teacher-1",
        "nonce": "n-1",
        c.VERSION: "1.3.0",
        c.MESSAGE_TYPE: c.DEEP_LINKING_REQUEST,
        c.DEPLOYMENT_ID: "d-1",
        c.ROLES: ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        c.CONTEXT: {"id": "ctx-1", "title": "Python 101"},
        c.TARGET_LINK_URI: LAUNCH,
        c.DL_SETTINGS: settings(),
    }
    made.update(changes)
    return {k: v for k, v in made.items() if v is not ...}


def check(claims):
    check_claims(
        claims, client_id="tool-1", nonce="n-1", deployment_ids=["d-1"], target_link_uri=LAUNCH
    )


def test_a_deep_linking_request_needs_no_resource_link():
    claims = request_claims()
    check(claims)
    identity = identity_from_claims(claims, lambda platform, context: f"c-{context}")
    assert identity.course.id == "c-ctx-1"
    # Nothing of a link to keep for grades: the request came from none.
    assert "resource_link" not in identity.launch_claims


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({c.DL_SETTINGS: ...}, "no deep_linking_settings claim"),
        ({c.DL_SETTINGS: "yes"}, "no deep_linking_settings claim"),
        ({c.DL_SETTINGS: settings(deep_link_return_url=...)}, "no deep_link_return_url"),
        ({c.DL_SETTINGS: settings(deep_link_return_url="javascript:alert(1)")},
         "no deep_link_return_url"),
        ({c.DL_SETTINGS: settings(accept_types=...)}, "no accept_types"),
        ({c.DL_SETTINGS: settings(accept_types=["file", "html"])},
         "does not accept LTI resource links"),
        ({c.DL_SETTINGS: settings(accept_presentation_document_targets=...)},
         "no accept_presentation_document_targets"),
        ({c.TARGET_LINK_URI: "https://hub.example/elsewhere"}, "target_link_uri differs"),
        ({c.ROLES: ...}, "no roles claim"),
        ({c.DEPLOYMENT_ID: "d-2"}, "is not registered"),
        ({c.MESSAGE_TYPE: "LtiSubmissionReviewRequest"}, "Unsupported LTI message type"),
        ({c.VERSION: "1.1"}, "Unsupported LTI version"),
    ],
)  # fmt: skip
def test_a_bad_deep_linking_request_is_refused_with_its_reason(changes, message):
    with pytest.raises(LaunchError) as refused:
        check(request_claims(**changes))
    assert message in refused.value.message


def test_a_resource_link_launch_still_needs_its_link():
    claims = request_claims(**{c.MESSAGE_TYPE: c.RESOURCE_LINK_REQUEST, c.DL_SETTINGS: ...})
    with pytest.raises(LaunchError, match="no resource_link id"):
        check(claims)


def platform(**changes):
    made = {
        "id": 3, "issuer": "https://lms.example", "client_id": "tool-1",
        "auth_url": "https://sso.lms.example/auth", "frame_origin": "https://school.lms.example",
    }  # fmt: skip
    made.update(changes)
    return SimpleNamespace(**made)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://lms.example/courses/1/deep_linking_response", True),
        ("https://sso.lms.example/return", True),
        ("https://school.lms.example/courses/9/dl", True),
        ("https://lms.example.evil.test/return", False),
        ("http://lms.example/return", False),
        ("https://lms.example:444/return", False),
        ("https://attacker.test/collect", False),
    ],
)
def test_the_answer_goes_only_to_the_platform_that_asked(url, allowed):
    origins = dl.platform_origins(platform())
    if allowed:
        picker.check_return_url(url, origins)
    else:
        with pytest.raises(LaunchError, match="is not this LMS"):
            picker.check_return_url(url, origins)


def test_an_issuer_that_is_no_url_adds_no_origin():
    assert dl.platform_origins(platform(issuer="canvas", frame_origin=None)) == {
        "https://sso.lms.example"
    }


CATALOG = [
    {"name": "ps01", "title": "Problem set 1", "points": 10.0, "released": True},
    {"name": "ps02", "title": "Problem set 2", "points": 0.0, "released": False},
]


def state_of(claims=None, catalog=CATALOG):
    course = SimpleNamespace(id="cabcdefghijk", title="Python 101")
    return dl.picker_state(
        claims or request_claims(), platform=platform(), course=course, username="lteacher",
        catalog=catalog,
    )  # fmt: skip


def test_picker_state_takes_the_requests_settings_and_the_specs_defaults():
    state = state_of()
    assert (state.return_url, state.data, state.lti_version) == (RETURN, "opaque-7", "1.3")
    assert state.recipient == {
        "platform_id": 3, "issuer": "https://lms.example", "client_id": "tool-1",
        "deployment_id": "d-1",
    }  # fmt: skip
    assert state.accept_multiple and state.accept_lineitem and state.has_data
    bare = state_of(
        request_claims(
            **{c.DL_SETTINGS: settings(accept_multiple=..., data=..., accept_lineitem=...)}
        )
    )
    # Deep Linking's defaults: one item only, line items accepted, no data to echo.
    assert not bare.accept_multiple and bare.accept_lineitem and not bare.has_data
    no_columns = state_of(request_claims(**{c.DL_SETTINGS: settings(accept_lineitem=False)}))
    assert not no_columns.accept_lineitem


def test_the_sealed_state_opens_intact_until_it_expires():
    state = state_of()
    sealed = picker.seal(state, KEY, now=1000)
    assert "opaque-7" not in sealed and "Problem set" not in sealed  # encrypted, not signed
    assert picker.unseal(sealed, KEY, lifetime=1800, now=2000) == state
    with pytest.raises(LaunchError, match="expired or was altered"):
        picker.unseal(sealed, KEY, lifetime=1800, now=1000 + 1801)
    with pytest.raises(LaunchError, match="expired or was altered"):
        picker.unseal(sealed, b"o" * 32, lifetime=1800, now=2000)
    tampered = sealed[:40] + ("A" if sealed[40] != "A" else "B") + sealed[41:]
    with pytest.raises(LaunchError, match="expired or was altered"):
        picker.unseal(tampered, KEY, lifetime=1800, now=2000)


def test_choose_keeps_the_pickers_order_and_refuses_what_it_did_not_offer():
    state = state_of()
    assert picker.choose(state, ["ps02", "ps01"]) == ["ps01", "ps02"]
    with pytest.raises(LaunchError, match="'ps99' is not an assignment of this course"):
        picker.choose(state, ["ps01", "ps99"])
    with pytest.raises(LaunchError, match="Pick at least one"):
        picker.choose(state, [])
    single = state_of(request_claims(**{c.DL_SETTINGS: settings(accept_multiple=False)}))
    assert picker.choose(single, ["ps01"]) == ["ps01"]
    with pytest.raises(LaunchError, match="pick one assignment"):
        picker.choose(single, ["ps01", "ps02"])


def test_content_items_carry_the_assignment_and_a_column_worth_its_points():
    graded = dl.content_item("ps01", CATALOG[0], launch_url=LAUNCH, accept_lineitem=True)
    assert graded == {
        "type": "ltiResourceLink",
        "title": "Problem set 1",
        "text": "LearnHub assignment ps01: 10 points",
        "url": LAUNCH,
        "custom": {"assignment": "ps01"},
        "lineItem": {
            "scoreMaximum": 10.0, "label": "Problem set 1", "resourceId": "ps01",
            "tag": "learnhub",
        },
    }  # fmt: skip
    # No column for an assignment worth nothing (AGS needs scoreMaximum > 0), nor where
    # the LMS takes no line items.
    assert "lineItem" not in dl.content_item(
        "ps02", CATALOG[1], launch_url=LAUNCH, accept_lineitem=True
    )
    assert "lineItem" not in dl.content_item(
        "ps01", CATALOG[0], launch_url=LAUNCH, accept_lineitem=False
    )


def test_the_answer_is_signed_by_the_tool_for_the_platform():
    pem = new_private_pem()
    state = state_of()
    items = [dl.content_item("ps01", CATALOG[0], launch_url=LAUNCH, accept_lineitem=True)]
    token = dl.sign(dl.response_claims(state, items, now=5000), kid="k1", private_pem=pem)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": "k1", "typ": "JWT"}
    key = jwt.PyJWK(public_jwk("k1", pem)).key
    # As a platform verifies it: its own issuer is the audience, the tool's client id the
    # issuer (checked at the time it was made).
    claims = jwt.decode(
        token, key, algorithms=["RS256"], audience="https://lms.example", issuer="tool-1",
        options={"verify_exp": False, "verify_iat": False},
    )  # fmt: skip
    assert claims[c.MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert claims[c.VERSION] == "1.3.0" and claims[c.DEPLOYMENT_ID] == "d-1"
    assert claims[c.DL_DATA] == "opaque-7" and claims[c.DL_CONTENT_ITEMS] == items
    assert claims["exp"] - claims["iat"] == dl.RESPONSE_LIFETIME and claims["nonce"]
    assert claims[c.DL_MESSAGE] == "Added 1 LearnHub assignment"
    nothing = dl.response_claims(state_of(request_claims(**{c.DL_SETTINGS: settings(data=...)})),
                                 [], now=5000)  # fmt: skip
    assert nothing[c.DL_CONTENT_ITEMS] == [] and c.DL_DATA not in nothing
    assert dl.response_claims(state, [], now=5000)["nonce"] != nothing["nonce"]


def notebook(title: str | None, *points: float):
    cells = [new_markdown_cell(f"# {title}\n\nIntro.")] if title else []
    for n, value in enumerate(points):
        grade = {"grade": True, "points": value, "grade_id": f"t{n}", "solution": False}
        cells.append(new_code_cell("assert True", metadata={"nbgrader": grade}))
    cells.append(new_code_cell("x = 1", metadata={"nbgrader": {"grade": False, "points": 99}}))
    return new_notebook(cells=cells)


def test_the_catalog_offers_sources_and_releases_with_their_points(tmp_path):
    course, outbound = tmp_path / "course", tmp_path / "exchange" / "outbound"
    for folder, name, nb in [
        (course / "source", "ps1", notebook("Loops", 2, 3)),
        (course / "source", "ps1", notebook("Second part", 1.5)),
        (course / "source", "draft", notebook(None, 4)),
        (outbound, "ps1", notebook("Loops", 2, 3)),
        (outbound, "old", notebook("Released long ago", 7)),
    ]:
        (folder / name).mkdir(parents=True, exist_ok=True)
        index = len(list((folder / name).glob("*.ipynb")))
        nbformat.write(nb, folder / name / f"part{index}.ipynb")
    (course / "source" / "broken").mkdir()
    (course / "source" / "broken" / "broken.ipynb").write_text("{not json")
    (course / "source" / ".hidden").mkdir()
    (course / "source" / "notes.txt").write_text("not an assignment")
    catalog = {e.name: e for e in course_catalog(course, outbound)}
    assert list(catalog) == ["broken", "draft", "old", "ps1"]
    assert (catalog["ps1"].title, catalog["ps1"].points, catalog["ps1"].notebooks) == (
        "Loops", 6.5, 2,
    )  # fmt: skip
    assert catalog["ps1"].released and not catalog["draft"].released
    assert (catalog["draft"].title, catalog["draft"].points) == ("draft", 4.0)
    assert (catalog["old"].title, catalog["old"].points, catalog["old"].released) == (
        "Released long ago", 7.0, True,
    )  # fmt: skip
    assert catalog["broken"].points == 0 and "broken.ipynb cannot be read" in (
        catalog["broken"].problem
    )
    assert json.loads(json.dumps(catalog["ps1"].as_json()))["points"] == 6.5


def test_the_demo_course_is_offered_with_the_titles_its_notebooks_give(tmp_path):
    shutil.copytree(REPO / "assignments" / "source", tmp_path / "source")
    catalog = course_catalog(tmp_path, tmp_path / "outbound")
    assert len(catalog) == 8
    first = catalog[0]
    assert (first.name, first.points, first.released) == ("ps01-expressions", 10.0, False)
    assert first.title == "Problem set 1: Variables, expressions and statements"


# ---------------------------------------------------------------- LTI 1.1 Content-Item

LTI11_LAUNCH = "https://hub.example/hub/lti11/launch"
CI_RETURN = "https://lms.example/content_item_return"


def ci_request(**changes):
    made = {
        "lti_message_type": "ContentItemSelectionRequest",
        "lti_version": "LTI-1p0",
        "user_id": "teacher-1",
        "roles": "Instructor",
        "context_id": "ctx-1",
        "context_title": "Python 101",
        "accept_media_types": "application/vnd.ims.lti.v1.ltilink",
        "accept_presentation_document_targets": "iframe,window",
        "accept_multiple": "true",
        "content_item_return_url": CI_RETURN,
        "data": "opaque-11",
    }
    made.update(changes)
    return {k: v for k, v in made.items() if v is not ...}


SECRET = "s3cret"  # the test consumer's


def signed(url, fields):
    """`fields` signed as the test consumer signs its requests."""
    return ci.sign(url, fields, consumer_key="lms-1", secret=SECRET, nonce="n-1", timestamp="1000")


def validate(params, now=1000.0):
    consumer = SimpleNamespace(key="lms-1", secret=SECRET, frame_origin=None)
    return validate_launch(
        method="POST", url=LTI11_LAUNCH, params=list(params.items()),
        find_consumer=lambda key: consumer if key == "lms-1" else None,
        use_nonce=lambda *args: True, window=300, now=now,
    )  # fmt: skip


def test_a_content_item_request_is_validated_as_a_launch_without_a_link():
    values = validate(signed(LTI11_LAUNCH, ci_request()))
    ci.check_request(values)
    assert values["content_item_return_url"] == CI_RETURN
    # A basic launch still needs its link; any other message type is refused.
    launch = ci_request(lti_message_type="basic-lti-launch-request")
    with pytest.raises(LaunchError, match="missing resource_link_id"):
        validate(signed(LTI11_LAUNCH, launch))
    with pytest.raises(LaunchError, match="Unsupported lti_message_type"):
        validate(signed(LTI11_LAUNCH, ci_request(lti_message_type="ToolProxyRegistrationRequest")))
    with pytest.raises(LaunchError, match="Invalid OAuth signature"):
        validate({**signed(LTI11_LAUNCH, ci_request()), "content_item_return_url": RETURN})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"content_item_return_url": ...}, "no content_item_return_url"),
        ({"content_item_return_url": "javascript:alert(1)"}, "no content_item_return_url"),
        ({"accept_media_types": ...}, "no accept_media_types"),
        ({"accept_media_types": "image/*,text/html"}, "does not accept LTI links"),
        ({"accept_presentation_document_targets": " "}, "no accept_presentation_document_targets"),
    ],
)
def test_a_bad_content_item_request_is_refused_with_its_reason(changes, message):
    with pytest.raises(LaunchError, match=message):
        ci.check_request(ci_request(**changes))


def test_any_media_type_accepts_links():
    ci.check_request(ci_request(accept_media_types="image/png, */*"))
    ci.check_request(ci_request(accept_media_types="application/*"))


def test_the_answer_goes_where_the_consumer_may_frame_learnhub_from():
    framed = SimpleNamespace(frame_origin="https://lms.example")
    picker.check_return_url(CI_RETURN, ci.return_origins(framed))
    with pytest.raises(LaunchError, match="is not this LMS"):
        picker.check_return_url("https://attacker.test/ci", ci.return_origins(framed))
    assert ci.return_origins(SimpleNamespace(frame_origin=None)) is None


def ci_state(values=None):
    course = SimpleNamespace(id="cabcdefghijk", title="Python 101")
    return ci.picker_state(
        values or ci_request(), consumer_key="lms-1", course=course, username="lteacher",
        catalog=CATALOG,
    )  # fmt: skip


def test_the_content_item_answer_is_signed_with_the_consumers_secret():
    state = ci_state()
    assert (state.lti_version, state.recipient, state.accept_multiple) == (
        "1.1", {"consumer_key": "lms-1"}, True,
    )  # fmt: skip
    assert not ci_state(ci_request(accept_multiple=...)).accept_multiple
    fields = ci.answer_fields(state, ["ps01", "ps02"], launch_url=LTI11_LAUNCH, secret=SECRET)
    assert fields["lti_message_type"] == "ContentItemSelection"
    assert (fields["lti_version"], fields["data"]) == ("LTI-1p0", "opaque-11")
    assert fields["lti_msg"] == "Added 2 LearnHub assignments"
    assert (fields["oauth_consumer_key"], fields["oauth_callback"]) == ("lms-1", "about:blank")
    # The consumer verifies it for its own return URL with its secret, and nothing else.
    params = list(fields.items())
    assert expected_signature("POST", CI_RETURN, params, SECRET) == fields["oauth_signature"]
    assert expected_signature("POST", CI_RETURN, params, "other") != fields["oauth_signature"]
    graph = json.loads(fields["content_items"])
    assert graph["@context"] == "http://purl.imsglobal.org/ctx/lti/v1/ContentItem"
    first, second = graph["@graph"]
    assert first == {
        "@type": "LtiLinkItem",
        "mediaType": "application/vnd.ims.lti.v1.ltilink",
        "title": "Problem set 1",
        "text": "LearnHub assignment ps01: 10 points",
        "url": LTI11_LAUNCH,
        "custom": {"assignment": "ps01"},
        "lineItem": {
            "@type": "LineItem", "label": "Problem set 1", "reportingMethod": "res:totalScore",
            "assignedActivity": {"@id": f"{LTI11_LAUNCH}#ps01", "activityId": "ps01"},
            "scoreConstraints": {
                "@type": "NumericLimits", "normalMaximum": 10.0, "totalMaximum": 10.0,
            },
        },
    }  # fmt: skip
    assert "lineItem" not in second  # worth no points: no column
    cancelled = ci.answer_fields(
        ci_state(ci_request(data=...)), [], launch_url=LTI11_LAUNCH, secret=SECRET
    )
    assert json.loads(cancelled["content_items"])["@graph"] == [] and "data" not in cancelled
