"""Who may use ``partisim serve``: with a token set, everything but a liveness probe needs it.

Programs (the CLI, scripts) send ``Authorization: Bearer <token>``. The dashboard cannot:
EventSource sends no headers. So the page at ``/`` shows a login form to a browser
without a session; the form POSTs the token once to ``/login``, which answers with a
session cookie (HttpOnly, SameSite=Strict, Secure under TLS, gone when the browser
closes). The token never travels in a URL and is never logged. The cookie holds no
token either: an expiry and its HMAC keyed by the token, so it needs no server-side
store, survives a restart of serve and dies when the token changes. Every comparison
is constant-time (`hmac.compare_digest`).

Anonymous callers get: ``GET /api/health`` -> ``{"status": "ok"}`` (liveness only), the
login page at ``GET /``, 401 JSON under ``/api/`` and at ``/metrics`` (a scraper gets a
clear refusal, not the login page), and a redirect to the login page elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from partisim.listen.guards import FailedAuthLimiter, client_address

__all__ = ["ServeAuth", "SESSION_COOKIE", "SESSION_S", "session_cookie", "valid_session"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "partisim_session"
#: a session cookie is honoured this long after the login (the browser drops it sooner,
#: when it closes)
SESSION_S = 7 * 24 * 3600.0
#: a wrong token at the login form is answered after this pause (slows guessing)
LOGIN_PAUSE_S = 0.5
MAX_LOGIN_BODY = 8192
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _mac(token: bytes, expires: int) -> str:
    return hmac.new(token, f"partisim-session:{expires}".encode(), hashlib.sha256).hexdigest()


def session_cookie(token: str, now: float | None = None) -> str:
    """A session value for ``token``: ``<expiry>.<hmac>``."""
    expires = int((time.time() if now is None else now) + SESSION_S)
    return f"{expires}.{_mac(token.encode(), expires)}"


def valid_session(token: str, value: str, now: float | None = None) -> bool:
    expires_text, _, mac = value.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(mac.encode(), _mac(token.encode(), expires).encode())


def _headers(scope: Scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(bytes(name).lower(), bytes(value))
    return found


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _login_page(error: str | None = None) -> bytes:
    text = resources.files("partisim.serve.web").joinpath("static").joinpath("login.html").read_text(encoding="utf-8")
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return text.replace("<!--error-->", message).encode()


async def _answer(
    send: Send, code: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _json(
    send: Send, code: int, payload: dict[str, str], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _answer(send, code, json.dumps(payload, ensure_ascii=False).encode(), b"application/json", headers)


async def _redirect(send: Send, location: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _answer(send, 303, b"", b"text/plain; charset=utf-8", [(b"location", location), *(headers or [])])


class ServeAuth:
    """ASGI middleware: the token (bearer or session cookie) in front of the whole app."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        *,
        secure_cookie: bool = False,
        limiter: FailedAuthLimiter | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self._token = token.encode() if token else b""
        self.secure_cookie = secure_cookie
        #: wrong tokens (bearer or login form) per client address
        self.limiter = limiter or FailedAuthLimiter()

    def _bearer_ok(self, headers: dict[bytes, bytes]) -> bool | None:
        """True/False for a bearer token given; None when there is none."""
        value = headers.get(b"authorization")
        if value is None:
            return None
        scheme, _, rest = value.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(rest.strip(), self._token)

    def _session_ok(self, headers: dict[bytes, bytes]) -> bool:
        value = _cookie(headers, SESSION_COOKIE)
        return bool(value) and self.token is not None and valid_session(self.token, value or "")

    @staticmethod
    def _same_origin(headers: dict[bytes, bytes]) -> bool:
        """A browser's unsafe request must come from this server's own page."""
        origin = headers.get(b"origin")
        if origin is None:
            return True
        return urlsplit(origin.decode("latin-1")).netloc.encode() == headers.get(b"host", b"")

    def _cookie_header(self, value: str, *, clear: bool = False) -> tuple[bytes, bytes]:
        parts = [f"{SESSION_COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if clear:
            parts.append("Max-Age=0")
        if self.secure_cookie:
            parts.append("Secure")
        return (b"set-cookie", "; ".join(parts).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        headers = _headers(scope)
        if path == "/login" and method == "POST":
            await self._login(scope, receive, send, headers)
            return
        if path == "/logout":
            await _redirect(send, b"/", [self._cookie_header("", clear=True)])
            return
        address = client_address(scope)
        wait = self.limiter.retry_after(address)
        if wait > 0 and b"authorization" in headers:
            await self.limiter.refuse(send, wait)  # out of attempts: not even compared
            return
        bearer = self._bearer_ok(headers)
        if bearer is False:
            self.limiter.failed(address)
        if bearer is True or (bearer is None and self._session_ok(headers)):
            if bearer is None and method not in _SAFE_METHODS and not self._same_origin(headers):
                await _json(send, 403, {"status": "forbidden", "error": "petición de otro origen rechazada"})
                return
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, given=bearer is not None)

    async def _refuse(self, scope: Scope, send: Send, *, given: bool) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/api/health" and method in _SAFE_METHODS:
            await _json(send, 200, {"status": "ok"})  # liveness, nothing more
        elif path == "/" and method in _SAFE_METHODS:
            await _answer(send, 200, _login_page(), b"text/html; charset=utf-8")
        elif path.startswith("/api/") or path in ("/openapi.json", "/metrics") or method not in _SAFE_METHODS:
            message = (
                "token incorrecto en Authorization: Bearer"
                if given
                else "se necesita el token de partisim serve: cabecera Authorization: Bearer <token> "
                "(partisim lo toma de PARTISIM_TOKEN o --token-file)"
            )
            await _json(send, 401, {"status": "unauthorized", "error": message}, [(b"www-authenticate", b"Bearer")])
        else:
            await _redirect(send, b"/")

    async def _login_limited(self, send: Send, address: str) -> bool:
        """Answer 429 (the login page, with Retry-After) when ``address`` is out of attempts."""
        wait = self.limiter.retry_after(address)
        if wait <= 0:
            return False
        page = _login_page(self.limiter.message(wait).capitalize() + ".")
        retry = [(b"retry-after", str(math.ceil(wait)).encode())]
        await _answer(send, 429, page, b"text/html; charset=utf-8", retry)
        return True

    async def _login(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        if not self._same_origin(headers):
            await _json(send, 403, {"status": "forbidden", "error": "petición de otro origen rechazada"})
            return
        address = client_address(scope)
        if await self._login_limited(send, address):
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_LOGIN_BODY:
                await _answer(send, 413, _login_page("El formulario es demasiado grande."), b"text/html; charset=utf-8")
                return
            if not message.get("more_body", False):
                break
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
        given = (fields.get("token") or [""])[0].strip().encode()
        # Asked again after the body's awaits: a burst of logins sent together all passed
        # the first check before any of them had failed.
        if given and await self._login_limited(send, address):
            return
        if given and hmac.compare_digest(given, self._token):
            assert self.token is not None
            await _redirect(send, b"/", [self._cookie_header(session_cookie(self.token))])
            return
        if given:
            self.limiter.failed(address)
        await asyncio.sleep(LOGIN_PAUSE_S)
        text = "Token incorrecto." if given else "Escriba el token."
        await _answer(send, 401, _login_page(text), b"text/html; charset=utf-8")
