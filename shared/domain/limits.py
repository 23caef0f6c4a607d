"""What ingest refuses: the limits (Segment's) and every rejection reason; see docs/EVENTS.md."""

from __future__ import annotations

# KB means 1,024 bytes, as in Segment's HTTP API documentation.
MAX_REQUEST_BYTES = 500 * 1024
"""Largest request body after decompression; enforced by the HTTP layer (413)."""

MAX_EVENT_BYTES = 32 * 1024
"""Largest event: UTF-8 bytes of the item's compact JSON (`,` `:` separators, no escaping)."""

MAX_BATCH_EVENTS = 2_500
"""Most items in one `/v1/batch` request; more is a request-level error (413)."""

MAX_MESSAGE_ID_CHARS = 99
"""Longest `messageId` ("fewer than 100 characters")."""

MAX_EVENT_DEPTH = 16
"""Deepest nesting of objects and arrays in one event. Records that hold events (dead letters)
are Firestore documents, which nest at most 20 levels."""

MAX_FIELD_PATH_BYTES = 1_024
"""Longest path of keys to a value in one event: their UTF-8 bytes joined by dots, as Firestore
measures a field path (at most 1,500 bytes). The rest is room for the records holding events:
a dead letter keeps its event under `delivery.event`, and unknown keys move under `extras`."""

# Per-event rejection reasons: fixed strings, so they can be counted; `Rejection.field` names
# the field. The `{}` templates take a field name (listed in docs/EVENTS.md).
NOT_AN_OBJECT = "event is not a JSON object"
TOO_DEEP = f"event is nested deeper than {MAX_EVENT_DEPTH} levels"
NOT_UNICODE = "text is not valid Unicode (it holds a lone surrogate such as \\ud800)"
INTEGER_OUT_OF_RANGE = "integers must fit in 64 bits (from -2^63 to 2^63-1)"
EMPTY_KEY = "an object has an empty key"
RESERVED_KEY = "keys of the form __name__ are reserved"
NESTED_ARRAY = "an array directly inside an array cannot be stored"
FIELD_PATH_TOO_LONG = f"the keys leading to a value are longer than {MAX_FIELD_PATH_BYTES} bytes"
NOT_ENCODABLE = "event cannot be written as JSON"
TOO_LARGE = f"event is larger than {MAX_EVENT_BYTES} bytes"
TYPE_REQUIRED = "type is required"
TYPE_UNKNOWN = "type must be one of alias, group, identify, page, screen, track"
TYPE_MISMATCH = "type does not match the endpoint"
NOT_AN_OBJECT_FIELD = "{} must be an object"
NOT_AN_ID = "{} must be a string or a number"
MESSAGE_ID_TOO_LONG = f"messageId is longer than {MAX_MESSAGE_ID_CHARS} characters"
IDENTITY_REQUIRED = "userId or anonymousId is required"
EVENT_REQUIRED = "event must be a non-empty string for track"
NAME_NOT_A_STRING = "name must be a string"
GROUP_ID_REQUIRED = "groupId is required for group"
PREVIOUS_ID_REQUIRED = "previousId is required for alias"
USER_ID_REQUIRED = "userId is required for alias"
BAD_TIMESTAMP = "{} is not a valid ISO-8601 date-time"
CORRECTION_OUT_OF_RANGE = "timestamp is out of range after clock-skew correction"
SOURCE_ID_REQUIRED = "sourceId is required"
SOURCE_ID_MISMATCH = "sourceId does not match the source"
