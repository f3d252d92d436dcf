"""The event feed's wire protocol: message records, parsing and encoding. Pure, no I/O.

Every frame is one JSON object with a ``type``. Client requests carry an ``id`` (a string or
an integer, chosen by the client); every reply to a request (``result`` or ``error``) names it.
Requests are validated through the one cattrs converter, so an unknown field, a wrong type or
an unknown event type is an ``error`` reply that says which field is wrong.
See ``docs/feed.md`` for the protocol with examples.
"""

from __future__ import annotations

import json
from typing import Any, Union

import attrs
import cattrs

from hive_actors.events import AgentEvent, EventType
from hive_actors.jsonsafe import too_deep
from hive_actors.serde import converter
from hive_actors.storage.session_store import InvalidSessionIdError, check_session_id

RequestId = Union[str, int]

# error codes (the ``code`` field of an ``error`` reply)
BAD_JSON = "bad_json"
BAD_REQUEST = "bad_request"
UNKNOWN_TYPE = "unknown_type"
NOT_FOUND = "not_found"
REJECTED = "rejected"
LIMIT = "limit"
INTERNAL = "internal"


# A frame nested deeper than this (arrays and objects) is refused before it is decoded.
MAX_FRAME_DEPTH = 64
# ``since`` and ``limit`` above this are refused (bus offsets never get near it).
MAX_COUNT = 2**53


# -- client -> server ---------------------------------------------------------------------


@attrs.frozen
class Subscribe:
    """Start streaming events that match every given filter (a missing filter matches all).

    ``since``: also replay the retained history of events with ``seq`` greater than it,
    before live events (pass the last ``seq`` you saw to resume after a reconnect).
    """

    id: RequestId
    event_types: tuple[EventType, ...] | None = None
    stream_id: str | None = None
    execution_id: str | None = None
    node_id: str | None = None
    since: int | None = None


@attrs.frozen
class Unsubscribe:
    id: RequestId
    subscription: str


@attrs.frozen
class Trigger:
    id: RequestId
    entry_point: str
    input: dict[str, Any] = attrs.field(factory=dict)
    session_state: dict[str, Any] | None = None
    idempotency_key: str | None = None


@attrs.frozen
class InjectInput:
    id: RequestId
    node_id: str
    content: str
    execution_id: str | None = None


@attrs.frozen
class GetStats:
    id: RequestId


@attrs.frozen
class ListSessions:
    """Stored sessions, newest first; ``status`` filters (running, completed, paused...)."""

    id: RequestId
    limit: int | None = None
    status: str | None = None


@attrs.frozen
class ListEntryPoints:
    id: RequestId


@attrs.frozen
class GetGraph:
    """The agent's graph with its layout (node boxes, edge polylines), for drawing."""

    id: RequestId


@attrs.frozen
class GetSession:
    """One stored session: its record, folder, checkpoints and output."""

    id: RequestId
    session_id: str


@attrs.frozen
class ResumeSession:
    """Continue a paused, cancelled or failed session from its latest checkpoint."""

    id: RequestId
    session_id: str


Request = Union[
    Subscribe, Unsubscribe, Trigger, InjectInput, GetStats, ListSessions, ListEntryPoints,
    GetGraph, GetSession, ResumeSession,
]

REQUEST_TYPES: dict[str, type[Request]] = {
    "subscribe": Subscribe,
    "unsubscribe": Unsubscribe,
    "trigger": Trigger,
    "inject_input": InjectInput,
    "get_stats": GetStats,
    "list_sessions": ListSessions,
    "list_entry_points": ListEntryPoints,
    "get_graph": GetGraph,
    "get_session": GetSession,
    "resume_session": ResumeSession,
}


# -- server -> client ---------------------------------------------------------------------


@attrs.frozen
class EventMessage:
    """One bus event; ``seq`` is its bus-wide offset (usable as ``since``)."""

    subscription: str
    seq: int
    event: AgentEvent
    type: str = "event"


@attrs.frozen
class EventsDropped:
    """``count`` events that matched were dropped before this point (slow reader)."""

    count: int
    subscription: str | None = None
    type: str = "events_dropped"


@attrs.frozen
class Result:
    id: RequestId | None
    result: Any = None
    type: str = "result"


@attrs.frozen
class Error:
    id: RequestId | None
    code: str
    message: str
    type: str = "error"


Reply = Union[Result, Error]
ServerMessage = Union[EventMessage, EventsDropped, Result, Error]


class ProtocolError(Exception):
    """A client frame cannot be understood; ``reply`` is the ``error`` to send back."""

    def __init__(self, reply: Error) -> None:
        self.reply = reply
        super().__init__(reply.message)


def parse_request(frame: str | bytes) -> Request:
    """Decode one client frame into a request record.

    Raises ProtocolError carrying the ``error`` reply (with the request id when one could be
    read) for malformed JSON, a non-object, a missing or unknown ``type`` or a bad field.
    """
    if too_deep(frame, MAX_FRAME_DEPTH):
        raise ProtocolError(
            Error(None, BAD_JSON, f"frame is nested more than {MAX_FRAME_DEPTH} levels deep")
        )
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(Error(None, BAD_JSON, f"frame is not valid JSON: {exc}")) from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ProtocolError(Error(None, BAD_REQUEST, f"frame must be a JSON object, got {kind}"))
    raw_id = data.get("id")
    request_id = raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    kind = data.pop("type", None)
    if kind is None:
        raise ProtocolError(Error(request_id, BAD_REQUEST, "frame has no 'type' field"))
    cls = REQUEST_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(sorted(REQUEST_TYPES))
        raise ProtocolError(
            Error(request_id, UNKNOWN_TYPE, f"unknown message type {kind!r} (known: {known})")
        )
    if request_id is None:
        raise ProtocolError(
            Error(None, BAD_REQUEST, f"{kind}: 'id' is required (a string or an integer)")
        )
    try:
        request = converter.structure(data, cls)
    except cattrs.ClassValidationError as exc:
        problems = "; ".join(cattrs.transform_error(exc, path=kind))
        raise ProtocolError(Error(request_id, BAD_REQUEST, problems)) from None
    for name in ("since", "limit"):
        value = getattr(request, name, None)
        if value is not None and not 0 <= value <= MAX_COUNT:
            raise ProtocolError(
                Error(request_id, BAD_REQUEST, f"{kind}.{name} must be from 0 to {MAX_COUNT}")
            )
    if isinstance(request, (GetSession, ResumeSession)):
        try:
            check_session_id(request.session_id)
        except InvalidSessionIdError as exc:
            raise ProtocolError(
                Error(request_id, BAD_REQUEST, f"{kind}.session_id: {exc}")) from None
    return request


# A JSON string (skipped whole) or one bracket.
def encode(message: ServerMessage) -> str:
    """One server message as a JSON text frame (values JSON cannot hold become strings).

    The text is always valid UTF-8: a lone surrogate (say in an echoed id) is sent as a
    ``\\uXXXX`` escape rather than breaking the frame.
    """
    data = converter.unstructure(message)
    data = {"type": data.pop("type"), **data}  # type first: easier to read in logs
    text = json.dumps(data, ensure_ascii=False, default=str)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(data, ensure_ascii=True, default=str)
    return text
