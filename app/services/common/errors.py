"""Domain refusals: a code, a human message and, where it applies, when to retry."""
from __future__ import annotations


class DomainError(Exception):
    status = 409

    def __init__(self, code: str, message: str, *, retry_after: int | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body


class NotFound(DomainError):
    status = 404

    def __init__(self, what: str = "That page"):
        super().__init__("NOT_FOUND", f"{what} could not be found.")
