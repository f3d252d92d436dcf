"""AgentRunner: load an agent folder and run it through an AgentRuntime.

    runner = AgentRunner.load("exports/my_agent", model="anthropic/claude-sonnet-4-20250514")
    result = await runner.run({"query": "hello"})
    await runner.stop()

The model: ``llm=`` (any LLMProvider), or ``model="provider/name"`` (a LiteLLMProvider), or
``llm="scripted"`` (an offline ScriptedLLM for demos and tests: it plays the agent folder's
``script.json`` when there is one, and autopilot replies otherwise). With none of
them, running a graph that has LLM nodes raises ConfigurationError before anything runs;
graphs of function and router nodes need no model.

``run()`` has no live client: an execution that asks for client input pauses at once and
its ``session_state`` resumes it (headless mode, `run_headless`, answers from stdin instead).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from hive_actors.errors import ConfigurationError
from hive_actors.graph.result import ExecutionResult
from hive_actors.runtime.agent_runtime import AgentRuntime, RuntimeConfig, create_agent_runtime
from hive_actors.graph.spec import EntryPointSpec
from hive_actors.tools.mcp_config import MCPServerConfig, servers_for_agent

__all__ = ["AgentRunner", "cli_llm", "default_storage_path", "scripted_llm"]

log = logging.getLogger(__name__)

_LLM_NODE_TYPES = ("event_loop",)


def default_storage_path(agent: Any) -> Path:
    """``~/.hive/agents/{agent folder name}/``, as Hive keeps it. ``agent``: a loaded agent
    (a bare ``x.json`` file gives ``x``), its folder, or a name."""
    if isinstance(agent, (str, Path)):
        return Path("~/.hive/agents").expanduser() / Path(agent).name
    source = agent.source
    bare_file = source is not None and source.name not in ("agent.json", "agent.py")
    return default_storage_path(source.stem if bare_file else agent.path)


class AgentRunner:
    """Facade over one agent: its definition, its model and its (lazily built) runtime."""

    def __init__(self, definition: Any, *, llm: Any = None, storage_path: str | Path | None = None,
                 config: RuntimeConfig | None = None,
                 mcp_servers: Sequence[MCPServerConfig] = ()) -> None:
        self.definition = definition
        self.agent_path = Path(definition.path)
        self.graph = definition.graph
        self.goal = definition.goal
        self.llm = llm
        if storage_path is None and config is not None and config.store is not None:
            storage_path = tempfile.mkdtemp(prefix="hive-store-")  # runtime log, resume cache
        self.storage_path = (Path(storage_path).expanduser() if storage_path is not None
                             else default_storage_path(definition))
        self._config = config
        self.mcp_servers = list(mcp_servers)  # started with the runtime
        self._runtime: AgentRuntime | None = None

    @classmethod
    def load(cls, agent_path: str | Path, model: str | None = None, llm: Any = None,
             storage_path: str | Path | None = None, tools: Any = None,
             config: RuntimeConfig | None = None, mcp_servers: Any = None,
             store: str | None = None, worker: bool = False) -> AgentRunner:
        """Load and validate the agent at ``agent_path`` (nothing runs, no file is written).

        ``store`` (a postgresql:// URL): a client of that store (``trigger()`` queues durably,
        ``run()`` waits for whichever worker runs it), or with ``worker=True`` one of its
        workers (docs/scale-out.md); its local folder is then a new temp folder by default.

        ``tools``: extra tools (callables or Tools) added to the agent's own.
        ``mcp_servers``: MCP tool servers besides those the agent folder declares (a
        ``mcp_servers.json`` path, its decoded dict, or a list of them); they start with the
        runtime. Raises AgentDefinitionError for an invalid agent, ConfigurationError for a
        bad model or MCP configuration (MCPConfigError).
        """
        from hive_actors.graph.loader import load_agent

        definition = load_agent(agent_path)
        if store is not None:
            config = attrs.evolve(config or RuntimeConfig(), store=store, worker=worker)
        for t in _as_list(tools):
            definition.tools.register(t)
        return cls(definition, llm=_resolve_llm(model, llm, definition.path),
                   storage_path=storage_path,
                   config=config, mcp_servers=servers_for_agent(definition.path, mcp_servers))

    # ---- the runtime -----------------------------------------------------------------

    @property
    def runtime(self) -> AgentRuntime:
        """The AgentRuntime (built on first use, not started)."""
        if self._runtime is None:
            self._runtime = self._build_runtime()
        return self._runtime

    def _build_runtime(self) -> AgentRuntime:
        return create_agent_runtime(self.definition, storage_path=self.storage_path, llm=self.llm,
                                    config=self._config, mcp_servers=self.mcp_servers)

    def needs_model(self) -> bool:
        return any(n.node_type in _LLM_NODE_TYPES for n in self.graph.nodes)

    def _check_model(self) -> None:
        config = self._config
        if config is not None and config.store is not None and not config.worker:
            return  # a client of a store runs nothing here: the workers have the model
        if self.llm is None and self.needs_model():
            llm_nodes = [n.id for n in self.graph.nodes if n.node_type in _LLM_NODE_TYPES]
            raise ConfigurationError(
                f"agent {self.definition.name!r} has LLM nodes ({', '.join(llm_nodes)}) but no "
                "model: pass model='provider/name', llm=<provider>, or llm='scripted' "
                "(CLI: --model M or --scripted)"
            )

    # ---- lifecycle -------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._runtime is not None and self._runtime.is_running

    async def start(self, nursery: trio.Nursery | None = None) -> None:
        """Start the runtime (no-op if running). Raises ConfigurationError without a model
        for a graph that needs one; see AgentRuntime.start for the rest."""
        self._check_model()
        await self.runtime.start(nursery)

    async def stop(self) -> None:
        """Stop the runtime (structured: see AgentRuntime.stop). No-op if never started."""
        if self._runtime is not None:
            await self._runtime.stop()

    async def __aenter__(self) -> AgentRunner:
        self._check_model()
        await self.runtime.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        try:
            return await self.runtime.__aexit__(*exc_info)
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        """Release what needs no event loop. A runtime still running is asked to stop (its
        structured shutdown completes as soon as the trio loop runs); await `cleanup_async`
        to wait for it."""
        if self._runtime is not None:
            self._runtime.request_stop()

    async def cleanup_async(self) -> None:
        """Stop the runtime and wait until it has stopped, then `cleanup`."""
        await self.stop()
        self.cleanup()

    # ---- executions ------------------------------------------------------------------

    def get_entry_points(self) -> list[EntryPointSpec]:
        return self.runtime.get_entry_points()

    def _entry(self, entry_point_id: str | None) -> str:
        if entry_point_id is not None:
            return entry_point_id
        return self.get_entry_points()[0].id

    async def run(self, input_data: dict[str, Any] | None = None, session_state: Any = None,
                  entry_point_id: str | None = None) -> ExecutionResult:
        """Run once and return the result (starting the runtime if needed; it keeps running).

        ``session_state`` (a paused result's) resumes that execution; ``input_data`` then is
        the user's reply. The session's files show the result when this returns.
        Raises what AgentRuntime.trigger raises.
        """
        await self.start()
        result = await self.runtime.trigger_and_wait(self._entry(entry_point_id),
                                                     input_data or {}, session_state=session_state)
        await self.runtime.flush_view()
        return result

    async def trigger(self, entry_point_id: str | None = None, input_data: dict[str, Any] | None = None,
                      session_state: Any = None, idempotency_key: str | None = None) -> str:
        """Start an execution without waiting; returns its id."""
        await self.start()
        return await self.runtime.trigger(self._entry(entry_point_id), input_data or {},
                                          session_state=session_state,
                                          idempotency_key=idempotency_key)

    async def resume(self, session_id: str, input_data: dict[str, Any] | None = None) -> ExecutionResult:
        """Continue a stored session from its latest checkpoint (see AgentRuntime.resume);
        the session's files show the result when this returns."""
        await self.start()
        result = await self.runtime.resume(session_id, input_data)
        await self.runtime.flush_view()
        return result


def _as_list(tools: Any) -> list[Any]:
    if tools is None:
        return []
    if isinstance(tools, dict):
        return list(tools.values())
    if hasattr(tools, "names") and hasattr(tools, "get"):  # a ToolRegistry
        return [tools.get(n) for n in tools.names()]
    return list(tools)


def _resolve_llm(model: str | None, llm: Any, agent_path: Any) -> Any:
    if isinstance(llm, str):
        if llm != "scripted":
            raise ConfigurationError(f"llm={llm!r}: pass a provider object or 'scripted'")
        return scripted_llm(agent_path)[0]
    if llm is not None:
        return llm
    if model:
        from hive_actors.llm.factory import make_provider

        return make_provider(model)
    return None


def scripted_llm(agent_path: str | Path, script: str | Path | None = None) -> tuple[Any, str]:
    """An offline ScriptedLLM and a line saying what it plays: ``script``, else the agent
    folder's ``script.json``, else autopilot placeholder replies. Raises ConfigurationError
    for a script that cannot be read."""
    from hive_actors.llm.scripted import ScriptedLLM

    if script is None:
        folder = Path(agent_path)
        found = (folder if folder.is_dir() else folder.parent) / "script.json"
        if not found.is_file():
            return (ScriptedLLM({}, autopilot=True),
                    f"scripted model: no {found}; playing autopilot placeholder replies")
        script = found
    return ScriptedLLM.from_file(script, autopilot=True), f"scripted model: playing {script}"


def cli_llm(agent_path: str | Path, model: str | None, scripted: str | None) -> tuple[Any, str | None]:
    """The model of ``--model M`` / ``--scripted [SCRIPT.json]`` (``scripted`` is "" for the
    bare flag) and a line saying what a scripted model plays. Neither: None (fine for
    function-only agents). Raises ConfigurationError for both at once or an unreadable script."""
    if model and scripted is not None:
        raise ConfigurationError("--scripted and --model exclude each other: give one")
    if scripted is not None:
        return scripted_llm(agent_path, scripted or None)
    return _resolve_llm(model, None, agent_path), None
