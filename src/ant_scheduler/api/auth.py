"""Token auth for every route but health and login, the login cookie, and the CSRF rule.

Default deny: the middleware checks every request, so a route added later is protected unless it
is named in PUBLIC_PATHS. A browser gets an HttpOnly cookie derived from the token (never the token
itself); state-changing requests authenticated by that cookie must also carry the X-ANT-CSRF header,
which a cross-site form cannot set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ant_scheduler.core.users import ADMIN, User

if TYPE_CHECKING:
    from ant_scheduler.users import UserBook

COOKIE_NAME = "ant_session"
CSRF_HEADER = "x-ant-csrf"
PUBLIC_PATHS = frozenset({"/api/", "/api", "/api/v1/login", "/api/v1/logout"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def load_or_create_token(state_dir: Path) -> str:
    """ANT_TOKEN if set; else the token file in the state dir, created (mode 0600) on first use.

    An existing token file must be a regular file (not a symlink) of ours that no one else can
    read or write: anything else is refused with how to fix it (ConfigError), since someone who
    can write it chooses the token and someone who can read it has it.
    """
    from_env = os.environ.get("ANT_TOKEN")
    if from_env:
        return from_env
    path = state_dir / "token"
    token = _read_token_file(path)
    if token:
        return token
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # Exclusive create (or rewrite of the empty file checked above), never through a symlink.
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_TRUNC if os.path.lexists(path) else os.O_EXCL
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(token + "\n")
    return token


def _read_token_file(path: Path) -> str | None:
    """The token in `path`, None when the file is missing or empty; ConfigError if it is unsafe."""
    import shlex
    import stat

    from ant_scheduler.core.errors import ConfigError

    shown = os.path.abspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read token file {shown}: {exc.strerror or exc}") from None
    fix = f"delete it (`rm {shlex.quote(shown)}`; a new token is made on start) or set ANT_TOKEN"
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"token file {shown} is a symbolic link; {fix}")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"token file {shown} is not a regular file; {fix}")
    if st.st_uid != os.geteuid():
        raise ConfigError(
            f"token file {shown} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}); "
            "use your own STATE_dir"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"token file {shown} can be read or written by other users (mode {mode:04o}); "
            f"run `chmod 600 {shlex.quote(shown)}`, or {fix} if others may have seen it"
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot read token file {shown}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        opened = os.fstat(f.fileno())
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise ConfigError(f"token file {shown} changed while being read; start again")
        raw = f.read(4096)
    try:
        return raw.decode("utf-8").strip() or None
    except UnicodeDecodeError:
        raise ConfigError(f"token file {shown} is not text; {fix}") from None


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"ant-session-cookie", hashlib.sha256).hexdigest()


def is_public(path: str) -> bool:
    """Health, login, and the web UI's static shell (it holds no data; it shows a login form)."""
    return path in PUBLIC_PATHS or not (path.startswith("/api") or path == "/metrics")


class AuthMiddleware:
    """Who is asking: the admin (the state directory's token, or its cookie) or a named user
    (`users`: their token's hash or cookie, users.py). The user goes to the app in
    scope["state"]["user"] (request.state.user; see `user_of`)."""

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        public_metrics: bool = False,
        users: UserBook | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode()
        self.cookie = cookie_value(token).encode()
        self.public_metrics = public_metrics
        self.users = users

    async def _as(self, user: User, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if is_public(path) or (self.public_metrics and path == "/metrics"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        cookies = [v for k, v in scope.get("headers", []) if k.lower() == b"cookie"]
        auth = headers.get("authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
            if hmac.compare_digest(given, self.token):
                await self._as(ADMIN, scope, receive, send)
                return
            user = self.users.by_token(given) if self.users is not None else None
            if user is not None:
                await self._as(user, scope, receive, send)
                return
        sessions = cookie_values(b"; ".join(cookies), COOKIE_NAME)
        signed_in: User | None = None
        if any([hmac.compare_digest(v, self.cookie) for v in sessions]):  # compare them all
            signed_in = ADMIN
        elif self.users is not None:
            signed_in = next(
                (u for u in map(self.users.by_cookie, sessions) if u is not None), None
            )
        if signed_in is not None:
            if scope["method"] not in SAFE_METHODS and CSRF_HEADER not in headers:
                await deny(send, 403, "csrf_failed", "missing X-ANT-CSRF header")
                return
            await self._as(signed_in, scope, receive, send)
            return
        await deny(send, 401, "unauthorized", "missing or wrong token")


def cookie_values(raw: bytes, name: str) -> list[bytes]:
    """Every value of cookie `name` in a Cookie header, read tolerantly.

    Python's http.cookies gives up on the whole header when any one cookie in it is malformed
    (`zz=a b`, which any page on the same host can set), and that would lock the user out. Here
    each `;`-separated part is split at its first `=`; parts that are not `name=...` are ignored,
    whatever they hold. Browsers send several cookies of one name when paths or hosts differ
    (another service on this host may set its own `ant_session`), so all are returned.
    """
    values = []
    wanted = name.encode("latin-1")
    for part in raw.split(b";"):
        key, sep, value = part.partition(b"=")
        if sep and key.strip() == wanted:
            value = value.strip()
            if len(value) >= 2 and value[:1] == value[-1:] == b'"':
                value = value[1:-1]
            values.append(value)
    return values


async def deny(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands the app a body already read whole, then carries on as before."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413 before the app reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key.lower() == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await deny(send, 413, "payload_too_large", self._message())
                    return
        # Read the whole body first (bodies here are small JSON), so a chunked upload that grows
        # past the limit is refused before the app sees any of it.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await deny(send, 413, "payload_too_large", self._message())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    def _message(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"
