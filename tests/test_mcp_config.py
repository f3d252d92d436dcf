"""MCP server declarations as Hive writes them (mcp_servers.json both shapes, ${VAR},
mcp_registry.json, agent.json mcp_servers), and --mcp-config / info on the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hive_actors.cli import main
from hive_actors.errors import MCPConfigError
from hive_actors.tools.mcp_config import load_mcp_config, servers_for_agent

from mcp_support import SERVER


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_both_file_shapes_with_cwd_relative_to_the_file(tmp_path):
    by_name = write(tmp_path / "a" / "mcp_servers.json", {
        "tools": {"transport": "stdio", "command": "python", "args": ["-m", "srv"],
                  "cwd": "../srv", "description": "d"}})
    listed = write(tmp_path / "b" / "mcp_servers.json", {"servers": [
        {"name": "web", "transport": "http", "url": "http://127.0.0.1:1/mcp"}]})
    (tools,) = load_mcp_config(by_name)
    assert tools.name == "tools" and tools.args == ("-m", "srv")
    assert tools.cwd is not None and tools.cwd.resolve() == (tmp_path / "srv").resolve()
    (web,) = load_mcp_config(listed)
    assert (web.name, web.transport, web.url) == ("web", "http", "http://127.0.0.1:1/mcp")


def test_variables_expand_from_the_environment_and_a_missing_one_is_named(tmp_path):
    f = write(tmp_path / "mcp_servers.json", {"s": {
        "transport": "http", "url": "http://${HOST}/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"},
        "env": {"K": "${TOKEN}"}}})
    (s,) = load_mcp_config(f, environ={"HOST": "127.0.0.1:9", "TOKEN": "t0k"})
    assert s.url == "http://127.0.0.1:9/mcp" and s.headers["Authorization"] == "Bearer t0k"
    with pytest.raises(MCPConfigError) as info:
        load_mcp_config(f, environ={"HOST": "h"})
    assert "${TOKEN}" in str(info.value) and "'s'" in str(info.value) and str(f) in str(info.value)


def test_registry_includes_and_agent_json_servers_resolve_against_hive_home(tmp_path):
    home = tmp_path / "home"
    write(home / "mcp_registry" / "installed.json", {
        "hive_tools": {"transport": "stdio", "command": "hive-tools"},
        "web": {"transport": "http", "url": "http://127.0.0.1:2/mcp"}})
    agent = tmp_path / "agent"
    write(agent / "agent.json", {"mcp_servers": [{"name": "web"}]})
    write(agent / "mcp_registry.json", {"include": ["hive_tools"]})
    servers = servers_for_agent(agent, environ={"HIVE_HOME": str(home)})
    assert [s.name for s in servers] == ["hive_tools", "web"]
    write(agent / "mcp_registry.json", {"include": ["nope"]})
    with pytest.raises(MCPConfigError, match="'nope' is not in the registry"):
        servers_for_agent(agent, environ={"HIVE_HOME": str(home)})


def test_a_server_declared_twice_alike_counts_once_and_differently_is_an_error(tmp_path):
    home = tmp_path / "home"
    write(home / "mcp_registry" / "installed.json", {
        "web": {"transport": "http", "url": "http://127.0.0.1:2/mcp"}})
    agent = tmp_path / "agent"
    write(agent / "agent.json", {"mcp_servers": [{"name": "web"}]})
    write(agent / "mcp_registry.json", {"include": ["web"]})
    env = {"HIVE_HOME": str(home)}
    assert [s.name for s in servers_for_agent(agent, environ=env)] == ["web"]
    # the folder's own file declares "web" elsewhere: before, the first silently won
    write(agent / "mcp_servers.json", {"web": {"transport": "http", "url": "http://127.0.0.1:3/mcp"}})
    with pytest.raises(MCPConfigError) as info:
        servers_for_agent(agent, environ=env)
    text = str(info.value)
    assert "'web' is declared twice" in text and "127.0.0.1:3" in text and "127.0.0.1:2" in text
    assert str(agent / "mcp_servers.json") in text
    extra = write(tmp_path / "extra.json", {"web": {"transport": "http", "url": "http://127.0.0.1:4/mcp"}})
    (agent / "mcp_servers.json").unlink()
    with pytest.raises(MCPConfigError, match=str(extra)):
        servers_for_agent(agent, extra=extra, environ=env)


def test_bad_declarations_are_errors_naming_file_and_server(tmp_path):
    f = write(tmp_path / "mcp_servers.json", {"x": {"transport": "unix"}})
    with pytest.raises(MCPConfigError, match="server 'x': transport 'unix' is not supported"):
        load_mcp_config(f)
    f = write(tmp_path / "mcp_servers.json", {"x": {"transport": "stdio"}})
    with pytest.raises(MCPConfigError, match="needs a \"command\""):
        load_mcp_config(f)
    f = write(tmp_path / "mcp_servers.json", {"x": {"command": "srv", "optional": "false"}})
    with pytest.raises(MCPConfigError, match="\"optional\" must be true or false"):
        load_mcp_config(f)


AGENT = {
    "agent": {"id": "needs_tools", "name": "needs_tools"},
    "graph": {"id": "g", "goal_id": "g", "entry_node": "n", "terminal_nodes": ["n"],
              "nodes": [{"id": "n", "name": "N", "node_type": "event_loop",
                         "output_keys": ["x"], "tools": ["web_search"]}], "edges": []},
    "goal": {"id": "g", "name": "G", "description": "d"},
}


def server_file(tmp_path):
    return write(tmp_path / "servers" / "mcp_servers.json", {
        "fake": {"transport": "stdio", "command": sys.executable, "args": [str(SERVER), "stdio"]}})


def cli(*args):
    return subprocess.run([sys.executable, "-m", "hive_actors.cli", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_cli_run_without_tools_says_how_to_supply_them_then_runs_with_mcp_config(tmp_path):
    agent = write(tmp_path / "needs_tools" / "agent.json", AGENT).parent
    storage = str(tmp_path / "store")
    missing = cli("run", str(agent), "--scripted", "--storage", storage)
    assert missing.returncode == 1
    assert "needs tools ['web_search']" in missing.stdout + missing.stderr
    assert "--mcp-config FILE" in missing.stdout + missing.stderr
    done = cli("run", str(agent), "--scripted", "--storage", storage,
               "--mcp-config", str(server_file(tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr


def test_info_lists_each_server_and_its_tools(tmp_path, capsys):
    agent = write(tmp_path / "needs_tools" / "agent.json", AGENT).parent
    assert main(["info", str(agent), "--mcp-config", str(server_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "MCP servers" in out and "web_search" in out and "MCP fake" in out
    assert "no registry provides" not in out  # validate's offline warning is settled


async def test_runner_load_takes_a_server_dict_for_an_export_without_its_file(tmp_path):
    from hive_actors.runner import AgentRunner

    agent = write(tmp_path / "needs_tools" / "agent.json", AGENT).parent
    servers = {"servers": [{"name": "fake", "transport": "stdio", "command": sys.executable,
                            "args": [str(SERVER), "stdio"]}]}
    runner = AgentRunner.load(agent, llm="scripted", storage_path=tmp_path / "store",
                              mcp_servers=servers)
    async with runner:
        result = await runner.run({})
    assert result.success, result.error
    assert [s.name for s in runner.mcp_servers] == ["fake"]


async def test_a_required_http_server_that_cannot_be_reached_fails_the_start_naming_its_url(tmp_path):
    import socket

    from hive_actors.errors import MCPServerError
    from hive_actors.runner import AgentRunner

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/mcp"
    agent = write(tmp_path / "needs_tools" / "agent.json", AGENT).parent
    write(agent / "mcp_servers.json", {"remote": {"transport": "http", "url": url}})
    runner = AgentRunner.load(agent, llm="scripted", storage_path=tmp_path / "store")
    with pytest.raises(MCPServerError) as info:
        async with runner:
            pass
    assert "'remote'" in str(info.value) and url in str(info.value)
