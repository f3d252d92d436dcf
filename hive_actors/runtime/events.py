"""Old path of the event vocabulary; it lives in hive_actors/events.py."""

from hive_actors.events import AgentEvent, EventSink, EventType, ListSink, NullSink, utcnow

__all__ = ["AgentEvent", "EventSink", "EventType", "ListSink", "NullSink", "utcnow"]
