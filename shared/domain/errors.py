"""The error hierarchy: every error the API can answer with maps to one HTTP status."""

from __future__ import annotations


class StreamsError(Exception):
    """Base class of every expected error; carries the HTTP status it answers with."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class InvalidRequest(StreamsError):
    """The request is malformed or a field is invalid."""

    status = 400
    code = "invalid_request"


class Unauthorized(StreamsError):
    """No credentials, or credentials that match nothing."""

    status = 401
    code = "unauthorized"


class Forbidden(StreamsError):
    """Valid credentials that do not allow this request (a web page of an origin the source
    does not list)."""

    status = 403
    code = "forbidden"


class NotFound(StreamsError):
    """The resource does not exist in the caller's workspace (or at all: the caller cannot tell)."""

    status = 404
    code = "not_found"


class MethodNotAllowed(StreamsError):
    """The path exists but not with this method."""

    status = 405
    code = "method_not_allowed"


class Conflict(StreamsError):
    """The resource's state does not allow the operation."""

    status = 409
    code = "conflict"


class InvalidMessage(InvalidRequest):
    """A Pub/Sub message that can never be processed: recorded and acknowledged, not retried."""


class PayloadTooLarge(StreamsError):
    """The request body exceeds a size limit."""

    status = 413
    code = "payload_too_large"


class Unavailable(StreamsError):
    """A dependency is down or overloaded: the client should retry after `retry_after` seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after


class TooManyRequests(Unavailable):
    """The caller (or the instance) already has as many of something open as allowed."""

    status = 429
    code = "too_many_requests"
