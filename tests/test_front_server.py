"""Full tier: the built server (`node build`) against the real backend and
database (conftest: stack): forms, cookies, CSRF, pagination, an outage,
the security headers on every answer, no off-site redirects, verification
links spent only by the confirming POST, the API told each browser's
address so the login limits count browsers apart, and a session that ends
with its token.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

import pytest

from harness.answers import alias, recorded
from harness import dotenv
from harness.backend import http as api_call, raw_request


# ---------------------------------------------------------------------------
# Full tier: the built server against the real backend and database (conftest: stack)
# ---------------------------------------------------------------------------
class Browser:
    """Just enough of a browser: HTML requests, form POSTs with Origin, one cookie jar."""

    def __init__(self, base_url: str, address: str | None = None):
        """`address`: the loopback address this browser connects from (Linux
        routes all of 127.0.0.0/8 to lo), so that tests can be several clients."""
        self.origin, self.cookies = base_url, {}
        self.netloc = urllib.parse.urlsplit(base_url).netloc
        self.source = (address, 0) if address else None

    def request(self, method: str, path: str, form: dict | None = None, origin: bool = True,
                headers: dict | None = None):
        connection = http.client.HTTPConnection(self.netloc, timeout=30, source_address=self.source)
        headers = {"Accept": "text/html", **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            if origin:
                headers["Origin"] = self.origin
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        html = response.read().decode()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if value and "Max-Age=0" not in cookie:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        connection.close()
        return response.status, response.headers, html


def text(html: str, testid: str) -> str | None:
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(2))).strip() if match else None


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


def user_count(stack) -> int:
    (count,), = stack.db.query("SELECT count(*) FROM personas_usuario", **stack.db.app)
    return count


@pytest.mark.full
def test_home_page_shows_the_real_system_status(stack, giga_project):
    status, _, html = Browser(stack.front_url).request("GET", "/")
    assert status == 200
    assert (text(html, "api-status"), text(html, "db-status")) == ("ok", "ok")
    assert text(html, "system-state") == "All systems operational"
    assert text(html, "user-count") is None, "the public health answer has no user count"
    assert "<title>Giga</title>" in html
    assert stack.api_url.split("//")[1] not in html and alias(recorded(giga_project), "backend") not in html, \
        "the API's address must not reach the browser"


@pytest.mark.full
def test_signup_login_me_users_logout(stack):
    browser, name = Browser(stack.front_url), unique("ada")
    status, headers, _ = browser.request("GET", "/me")
    assert (status, headers["Location"]) == (303, "/login?next=%2Fme")
    status, _, html = browser.request("POST", "/signup", {"username": stack.staff["username"],
                                                          "email": "x@example.com", "password": "Xy-12345-long"})
    assert (status, text(html, "error-username")) == (400, "A user with that username already exists.")
    status, _, html = browser.request("POST", "/signup", {"username": name, "email": "x@example.com",
                                                          "password": "123"})
    assert status == 400
    assert text(html, "error-password"), "the API's password message is shown next to the field"
    assert "123" not in re.findall(r'value="([^"]*)"', html), "a rejected password is not echoed back"
    status, headers, _ = browser.request("POST", "/signup", {"username": name, "email": f"{name}@example.com",
                                                             "password": "Lovelace-1815-xyz"})
    assert (status, headers["Location"]) == (303, "/me")
    cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    status, _, html = browser.request("GET", "/me")
    assert (status, text(html, "me-username")) == (200, name)
    status, _, html = browser.request("GET", "/users")
    assert (status, text(html, "error-status")) == (403, "403")
    token = browser.cookies["session"]
    assert api_call("GET", f"{stack.api_url}/api/auth/me/", token=token)[0] == 200
    status, headers, _ = browser.request("POST", "/logout", {})
    assert (status, headers["Location"]) == (303, "/") and "session" not in browser.cookies
    assert api_call("GET", f"{stack.api_url}/api/auth/me/", token=token)[0] == 401, \
        "logging out revokes the API token"
    status, _, html = browser.request("POST", "/login", {"username": stack.staff["username"], "password": "nope"})
    assert (status, text(html, "error-form")) == (400, "Unable to log in with provided credentials.")


@pytest.mark.full
def test_staff_pages_through_the_users(stack):
    stack.backend.manage("shell", "-c", "from personas.models import Usuario; Usuario.objects.bulk_create("
                         f"[Usuario(username='{unique('bulk')}-' + str(i)) for i in range(25)])", check=True)
    browser = Browser(stack.front_url)
    status, headers, _ = browser.request("POST", "/login?next=%2Fusers",
                                         {"username": stack.staff["username"], "password": stack.staff["password"]})
    assert (status, headers["Location"]) == (303, "/users")
    count = user_count(stack)
    last_page = (count + 19) // 20
    status, _, html = browser.request("GET", "/users")
    assert status == 200 and html.count('data-testid="user-row"') == 20
    assert 'data-testid="page-next"' in html and 'data-testid="page-prev"' not in html
    status, _, html = browser.request("GET", f"/users?page={last_page}")
    assert html.count('data-testid="user-row"') == count - 20 * (last_page - 1)
    assert 'data-testid="page-prev"' in html and 'data-testid="page-next"' not in html


@pytest.mark.full
def test_cross_site_form_posts_are_refused(stack):
    status, _, _ = Browser(stack.front_url).request("POST", "/login", {"username": "x", "password": "x"},
                                                    origin=False)
    assert status == 403


@pytest.mark.full
def test_database_outage_shows_degraded_then_recovers(stack):
    browser = Browser(stack.front_url)
    stack.db.stop()
    try:
        started = time.monotonic()
        status, _, html = browser.request("GET", "/")
        assert (status, text(html, "api-status"), text(html, "db-status")) == (200, "degraded", "unreachable")
        assert text(html, "system-state").startswith("Degraded")
        assert time.monotonic() - started < 15
    finally:
        stack.db.start()
    status, _, html = browser.request("GET", "/")
    assert (text(html, "api-status"), text(html, "db-status")) == ("ok", "ok"), "no restart needed"


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin",
                    "X-Frame-Options": "DENY"}
CSP = {"default-src": "'self'", "frame-ancestors": "'none'", "form-action": "'self'", "base-uri": "'self'",
       "object-src": "'none'"}


def csp_directives(header: str) -> dict[str, str]:
    return {name: value.strip() for name, _, value in
            (part.strip().partition(" ") for part in header.split(";") if part.strip())}


@pytest.mark.full
def test_every_kind_of_answer_carries_the_security_headers(stack):
    """Pages, redirects, failed form posts, error pages and endpoints alike."""
    browser = Browser(stack.front_url)
    answers = {
        "page": browser.request("GET", "/"),
        "redirect to log in": browser.request("GET", "/me"),
        "failed form post": browser.request("POST", "/login", {"username": "", "password": ""}),
        "404 page": browser.request("GET", "/no-such-page"),
        "endpoint": browser.request("GET", "/healthz"),
        "page data": browser.request("GET", "/login/__data.json"),
    }
    assert [status for status, _, _ in answers.values()] == [200, 303, 400, 404, 200, 200]
    for kind, (_, headers, _) in answers.items():
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value, f"{name} on the {kind}"
    for kind in ("page", "failed form post", "404 page"):
        policy = csp_directives(answers[kind][1]["Content-Security-Policy"])
        assert {name: policy.get(name) for name in CSP} == CSP, f"{kind}: {policy}"
        scripts = policy["script-src"].split()
        assert "'unsafe-inline'" not in scripts and any(s.startswith("'nonce-") for s in scripts), policy
        nonce = next(s for s in scripts if s.startswith("'nonce-"))[len("'nonce-"):-1]
        html = answers[kind][2]
        assert html.count("<script") == html.count(f'<script nonce="{nonce}"') >= 1, \
            f"{kind}: every inline script carries the nonce"


# The shapes of open redirects, as a browser would send them in the query
# string: decoded once by SvelteKit, then resolved by the browser against this site.
OFF_SITE_NEXT = {
    "protocol-relative": ["//evil.example/", "%2F%2Fevil.example", "///evil.example"],
    "backslash": ["/%5Cevil.example", "%5C%5Cevil.example", "/%5C/evil.example", "/\\evil.example",
                  "%5C/evil.example"],
    "tab and newlines, dropped by browsers": ["/%09/evil.example/", "/%0A/evil.example", "/%0D%0A/evil.example"],
    # Normalised by the URL parser into a leading `//`: plain, encoded for the query, or encoded once more.
    "dot segments": ["/.//evil.example/", "/..//evil.example", "/%2e//evil.example", "/.%2F%2Fevil.example",
                     "/%252e//evil.example", "/%252E%252E//evil.example", "/./%252e/..//evil.example",
                     "/a/../..//evil.example", "/a/%252e%252e/%252e%252e//evil.example",
                     "/%252e%252f%252fevil.example", "/.%255C/evil.example", "/%252e%2509//evil.example"],
    "double encoding": ["/%252F/evil.example", "/%2509/evil.example", "/%255Cevil.example",
                        "/%25252F%25252Fevil.example"],
    "header injection": ["/me%0D%0ASet-Cookie:%20session=attacker", "/me%00", "/me%0ALocation:%20//evil.example"],
    "absolute URL or scheme": ["https://evil.example/", "http:evil.example", "javascript:alert(1)",
                               "data:text/html,x", "evil.example"],
}


def resolved_path(path: str) -> str:
    """`path`'s dot segments resolved as browsers do (the WHATWG URL standard,
    `%2e` counting as a dot; urllib's urljoin differs)."""
    segments, resolved = path.split("/")[1:], []
    for index, segment in enumerate(segments):
        dots = segment.lower().replace("%2e", ".")
        if dots in {".", ".."}:
            if dots == ".." and resolved:
                resolved.pop()
            if index == len(segments) - 1:
                resolved.append("")
        else:
            resolved.append(segment)
    return "/" + "/".join(resolved)


