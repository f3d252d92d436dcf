// The dashboard: one websocket to the event feed (docs/feed.md), nothing else.
// Every value from the feed is shown with textContent, never parsed as HTML.
"use strict";

const state = {
  ws: null,
  nextId: 1,
  pending: new Map(),        // request id -> callback(reply)
  lastSeq: 0,                // bus offset of the last event seen (for replay on reconnect)
  executions: new Map(),     // execution id -> {stream, status, node, output, waiting}
  selected: null,
};

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};

function showError(text) { $("error").textContent = text || ""; }

function request(type, fields = {}) {
  return new Promise((resolve) => {
    const id = state.nextId++;
    state.pending.set(id, resolve);
    state.ws.send(JSON.stringify({ type, id, ...fields }));
  });
}

async function connect() {
  const config = await (await fetch("/config.json")).json();
  const token = new URLSearchParams(location.search).get("token");
  let url = `ws://${location.hostname}:${config.feed_port}/`;
  if (token) url += `?token=${encodeURIComponent(token)}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = async () => {
    $("status").textContent = "connected";
    $("status").className = "open";
    showError("");
    const eps = await request("list_entry_points");
    if (eps.type === "result") renderEntryPoints(eps.result.entry_points);
    // Replay what the bus still holds, then stay live.
    const sub = await request("subscribe", { since: state.lastSeq + 1 });
    if (sub.type === "error") showError(sub.message);
  };
  ws.onmessage = (msg) => handle(JSON.parse(msg.data));
  ws.onclose = () => {
    $("status").textContent = "disconnected";
    $("status").className = "closed";
    setTimeout(connect, 2000);
  };
}

function handle(message) {
  if (message.type === "result" || message.type === "error") {
    const resolve = state.pending.get(message.id);
    state.pending.delete(message.id);
    if (message.type === "error") showError(`${message.code}: ${message.message}`);
    if (resolve) resolve(message);
  } else if (message.type === "events_dropped") {
    log(`(${message.count} events dropped: this page was too slow)`);
  } else if (message.type === "event") {
    state.lastSeq = Math.max(state.lastSeq, message.seq);
    onEvent(message.event);
  }
}

function execution(event) {
  let ex = state.executions.get(event.execution_id);
  if (!ex) {
    ex = { stream: event.stream_id, status: "running", node: "", output: "", waiting: null };
    state.executions.set(event.execution_id, ex);
    if (!state.selected) state.selected = event.execution_id;
  }
  return ex;
}

const TERMINAL = {
  execution_completed: "completed", execution_failed: "failed",
  execution_paused: "paused", execution_cancelled: "cancelled",
};

function onEvent(event) {
  if (event.type !== "llm_text_delta" && event.type !== "client_output_delta") {
    log(`${event.type} ${event.execution_id || ""} ${event.node_id || ""}`);
  }
  if (!event.execution_id) return;
  const ex = execution(event);
  const data = event.data || {};
  switch (event.type) {
    case "execution_started": case "execution_resumed":
      ex.status = "running"; break;
    case "node_started":
      ex.node = event.node_id; break;
    case "client_output_delta":
      ex.output += data.content ?? data.delta ?? data.text ?? ""; break;
    case "client_input_requested":
      ex.waiting = { node: event.node_id, prompt: data.prompt ?? data.question ?? "" };
      ex.status = "waiting"; break;
    case "client_input_received":
      ex.waiting = null; ex.status = "running";
      ex.output += `\n> ${data.content ?? ""}\n`; break;
    default:
      if (TERMINAL[event.type]) {
        ex.status = TERMINAL[event.type]; ex.waiting = null; ex.node = event.node_id || ex.node;
        if (event.type === "execution_completed") ex.result = data.output;
        if (event.type === "execution_failed") ex.output += `\n[failed] ${data.error ?? ""}\n`;
      }
  }
  render();
}

function renderEntryPoints(entryPoints) {
  const box = $("entry-points");
  box.replaceChildren();
  for (const ep of entryPoints) {
    const input = el("textarea", { value: "{}", title: "input (JSON object)" });
    input.dataset.entryPoint = ep.id;
    const button = el("button", { type: "button", textContent: `Run ${ep.name || ep.id}` });
    button.dataset.trigger = ep.id;
    button.onclick = () => trigger(ep.id, input.value);
    const about = el("div", { textContent: `${ep.id} → ${ep.entry_node} (${ep.trigger_type})` });
    box.append(el("div", { className: "ep" }, about, input, button));
  }
}

async function trigger(entryPoint, text) {
  let input;
  try {
    input = JSON.parse(text || "{}");
  } catch (err) {
    showError(`input is not JSON: ${err.message}`);
    return;
  }
  const reply = await request("trigger", { entry_point: entryPoint, input });
  if (reply.type === "result") {
    state.selected = reply.result.execution_id;
    render();
  }
}

function render() {
  const body = $("executions");
  body.replaceChildren();
  for (const [id, ex] of state.executions) {
    const row = el("tr", {},
      el("td", { textContent: id }), el("td", { textContent: ex.stream }),
      el("td", { textContent: ex.status, className: `st-${ex.status}` }),
      el("td", { textContent: ex.node || "" }));
    row.dataset.execution = id;
    row.dataset.status = ex.status;
    if (id === state.selected) row.className = "selected";
    row.onclick = () => { state.selected = id; render(); };
    body.append(row);
  }
  const ex = state.executions.get(state.selected);
  $("output-of").textContent = ex ? `of ${state.selected}` : "";
  $("output").textContent = ex ? ex.output + (ex.result ? `\n[result] ${JSON.stringify(ex.result)}` : "") : "";
  $("input-form").className = ex && ex.waiting ? "visible" : "";
  $("input-prompt").textContent = ex && ex.waiting ? (ex.waiting.prompt || `${ex.waiting.node} is waiting for your input`) : "";
}

$("input-form").onsubmit = async (e) => {
  e.preventDefault();
  const ex = state.executions.get(state.selected);
  if (!ex || !ex.waiting) return;
  const content = $("input-text").value;
  const reply = await request("inject_input",
    { node_id: ex.waiting.node, content, execution_id: state.selected });
  if (reply.type === "result" && reply.result.delivered) {
    $("input-text").value = "";
  } else if (reply.type === "result") {
    showError("the execution was not waiting for input any more");
  }
};

function log(text) {
  const box = $("log");
  box.append(el("div", { textContent: text }));
  while (box.childElementCount > 300) box.firstElementChild.remove();
  box.scrollTop = box.scrollHeight;
}

connect().catch((err) => showError(`cannot reach the feed: ${err.message}`));
