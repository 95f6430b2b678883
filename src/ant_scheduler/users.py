"""The named users (`ant users add alice`): kept in the store's `users` table, with the sha256 of
each token (a token is shown once, when it is made), and in memory for the auth middleware, which
looks every request's token up here (a dict of hashes: O(1), the hash compared in constant time).

Without any user, ANT is as it was: the state directory's token is the admin (core/users.py).
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Callable

from ant_scheduler.core.errors import InvalidQuery, UserNotFound
from ant_scheduler.core.users import (
    ADMIN,
    ADMIN_NAME,
    User,
    check_limit,
    check_name,
    hash_token,
    new_token,
    same_hash,
    user_cookie,
)
from ant_scheduler.store import Store

UNSET = object()  # `set` leaves a field as it is


class UserBook:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._by_name: dict[str, User] = {}
        self._by_hash: dict[str, User] = {}
        self._by_cookie: dict[bytes, User] = {}

    def load(self) -> None:
        self._index(self.store.users())

    def _index(self, users: list[User]) -> None:
        self._by_name = {u.name: u for u in users}
        self._by_hash = {u.token_hash: u for u in users}
        self._by_cookie = {user_cookie(u.token_hash).encode(): u for u in users}

    def list(self) -> list[User]:
        return [ADMIN, *sorted(self._by_name.values(), key=lambda u: u.name)]

    def get(self, name: str) -> User:
        if name == ADMIN_NAME:
            return ADMIN
        user = self._by_name.get(name)
        if user is None:
            raise UserNotFound(f"no user named {name!r}")
        return user

    def by_token(self, token: bytes) -> User | None:
        """The user whose token this is, None if nobody's (the admin token is checked apart)."""
        if not self._by_hash:
            return None
        digest = hash_token(token)
        user = self._by_hash.get(digest)
        if user is None or not same_hash(user.token_hash, digest):
            return None
        return user

    def by_cookie(self, value: bytes) -> User | None:
        """The user whose session cookie this is (core/users.py user_cookie), None if nobody's."""
        user = self._by_cookie.get(value)
        if user is None:
            return None
        expected = user_cookie(user.token_hash).encode()
        return user if hmac.compare_digest(expected, value) else None

    def limits(self) -> dict[str, int]:
        """owner -> max_gpus, for the users that have one."""
        return {u.name: u.max_gpus for u in self._by_name.values() if u.max_gpus is not None}

    def has_users(self) -> bool:
        return bool(self._by_name)

    def add(
        self,
        name: str,
        *,
        admin: bool = False,
        max_gpus: int | None = None,
        max_queued: int | None = None,
    ) -> tuple[User, str]:
        """A new user and its token (shown once: only its hash is kept)."""
        token = new_token()
        user = User(
            check_name(name),
            admin=admin,
            max_gpus=check_limit("max_gpus", max_gpus),
            max_queued=check_limit("max_queued", max_queued),
            created_at=self.clock(),
            token_hash=hash_token(token),
        )
        self.store.add_user(user)
        self._index([*self._by_name.values(), user])
        return user, token

    def set(
        self,
        name: str,
        *,
        admin: object = UNSET,
        max_gpus: object = UNSET,
        max_queued: object = UNSET,
        new_token_: bool = False,
    ) -> tuple[User, str | None]:
        """Change a user's fields (UNSET: as they are; None: no limit); a new token if asked."""
        if name == ADMIN_NAME:
            raise InvalidQuery(f"{ADMIN_NAME!r} is the state directory's token; it has no fields")
        user = self.get(name)
        changes: dict[str, object] = {}
        if admin is not UNSET:
            changes["admin"] = bool(admin)
        for field, value in (("max_gpus", max_gpus), ("max_queued", max_queued)):
            if value is not UNSET:
                changes[field] = check_limit(field, value)  # type: ignore[arg-type]
        token = None
        if new_token_:
            token = new_token()
            changes["token_hash"] = hash_token(token)
        changed = dataclasses.replace(user, **changes)  # type: ignore[arg-type]
        if not self.store.update_user(changed):
            raise UserNotFound(f"no user named {name!r}")
        self._index([changed if u.name == name else u for u in self._by_name.values()])
        return changed, token

    def remove(self, name: str) -> None:
        """The user's token stops working at once; its tasks stay (and keep its name)."""
        if name == ADMIN_NAME:
            raise InvalidQuery(f"{ADMIN_NAME!r} is the state directory's token; it stays")
        self.get(name)
        self.store.delete_user(name)
        self._index([u for u in self._by_name.values() if u.name != name])
