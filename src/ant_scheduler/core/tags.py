"""Tags: short labels a task carries (`--tag sweep-lr`, `ant_tags=a,b`) to find, act on and
pause a group of tasks at once. The rule is the task id's alphabet, shorter: a tag is also a URL
path segment (/api/v1/tags/{tag}/kill) and a word in `ant_tags=a,b` (so no comma, no blank)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ant_scheduler.core.errors import TaskRejected

MAX_TAG_LENGTH = 64
MAX_TAGS = 16  # per task
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
TAG_RULE = f"1-{MAX_TAG_LENGTH} letters, digits, '.', '_' or '-', not starting with '.' or '-'"


def check_tag(tag: str, what: str = "tag") -> str:
    """The tag unchanged, or TaskRejected naming the rule."""
    if not TAG_PATTERN.fullmatch(tag):
        shown = tag if len(tag) <= 40 else tag[:40] + "…"
        raise TaskRejected(f"{what} {shown!r} is not a valid tag: {TAG_RULE}")
    return tag


def check_tags(tags: Iterable[str], what: str = "tags") -> list[str]:
    """Valid tags in their first order, duplicates dropped; at most MAX_TAGS."""
    result = list(dict.fromkeys(check_tag(t, what) for t in tags))
    if len(result) > MAX_TAGS:
        raise TaskRejected(f"{what}: a task carries at most {MAX_TAGS} tags, got {len(result)}")
    return result


def split_tags(text: str, what: str = "ant_tags") -> list[str]:
    """`a,b` (blanks around commas allowed, empty parts ignored) -> ["a", "b"], checked."""
    return check_tags((part.strip() for part in text.split(",") if part.strip()), what)