def stays_on_site(location: str | None) -> bool:
    """`location`, resolved by a browser against a page of this site, stays on
    it and is not protocol-relative: a path with one leading slash, no
    backslash (read as "/"), no control character (dropped), and none once
    its dot segments are resolved either."""
    if not location or not location.startswith("/") or location.startswith("//") or "\\" in location:
        return False
    if re.search(r"[\x00-\x20\x7f]", location):
        return False
    return not resolved_path(re.split(r"[?#]", location, maxsplit=1)[0]).startswith("//")


@pytest.mark.full
def test_login_never_redirects_off_site(stack):
    """The form's redirect after logging in, and the logged-in visit to /login,
    both go to a path on this site whatever `next` holds: never elsewhere, never a 500."""
    credentials = {"username": stack.staff["username"], "password": stack.staff["password"]}
    cases = [(shape, next_) for shape, values in OFF_SITE_NEXT.items() for next_ in values]
    browser = None
    for n, (shape, next_) in enumerate(cases, start=1):
        # Each login from an address of its own: the per-address limit stays out of the way.
        browser = Browser(stack.front_url, f"127.0.3.{n}")
        status, headers, _ = browser.request("POST", f"/login?next={next_}", credentials)
        assert stays_on_site(headers.get("Location")), (shape, next_, status, headers.get("Location"))
        assert (status, headers.get("Location")) == (303, "/me"), f"POST, {shape}: {next_}"
        assert "session" in browser.cookies
    for shape, next_ in cases:
        status, headers, _ = browser.request("GET", f"/login?next={next_}")
        assert stays_on_site(headers.get("Location")), (shape, next_, status, headers.get("Location"))
        assert (status, headers.get("Location")) == (303, "/me"), f"GET, {shape}: {next_}"
    for next_, expected in [("%2Fusers%3Fpage%3D2", "/users?page=2"), ("/me%3Fx=1%23y", "/me?x=1#y"),
                            ("/users/./%2e%2e/me", "/me"), ("/users?page=2", "/users?page=2")]:
        status, headers, _ = browser.request("GET", f"/login?next={next_}")
        assert (status, headers["Location"]) == (303, expected), "a path on this site is kept"
        status, headers, _ = Browser(stack.front_url, "127.0.3.250").request("POST", f"/login?next={next_}",
                                                                             credentials)
        assert (status, headers["Location"]) == (303, expected), "a path on this site is kept"
    # The check itself tells these apart.
    assert all(map(stays_on_site, ("/me", "/users?page=2", "/me?x=1#//y", "/a/.//b", "/a//b")))
    assert not any(map(stays_on_site, ("//evil.example", "/\\evil.example", "/.//evil.example", "/%2E//evil.example",
                                       "/a/../..//evil.example", "/\t/evil.example", "https://evil.example/",
                                       "http:evil.example", None)))


