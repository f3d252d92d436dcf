// The dashboard: one websocket to the event feed (docs/feed.md), nothing else.
// Every value from the feed is shown with textContent, never parsed as HTML.
// The graph's layout comes from the server (get_graph), so the page draws, never lays out.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const state = {
  ws: null,
  nextId: 1,
  pending: new Map(),        // request id -> callback(reply)
  lastSeq: 0,                // bus offset of the last event seen (for replay on reconnect)
  graph: null,               // get_graph's result
  executions: new Map(),     // execution id -> see newExecution()
  selected: null,
  sessions: [],
  openSession: null,
  eventCount: 0,
};

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};
const svg = (tag, attrs = {}) => {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
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
    const graph = await request("get_graph");
    if (graph.type === "result") { state.graph = graph.result; drawGraph(); }
    const eps = await request("list_entry_points");
    if (eps.type === "result") renderEntryPoints(eps.result.entry_points);
    refreshSessions();
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

// ---- the model: what each execution did, built from its events ---------------------------

function newExecution(event) {
  return {
    stream: event.stream_id, status: "running", node: "",
    nodes: new Map(),        // node id -> idle | running | waiting | done | failed
    traversed: new Set(),    // edge ids
    visits: [],              // {node, attempt, start, end, state, items: [{kind, ...}]}
    messages: [],            // {role: agent | user | result | error, text, node, question}
    waiting: null,           // {node, prompt}
    first: event.timestamp, last: event.timestamp,
    tokensIn: 0, tokensOut: 0, cost: 0,
  };
}

// The page remembers this many executions (the oldest unselected one goes first).
const MAX_EXECUTIONS = 200;

function execution(event) {
  let ex = state.executions.get(event.execution_id);
  if (!ex) {
    ex = newExecution(event);
    state.executions.set(event.execution_id, ex);
    if (!state.selected) state.selected = event.execution_id;
    if (state.executions.size > MAX_EXECUTIONS) {
      const oldest = [...state.executions.keys()].find((id) => id !== state.selected);
      state.executions.delete(oldest);
    }
  }
  return ex;
}

const TERMINAL = {
  execution_completed: "completed", execution_failed: "failed",
  execution_paused: "paused", execution_cancelled: "cancelled",
};

function openVisit(ex, node) {
  for (let i = ex.visits.length - 1; i >= 0; i--) {
    if (ex.visits[i].node === node && ex.visits[i].end === null) return ex.visits[i];
  }
  return null;
}

function lastVisit(ex, node) {
  for (let i = ex.visits.length - 1; i >= 0; i--) if (ex.visits[i].node === node) return ex.visits[i];
  return null;
}

function closeRetry(visit, ts, error) {
  const retry = visit.items.find((i) => i.kind === "retry" && !i.end);
  if (retry) { retry.end = ts; retry.error = error; }
}

function say(ex, role, text, node) {
  const last = ex.messages[ex.messages.length - 1];
  if (role === "agent" && last && last.role === "agent" && last.node === node && !last.closed) {
    last.text += text;
  } else {
    ex.messages.push({ role, text, node, closed: role !== "agent" });
  }
}

function onEvent(event) {
  state.eventCount += 1;
  if (event.type !== "llm_text_delta" && event.type !== "client_output_delta") {
    log(`${event.timestamp} ${event.type} ${event.execution_id || ""} ${event.node_id || ""}`);
  }
  if (!event.execution_id) return;
  const ex = execution(event);
  const data = event.data || {};
  const node = event.node_id;
  const ts = event.timestamp;
  ex.last = ts;
  ex.lastLocal = performance.now();
  const visit = node ? openVisit(ex, node) : null;
  switch (event.type) {
    case "execution_started": case "execution_resumed":
      ex.status = "running"; break;
    case "node_started": {
      ex.node = node; ex.nodes.set(node, "running");
      const last = lastVisit(ex, node);
      if ((data.attempt || 0) > 0 && last && last.visit === (data.visit || 1)) {
        // a retry belongs to the visit it retries: reopen it, nest the attempt under it
        last.end = null; last.state = "running"; last.turnFrom = ts;
        last.items.push({ kind: "retry", attempt: data.attempt, start: ts, end: null });
      } else {
        ex.visits.push({ node, visit: data.visit || 1, start: ts, end: null,
                         state: "running", items: [], turnFrom: ts });
      }
      break;
    }
    case "node_completed":
      ex.nodes.set(node, "done");
      if (visit) { visit.end = ts; visit.state = "done"; closeRetry(visit, ts, null); }
      break;
    case "node_failed":
      ex.nodes.set(node, data.will_retry ? "running" : "failed");
      if (visit) {
        visit.end = ts; visit.state = "failed"; visit.error = data.error;
        closeRetry(visit, ts, data.error);
      }
      break;
    case "edge_traversed":
      markTraversed(ex, data); break;
    case "tool_call_started":
      if (visit) visit.items.push({ kind: "tool", id: data.tool_use_id, name: data.tool_name,
                                    start: ts, end: null });
      break;
    case "tool_call_completed":
      if (visit) {
        const item = visit.items.find((i) => i.kind === "tool" && i.id === data.tool_use_id && !i.end);
        if (item) { item.end = ts; item.error = data.is_error; }
      }
      break;
    case "llm_turn_completed":
      if (visit) {
        visit.items.push({ kind: "turn", iteration: data.iteration, start: visit.turnFrom, end: ts,
                           tokensIn: data.input_tokens || 0, tokensOut: data.output_tokens || 0,
                           cost: data.cost_usd || 0 });
        visit.turnFrom = ts;
      }
      ex.tokensIn += data.input_tokens || 0;
      ex.tokensOut += data.output_tokens || 0;
      ex.cost += data.cost_usd || 0;
      break;
    case "client_output_delta":
      say(ex, "agent", data.content ?? data.delta ?? data.text ?? "", node); break;
    case "client_input_requested": {
      const prompt = data.prompt ?? data.question ?? "";
      ex.waiting = { node, prompt };
      ex.status = "waiting"; ex.nodes.set(node, "waiting");
      if (visit) {
        visit.state = "waiting";
        visit.items.push({ kind: "wait", start: ts, end: null });
      }
      const last = ex.messages[ex.messages.length - 1];
      if (last && last.role === "agent" && last.node === node && last.text.trim() === prompt.trim()) {
        last.question = true; last.closed = true;
      } else if (prompt) {
        ex.messages.push({ role: "agent", text: prompt, node, question: true, closed: true });
      }
      break;
    }
    case "client_input_received":
      ex.waiting = null; ex.status = "running"; ex.nodes.set(node, "running");
      if (visit) {
        visit.state = "running";
        visit.turnFrom = ts;  // the next model turn starts from the answer
        const wait = visit.items.find((i) => i.kind === "wait" && !i.end);
        if (wait) wait.end = ts;
      }
      say(ex, "user", data.content ?? "", node);
      break;
    default:
      if (TERMINAL[event.type]) {
        ex.status = TERMINAL[event.type]; ex.waiting = null; ex.node = node || ex.node;
        if (event.type !== "execution_paused") {  // a paused node stays waiting (resumable)
          for (const [id, s] of ex.nodes) if (s === "running" || s === "waiting") ex.nodes.set(id, "idle");
        }
        if (event.type === "execution_completed" && data.output) {
          say(ex, "result", JSON.stringify(data.output, null, 1), null);
        }
        if (event.type === "execution_failed") say(ex, "error", `failed: ${data.error ?? ""}`, null);
        sessionsSoon();
      }
  }
  // Node states are painted at once: a node that runs for less than a frame still shows.
  if (event.execution_id === state.selected && PAINT_NOW.has(event.type)) paintGraph(ex);
  scheduleRender();
}

const PAINT_NOW = new Set(["node_started", "node_completed", "node_failed", "edge_traversed",
  "client_input_requested", "client_input_received", ...Object.keys(TERMINAL)]);

function markTraversed(ex, data) {
  if (data.edge_id) { ex.traversed.add(data.edge_id); return; }
  if (!state.graph) return;
  for (const e of state.graph.layout.edges) {
    if (e.source === data.source_node && e.target === data.target_node) ex.traversed.add(e.id);
  }
}

// ---- rendering ---------------------------------------------------------------------------

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function render() {
  renderExecutions();
  const ex = state.executions.get(state.selected);
  const label = ex ? `· ${state.selected}` : "";
  $("graph-of").textContent = label;
  $("conversation-of").textContent = label;
  paintGraph(ex);
  renderConversation(ex);
  renderTimeline(ex);
  $("event-count").textContent = String(state.eventCount);
}

function renderExecutions() {
  const list = $("executions");
  list.replaceChildren();
  for (const [id, ex] of [...state.executions].reverse()) {
    const button = el("button", { type: "button" },
      el("span", { className: "sid", textContent: id }),
      el("span", { className: `st-${ex.status}`, textContent: `${ex.status} ${ex.node || ""}` }));
    button.onclick = () => { state.selected = id; render(); };
    const item = el("li", {}, button);
    item.dataset.execution = id;
    item.dataset.status = ex.status;
    if (id === state.selected) item.className = "selected";
    list.append(item);
  }
}

function drawGraph() {
  const g = state.graph;
  $("agent-name").textContent = g.graph_id;
  const { layout } = g;
  const root = svg("svg", { viewBox: `0 0 ${layout.width} ${layout.height}`,
                            role: "img", "aria-label": `graph ${g.graph_id}` });
  root.style.maxWidth = `${Math.max(layout.width * 1.15, 240)}px`;
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
                                 markerWidth: "10", markerHeight: "10", markerUnits: "userSpaceOnUse",
                                 orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#667" }));
  defs.append(marker);
  root.append(defs);
  for (const e of layout.edges) {
    const group = svg("g", { class: "edge" });
    if (e.condition === "on_failure" || e.condition === "conditional") group.classList.add("dashed");
    group.dataset.edgeId = e.id;
    group.dataset.traversed = "false";
    group.append(svg("polyline", { points: e.points.map((p) => p.join(",")).join(" "),
                                   "marker-end": "url(#arrow)" }));
    if (e.label) {
      const text = svg("text", { x: e.label_x, y: e.label_y });
      text.textContent = e.label;
      group.append(text);
    }
    root.append(group);
  }
  for (const n of layout.nodes) {
    const group = svg("g", { class: ["node", ...n.roles].join(" "), tabindex: "0" });
    group.dataset.nodeId = n.id;
    group.dataset.state = "idle";
    const rect = svg("rect", { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width,
                               height: n.height, rx: 8 });
    const title = svg("text", { x: n.x, y: n.y - 3, "text-anchor": "middle", class: "title" });
    title.textContent = n.label;
    const sub = svg("text", { x: n.x, y: n.y + 13, "text-anchor": "middle", class: "sub" });
    sub.textContent = [n.node_type, ...n.roles].join(" · ");
    const badge = svg("text", { x: n.x + n.width / 2 - 6, y: n.y - n.height / 2 + 13,
                                "text-anchor": "end", class: "badge" });
    const tip = svg("title");
    group.append(rect, title, sub, badge, tip);
    root.append(group);
  }
  $("graph").replaceChildren(root);
  render();
}

function paintGraph(ex) {
  for (const group of document.querySelectorAll("#graph .node")) {
    const id = group.dataset.nodeId;
    const s = (ex && ex.nodes.get(id)) || "idle";
    group.dataset.state = s;
    group.setAttribute("aria-label", `${id}: ${s}`);
    const visits = ex ? ex.visits.filter((v) => v.node === id) : [];
    const last = visits[visits.length - 1];
    group.querySelector(".badge").textContent = visits.length > 1 ? `×${visits.length}` : "";
    group.querySelector("title").textContent = `${id}: ${s}` +
      (last ? ` · ${visits.length} visit(s), last ${last.end ? secs(last.start, last.end) : "running"}` : "");
  }
  for (const group of document.querySelectorAll("#graph .edge")) {
    group.dataset.traversed = String(Boolean(ex && ex.traversed.has(group.dataset.edgeId)));
  }
}

function renderConversation(ex) {
  const box = $("conversation");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 30;
  box.replaceChildren();
  if (ex) {
    for (const m of ex.messages) {
      const who = m.role === "user" ? "you" : m.role === "result" ? "result" : (m.node || "agent");
      const div = el("div", { className: `msg ${m.role}${m.question ? " question" : ""}` },
        el("span", { className: "who", textContent: who }), m.text);
      div.dataset.role = m.role;
      box.append(div);
    }
  }
  if (!box.childElementCount) {
    box.append(el("p", { className: "muted", textContent: ex ? "no client-facing output yet" : "run an entry point to start" }));
  }
  if (atBottom) box.scrollTop = box.scrollHeight;
  const waiting = ex && ex.waiting;
  const form = $("input-form");
  const wasVisible = form.classList.contains("visible");
  form.className = waiting ? "visible" : "";
  $("input-prompt").textContent = waiting ? `${waiting.node} is waiting for your reply` : "";
  if (waiting && !wasVisible) $("input-text").focus();
}

// Milliseconds since the epoch, keeping the microseconds the events carry.
const ms = (iso) => {
  const micro = /\.\d{3}(\d{1,3})/.exec(iso);
  return Date.parse(iso) + (micro ? Number(micro[1].padEnd(3, "0")) / 1000 : 0);
};
const secs = (a, b) => {
  const d = ms(b) - ms(a);
  return d < 1000 ? `${d.toFixed(d < 10 ? 2 : 0)} ms` : `${(d / 1000).toFixed(2)} s`;
};

function renderTimeline(ex) {
  const box = $("timeline");
  box.replaceChildren();
  if (!ex) { $("totals").textContent = ""; return; }
  const t0 = ms(ex.first);
  // While it runs, the axis reaches "now": the last event's time plus what passed here since.
  const live = ex.status === "running" || ex.status === "waiting";
  const now = ms(ex.last) + (live ? performance.now() - ex.lastLocal : 0);
  const t1 = Math.max(now, t0 + 1);
  const span = t1 - t0;
  const place = (bar, start, end) => {
    bar.style.left = `${((ms(start) - t0) / span) * 100}%`;
    bar.style.width = `${Math.max((((end ? ms(end) : now) - ms(start)) / span) * 100, 0.4)}%`;
  };
  for (const v of ex.visits) {
    const bar = el("div", { className: `tl-bar ${v.end ? v.state : ex.nodes.get(v.node) || "running"}` });
    bar.dataset.nodeId = v.node;
    bar.dataset.start = v.start;
    if (v.end) bar.dataset.end = v.end;
    place(bar, v.start, v.end);
    const retries = v.items.filter((i) => i.kind === "retry").length;
    const what = `${v.node}${v.visit > 1 ? ` #${v.visit}` : ""}${retries ? ` (${retries + 1} attempts)` : ""}`;
    bar.title = `${what}: ${v.end ? secs(v.start, v.end) : "running"}${v.error ? ` — ${v.error}` : ""}`;
    const row = el("div", { className: "tl-row visit" },
      el("span", { className: "label", textContent: `${what} ${v.end ? secs(v.start, v.end) : "…"}` }),
      el("div", { className: "tl-track" }, bar));
    box.append(row);
    for (const item of v.items) {
      const sub = el("div", { className: `tl-bar ${item.kind}` });
      place(sub, item.start, item.end);
      sub.dataset.kind = item.kind;
      let text;
      if (item.kind === "turn") {
        text = `model turn ${item.iteration ?? ""}: ${item.tokensIn}+${item.tokensOut} tok` +
               (item.cost ? ` $${item.cost.toFixed(4)}` : "");
      } else if (item.kind === "retry") {
        text = `retry ${item.attempt}${item.error ? `: ${item.error}` : ""}`;
      } else if (item.kind === "wait") {
        text = `waiting for input${item.end ? ` ${secs(item.start, item.end)}` : " …"}`;
      } else {
        text = `tool ${item.name}${item.error ? " (error)" : ""}`;
      }
      sub.title = text;
      box.append(el("div", { className: "tl-row sub" },
        el("span", { className: "label", textContent: text }),
        el("div", { className: "tl-track" }, sub)));
    }
  }
  $("totals").textContent = `${ex.visits.length} node visits · ${secs(ex.first, ex.last)} · ` +
    `${ex.tokensIn}+${ex.tokensOut} tokens · $${ex.cost.toFixed(4)}`;
}

// ---- entry points, input, sessions ----------------------------------------------------------

function renderEntryPoints(entryPoints) {
  const box = $("entry-points");
  box.replaceChildren();
  for (const ep of entryPoints) {
    const input = el("textarea", { value: "{}", title: `input of ${ep.id} (JSON object)` });
    input.setAttribute("aria-label", `input of ${ep.id} (JSON object)`);
    input.dataset.entryPoint = ep.id;
    const button = el("button", { type: "button", textContent: `Run ${ep.name || ep.id}` });
    button.dataset.trigger = ep.id;
    button.onclick = () => trigger(ep.id, input.value);
    const about = el("div", { className: "muted", textContent: `${ep.id} → ${ep.entry_node} (${ep.trigger_type})` });
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

// Executions that end in a burst refresh the sessions list once, a second later.
let sessionsTimer = null;
function sessionsSoon() {
  if (sessionsTimer === null) {
    sessionsTimer = setTimeout(() => { sessionsTimer = null; refreshSessions(); }, 1000);
  }
}

async function refreshSessions() {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  const reply = await request("list_sessions", { limit: 50 });
  if (reply.type !== "result") return;
  state.sessions = reply.result.sessions;
  const body = $("sessions");
  body.replaceChildren();
  for (const s of state.sessions) {
    const open = el("button", { type: "button", textContent: s.session_id, className: "sid" });
    open.onclick = () => openSession(s.session_id);
    const updated = el("td", { textContent: (s.updated_at || "").slice(11, 19),
                               title: s.updated_at || "" });
    const row = el("tr", {}, el("td", {}, open),
      el("td", { textContent: s.status, className: `st-${s.status}` }),
      el("td", { textContent: s.current_node || "" }), updated);
    row.dataset.session = s.session_id;
    row.dataset.status = s.status;
    body.append(row);
  }
  if (state.openSession) openSession(state.openSession);
}

const RESUMABLE = new Set(["paused", "cancelled", "failed"]);

async function openSession(id) {
  state.openSession = id;
  const reply = await request("get_session", { session_id: id });
  const box = $("session-detail");
  box.hidden = false;
  if (reply.type !== "result") { box.replaceChildren(el("p", { textContent: reply.message })); return; }
  const { session, path, checkpoints, output } = reply.result;
  const steps = el("ol", {});
  for (const cp of checkpoints) {
    steps.append(el("li", { textContent: `${cp.kind} ${cp.node_id || ""} · ${cp.created_at.slice(11, 23)}` }));
  }
  const close = el("button", { type: "button", className: "small", textContent: "close" });
  close.onclick = () => { state.openSession = null; box.hidden = true; };
  const parts = [
    el("div", {}, el("strong", { className: "sid", textContent: session.session_id }), " ", close),
    el("div", { textContent: `${session.status} · entry ${session.entry_point} · node ${session.current_node || "-"}` }),
    el("div", { className: "muted", textContent: "folder:" }),
    el("pre", { className: "path", textContent: path }),
    el("div", { className: "muted", textContent: `checkpoints (${checkpoints.length}):` }), steps,
    el("div", { className: "muted", textContent: "output:" }),
    el("pre", { className: "output", textContent: JSON.stringify(output, null, 1) }),
  ];
  if (session.error) parts.push(el("pre", { textContent: session.error }));
  if (RESUMABLE.has(session.status)) {
    const resume = el("button", { type: "button", textContent: "Resume" });
    resume.dataset.resume = session.session_id;
    resume.onclick = async () => {
      const r = await request("resume_session", { session_id: session.session_id });
      if (r.type === "result") { state.selected = r.result.execution_id; render(); }
    };
    parts.push(resume);
  }
  box.dataset.session = session.session_id;
  box.replaceChildren(...parts);
}

$("sessions-refresh").onclick = () => refreshSessions();

function log(text) {
  const box = $("log");
  box.append(el("div", { textContent: text }));
  while (box.childElementCount > 500) box.firstElementChild.remove();
  box.scrollTop = box.scrollHeight;
}

// A running execution's timeline keeps moving between events.
setInterval(() => {
  const ex = state.executions.get(state.selected);
  if (ex && (ex.status === "running" || ex.status === "waiting")) renderTimeline(ex);
}, 1000);

connect().catch((err) => showError(`cannot reach the feed: ${err.message}`));
