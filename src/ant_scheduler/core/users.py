"""Users: names, tokens kept as hashes, per-user limits, and who may act on which task. Pure.

ANT with no user defined works as it always did: the token of the state directory (or
ANT_TOKEN) is the one admin, named ADMIN_NAME, and every task belongs to it. `ant users add`
adds named users, each with a token of their own; they see every task but act only on their own.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from ant_scheduler.core.errors import DuplicateUser, Forbidden, InvalidQuery

ADMIN_NAME = "admin"  # the token of the state directory; the owner of tasks from before users
NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
NAME_RULE = "1-32 lowercase letters, digits, '_' or '-', starting with a letter or '_'"


@dataclass(frozen=True)
class User:
    name: str
    admin: bool = False
    max_gpus: int | None = None  # GPUs its running tasks may hold at once (None: no limit)
    max_queued: int | None = None  # its tasks in the queue at once (None: no limit)
    created_at: float = 0.0
    token_hash: str = ""  # sha256 hex of the token; the token itself is never kept

    def as_json(self) -> dict[str, object]:
        """wire.UserOut (never the hash)."""
        return {
            "name": self.name,
            "admin": self.admin,
            "max_gpus": self.max_gpus,
            "max_queued": self.max_queued,
            "created_at": self.created_at,
        }


ADMIN = User(ADMIN_NAME, admin=True)


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise InvalidQuery(f"user name {shown!r} is not valid: {NAME_RULE}")
    if name == ADMIN_NAME:
        raise DuplicateUser(f"{ADMIN_NAME!r} is the state directory's token; pick another name")
    return name


def check_limit(name: str, value: int | None) -> int | None:
    if value is not None and not 0 <= value <= 1_000_000:
        raise InvalidQuery(f"{name}: {value} is not between 0 and 1000000")
    return value


def new_token() -> str:
    """256 random bits, URL-safe: guessing one is hopeless, so a plain sha256 suffices."""
    return "ant_" + secrets.token_urlsafe(32)


def hash_token(token: str | bytes) -> str:
    raw = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(raw).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def user_cookie(token_hash: str) -> str:
    """A user's session cookie: derived from its token's hash (the token is not kept), so a new
    token or removing the user ends its sessions too."""
    return hmac.new(token_hash.encode(), b"ant-user-session-cookie", hashlib.sha256).hexdigest()


def may_act(user: User, owner: str) -> bool:
    """An admin acts on every task; a user on their own."""
    return user.admin or user.name == owner


def check_may_act(user: User, owner: str, task_id: str) -> None:
    if not may_act(user, owner):
        raise Forbidden(
            f"task {task_id!r} belongs to {owner}; {user.name} may act only on their own tasks"
        )


def check_admin(user: User, doing: str) -> None:
    if not user.admin:
        raise Forbidden(f"only an admin may {doing}; {user.name} is not one")