@pytest.mark.full
def test_opening_a_verification_link_verifies_nothing_until_confirmed(stack, smtp):
    """Mail scanners and link previews open links too: a GET of /verify/<key>
    (the page, or its data as a client-side navigation fetches it) leaves the
    address unverified and the link unspent; the page's form POST verifies it, once."""
    name, browser = unique("gina"), Browser(stack.front_url, "127.0.3.251")
    status, _, _ = browser.request("POST", "/signup", {"username": name, "email": f"{name}@example.com",
                                                       "password": "Lovelace-1815-xyz"})
    assert status == 303
    link = smtp.link(smtp.wait_for(f"{name}@example.com", "Verify your email address"), stack.front_url)
    path = urllib.parse.urlsplit(link).path
    assert re.fullmatch(r"/verify/[^/]+", path), link

    def verified() -> bool:
        (state,), = stack.db.query("SELECT email_verified FROM personas_usuario WHERE username = %s",
                                   params=(name,), **stack.db.app)
        return state

    scanner = Browser(stack.front_url, "127.0.3.252")
    for method, url in [("GET", path), ("HEAD", path), ("GET", f"{path}/__data.json"),
                        ("GET", f"{path}/__data.json?x-sveltekit-invalidated=01")]:
        status, _, _ = scanner.request(method, url)
        assert status == 200, (method, url, status)
        assert not verified(), f"{method} {url} verified the address"
    _, _, html = browser.request("GET", path)
    assert text(html, "verify-result") is None
    assert re.search(r'<form method="POST"[^>]*>.*?<button type="submit">Verify my address</button>', html, re.S)

    status, _, html = browser.request("POST", path, {})
    assert (status, text(html, "verify-result")) == (200, f"Your email address {name}@example.com is verified.")
    assert verified()
    status, _, html = browser.request("POST", path, {})
    assert (status, text(html, "verify-result")) == \
        (400, "This verification link is invalid, already used or expired. Ask for a new one.")
    assert browser.request("POST", path, {}, origin=False)[0] == 403, "a cross-site form post is refused"


