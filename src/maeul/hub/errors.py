"""Typed hub errors; the API turns each into an NGSI-LD ProblemDetails response in one place."""

from __future__ import annotations

from typing import Any

_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiError(Exception):
    """An error the NGSI-LD API reports with the specification's type URI and HTTP status."""

    type_name = "InternalError"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return _BASE + self.type_name

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class InvalidRequest(NgsiError):
    type_name, status, title = "InvalidRequest", 400, "Invalid request"


class BadRequestData(NgsiError):
    type_name, status, title = "BadRequestData", 400, "Bad request data"


class AlreadyExists(NgsiError):
    type_name, status, title = "AlreadyExists", 409, "Already exists"


class OperationNotSupported(NgsiError):
    type_name, status, title = "OperationNotSupported", 422, "Operation not supported"


class ResourceNotFound(NgsiError):
    type_name, status, title = "ResourceNotFound", 404, "Resource not found"


class NonexistentTenant(NgsiError):
    type_name, status, title = "NonexistentTenant", 404, "Nonexistent tenant"


class TooManyResults(NgsiError):
    type_name, status, title = "TooManyResults", 403, "Too many results"


class LdContextNotAvailable(NgsiError):
    type_name, status, title = "LdContextNotAvailable", 503, "@context not available"


class InternalError(NgsiError):
    type_name, status, title = "InternalError", 500, "Internal error"


class Unauthorized(NgsiError):
    """Missing, unknown, revoked or expired API key (maeul extension of the error types)."""

    type_name, status, title = "Unauthorized", 401, "Unauthorized"

    @property
    def type_uri(self) -> str:
        return "https://maeul.city/errors/Unauthorized"


class Forbidden(NgsiError):
    """The key is valid but its role, tenant or purpose does not allow the operation."""

    type_name, status, title = "Forbidden", 403, "Forbidden"

    @property
    def type_uri(self) -> str:
        return "https://maeul.city/errors/Forbidden"


class NotAcceptable(NgsiError):
    type_name, status, title = "NotAcceptable", 406, "Not acceptable"

    @property
    def type_uri(self) -> str:
        return "https://maeul.city/errors/NotAcceptable"


class UnsupportedMediaType(NgsiError):
    type_name, status, title = "UnsupportedMediaType", 415, "Unsupported media type"

    @property
    def type_uri(self) -> str:
        return "https://maeul.city/errors/UnsupportedMediaType"


class PayloadTooLarge(NgsiError):
    type_name, status, title = "PayloadTooLarge", 413, "Payload too large"

    @property
    def type_uri(self) -> str:
        return "https://maeul.city/errors/PayloadTooLarge"


class Conflict(NgsiError):
    """The request conflicts with the resource's state (e.g. approving a rejected proposal)."""

    type_name, status, title = "Conflict", 409, "Conflict"

    @property
    def type_uri(self) -> str:
        return "https://maeul.city/errors/Conflict"  # not one of NGSI-LD's own error types
