"""Every error a user can meet, in one place. Each carries a stable machine code (the API's
`{"error": {"code", "message"}}`) and an HTTP status; the CLI maps codes to exit codes."""

from __future__ import annotations


class AntError(Exception):
    """Base of every user-facing error. `code` is stable; `message` is for humans."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TaskRejected(AntError):
    """A submission (or one line of it) cannot be accepted as written."""

    code = "task_rejected"
    status = 400


class DuplicateTaskId(AntError):
    code = "duplicate_task_id"
    status = 409


class TaskNotFound(AntError):
    code = "task_not_found"
    status = 404


class InvalidTransition(AntError):
    """The task is not in a state that allows the requested action."""

    code = "invalid_state"
    status = 409


class RenameFailed(AntError):
    """A task's files could not take its new name (nothing was changed)."""

    code = "rename_failed"
    status = 500


class GpuNotFound(AntError):
    code = "gpu_not_found"
    status = 404


class InvalidQuery(AntError):
    """A query parameter that is not understood (e.g. an unknown state)."""

    code = "invalid_request"
    status = 400


class WrongToken(AntError):
    code = "unauthorized"
    status = 401


class LaunchError(AntError):
    """The task's process could not be started (missing directory, unwritable log, ...)."""

    code = "launch_failed"
    status = 500


class ConfigError(AntError):
    code = "config_error"
    status = 400


class PayloadTooLarge(AntError):
    """A submission that expands to more than the configured limit."""

    code = "payload_too_large"
    status = 413


class StoreUnavailable(AntError):
    """The database cannot take the change (disk full, I/O error, locked for too long).

    Nothing of the operation was applied; trying again later is safe.
    """

    code = "store_unavailable"
    status = 503


class StoreBusy(StoreUnavailable):
    """The database is locked by another connection right now: a transient failure to retry."""


class Forbidden(AntError):
    """The signed-in user may not do this: another user's task, or an admin's command."""

    code = "forbidden"
    status = 403


class UserNotFound(AntError):
    code = "user_not_found"
    status = 404


class DuplicateUser(AntError):
    code = "duplicate_user"
    status = 409


class QueueLimit(AntError):
    """A submission would put more of a user's tasks in the queue than their max_queued."""

    code = "queue_limit"
    status = 429