def per_minute(rate: str) -> int:
    """The number of a DRF-style rate such as `20/min`."""
    number, _, period = rate.partition("/")
    assert period in {"m", "min", "minute"}, rate
    return int(number)


@pytest.mark.full
def test_login_limits_count_each_browser_by_its_own_address(stack, giga_project):
    """SvelteKit's server forwards each browser's address and the backend
    limits logins per address: a browser past its limit gets the API's 429 as
    a form error, another browser is not affected, and a browser cannot take
    on someone else's address by sending X-Forwarded-For itself."""
    limit = per_minute(dotenv.load(giga_project / "back/.env")["DJANGO_RATE_LOGIN_CLIENT"])
    greedy, other, impostor = (Browser(stack.front_url, f"127.0.0.{n}") for n in (21, 22, 23))

    def attempt(browser, **kwargs):
        # A new unknown account each time: only the per-address limit applies.
        status, _, html = browser.request("POST", "/login", {"username": unique("nobody"), "password": "x"}, **kwargs)
        return status, text(html, "error-form")

    refused = (400, "Unable to log in with provided credentials.")
    assert [attempt(greedy) for _ in range(limit)] == [refused] * limit
    status, message = attempt(greedy)
    assert status == 429 and message.startswith("Request was throttled"), (status, message)
    assert attempt(other) == refused, "another browser is limited with the first one"
    assert attempt(impostor, headers={"X-Forwarded-For": "127.0.0.21"}) == refused, \
        "the browser's own X-Forwarded-For reached the backend"


@pytest.mark.full
def test_session_lives_as_long_as_the_token_and_ends_with_it(stack):
    """The cookie's Max-Age follows the token's expiry, and once the API stops accepting the token the visitor is
    logged out: the cookie goes and /me sends them to log in."""
    # An address of its own: the browser tests before it spend 127.0.0.1's logins per minute.
    address = "127.0.0.24"
    browser, credentials = Browser(stack.front_url, address), {k: stack.staff[k] for k in ("username", "password")}
    status, headers, _ = browser.request("POST", "/login", credentials)
    assert status == 303
    cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("session="))
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
    status, _, body = raw_request(stack.api_url, "POST", "/api/auth/login/", json.dumps(credentials).encode(),
                                  [("Content-Type", "application/json")], source=address)
    assert status == 200, (status, body)
    answer = json.loads(body)
    remaining = datetime.fromisoformat(answer["expiry"].replace("Z", "+00:00")) - datetime.now(timezone.utc)
    assert abs(max_age - remaining.total_seconds()) < 60, (max_age, answer["expiry"])

    token = browser.cookies["session"]
    assert api_call("POST", f"{stack.api_url}/api/auth/logout/", token=token)[0] in (200, 204)
    status, headers, _ = browser.request("GET", "/me")
    assert (status, headers["Location"]) == (303, "/login?next=%2Fme")
    assert "session" not in browser.cookies, "the cookie of a revoked token is deleted"
