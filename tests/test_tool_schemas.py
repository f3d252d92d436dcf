"""Tool schemas from type hints (through pydantic) and validation of the model's arguments."""

from __future__ import annotations

import typing
from typing import Literal, Optional

import pydantic
import pytest
from typing_extensions import TypedDict

from hive_actors.errors import ToolArgumentsError
from hive_actors.graph.executor import ExecutorConfig, GraphExecutor
from hive_actors.llm.scripted import Reply, ScriptedLLM, call
from hive_actors.tools.registry import Tool, ToolRegistry, tool

from executor_support import GOAL, graph, llm_node


class Window(pydantic.BaseModel):
    """A date window."""

    start: str
    days: int = 7


class Filters(TypedDict):
    site: str
    limit: int


@tool
def search(
    query: str,
    mode: Literal["fast", "deep"] = "fast",
    limit: Optional[int] = None,
    tags: list[str] | None = None,
    window: Window | None = None,
    filters: Filters | None = None,
    score: int | str = 0,
) -> str:
    """Search the index.

    Args:
        query: what to look for
        mode: how hard to look
        window: only documents in this window
    """
    return f"{query}|{mode}|{limit}|{window!r}"


def parameters(fn) -> dict:
    return fn.__hive_tool__.parameters


def test_plain_types_required_and_docstring_descriptions():
    p = parameters(search)
    assert p["type"] == "object" and p["required"] == ["query"]
    assert p["properties"]["query"] == {"type": "string", "description": "what to look for"}
    assert search.__hive_tool__.description == "Search the index."


def test_literal_becomes_an_enum_with_its_default():
    assert parameters(search)["properties"]["mode"] == {
        "type": "string", "enum": ["fast", "deep"], "default": "fast", "description": "how hard to look",
    }


def test_optional_and_unions_become_any_of():
    props = parameters(search)["properties"]
    assert props["limit"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert props["tags"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}
    assert props["score"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]


def test_nested_model_and_typed_dict_are_defined_once_and_referenced():
    p = parameters(search)
    defs = p["$defs"]
    assert defs["Window"]["properties"] == {"start": {"type": "string"},
                                            "days": {"type": "integer", "default": 7}}
    assert defs["Window"]["required"] == ["start"] and defs["Window"]["description"] == "A date window."
    assert defs["Filters"]["required"] == ["site", "limit"]
    assert {"$ref": "#/$defs/Window"} in p["properties"]["window"]["anyOf"]
    assert "title" not in str(p)  # generated titles are dropped


def test_numpy_and_rest_docstrings_describe_parameters():
    @tool
    def a(x: int) -> None:
        """Do a.

        Parameters
        ----------
        x : int
            how many
        """

    @tool
    def b(x: int) -> None:
        """Do b.

        :param x: how many
        """

    assert parameters(a)["properties"]["x"]["description"] == "how many"
    assert parameters(b)["properties"]["x"]["description"] == "how many"


class Opaque:
    pass


class PlainTD(typing.TypedDict):
    a: int


def test_a_hint_without_a_json_schema_leaves_that_parameter_untyped_with_a_warning(caplog):
    @tool
    def odd(x: Opaque, y: PlainTD, n: int) -> None:
        """Odd."""

    props = parameters(odd)["properties"]
    assert props["x"] == {} and props["y"] == {} and props["n"] == {"type": "integer"}
    assert "tool 'odd': parameter 'x' is left untyped" in caplog.text
    assert "parameter 'y' is left untyped" in caplog.text  # typing.TypedDict on Python < 3.12
    assert odd.__hive_tool__.check_arguments({"x": 1, "y": {}, "n": "2"}) == {"x": 1, "y": {}, "n": 2}


def test_valid_arguments_are_converted_to_the_hinted_types():
    args = search.__hive_tool__.check_arguments({"query": "q", "limit": "3", "window": {"start": "mon"}})
    assert args["limit"] == 3 and args["window"] == Window(start="mon", days=7)


@pytest.mark.parametrize(("arguments", "field"), [
    ({}, "query: Field required"),
    ({"query": "q", "mode": "slow"}, "mode: Input should be 'fast' or 'deep'"),
    ({"query": "q", "window": {"start": "mon", "days": "many"}}, "window.days:"),
    ({"query": "q", "filters": {"site": "x"}}, "filters.limit: Field required"),
    ({"query": "q", "nope": 1}, "nope: Extra inputs are not permitted"),
])
def test_invalid_arguments_raise_naming_the_field(arguments, field):
    with pytest.raises(ToolArgumentsError, match="invalid arguments for tool 'search'") as info:
        search.__hive_tool__.check_arguments(arguments)
    assert any(p.startswith(field) for p in info.value.problems), info.value.problems


def test_hand_written_schemas_are_validated_with_jsonschema():
    t = Tool("lookup", "Look up.", {"type": "object", "properties": {
        "id": {"type": "integer"}, "opts": {"type": "object", "properties": {"deep": {"type": "boolean"}}},
    }, "required": ["id"]})
    assert t.check_arguments({"id": 1}) == {"id": 1}
    with pytest.raises(ToolArgumentsError) as info:
        t.check_arguments({"opts": {"deep": "yes"}})
    assert info.value.problems == ["id: Field required", "opts.deep: 'yes' is not of type 'boolean'"]


async def test_a_validation_failure_reaches_the_model_and_never_the_tool():
    calls = []

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        calls.append((a, b))
        return a + b

    llm = ScriptedLLM({"n": [
        Reply("", [call("add", a=1, b="two")]),
        Reply("", [call("add", a=1, b="2")]),
        Reply("", [call("set_output", key="x", value="3")]),
    ]})
    g = graph([llm_node("n", outputs=("x",), tools=("add",))])
    executor = GraphExecutor(llm=llm, tools=[add], config=ExecutorConfig(retry_delay_override=0.0))
    result = await executor.execute(g, GOAL, {})
    assert result.success and calls == [(1, 2)]
    first = [m for m in llm.requests[1].messages if m["role"] == "tool"][0]["content"]
    assert first.startswith("ERROR: invalid arguments for tool 'add'") and "b: Input should be a valid integer" in first
    second = [m for m in llm.requests[2].messages if m["role"] == "tool"][-1]["content"]
    assert second == "3"


def test_an_invalid_hand_written_schema_is_not_enforced_and_is_warned_about(caplog):
    t = Tool("sloppy", "", {"type": "object", "properties": {"n": {"type": "str"}}})
    assert t.check_arguments({"n": 1}) == {"n": 1}
    assert "tool 'sloppy': parameters schema is not valid JSON schema" in caplog.text


async def test_registry_validates_before_a_tool_executor_runs():
    seen = []
    registry = ToolRegistry([Tool("t", "", {"type": "object", "properties": {"n": {"type": "integer"}},
                                            "required": ["n"]})],
                            tool_executor=lambda name, args: seen.append(args))
    with pytest.raises(ToolArgumentsError, match="n: 'x' is not of type 'integer'"):
        await registry.call("t", {"n": "x"})
    await registry.call("t", {"n": 1})
    assert seen == [{"n": 1}]
