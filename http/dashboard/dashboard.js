// The oncue dashboard: plain JavaScript, no build step, no network but this server.
// Live through GET /api/v1/events (read with fetch, so it can send the bearer token and
// Last-Event-ID); everything else is the JSON API. Redraws are batched: events only mark what
// changed, and one animation frame redraws it, so 1,000 events a second cost a few redraws.
"use strict";

const PAGE_SIZE = 25;
const CHART_SECONDS = 120;
const DURATIONS_KEPT = 500; // per type, for p50/p95
const REFETCH_EVERY = 1000; // ms: the most often a page or a detail is fetched again
const POLL_EVERY = 5000; // ms: stats, workers and the tree
const BULK_ROUNDS = 1000; // requests one bulk action may take (each up to 1,000 tasks)
const PRIORITY_NAMES = { 0: "low", 1: "normal", 2: "high", 3: "critical" };

const state = {
  token: sessionStorage.getItem("oncue.token"),
  me: null,
  lastEventId: null,
  stream: null, // the AbortController of the event stream
  filters: { status: "", type: "" },
  cursors: [null], // the cursor of each page seen; the last one is the current page
  nextCursor: null,
  tasks: [], // the current page
  detail: null, // the task shown in the detail view
  stats: null,
  workers: [],
  tree: [],
  actorEvents: [],
  buckets: new Map(), // second -> {ok, bad}: tasks finished per second
  started: new Map(), // task id -> ms when it started running
  durations: new Map(), // type -> [seconds, ...]
  dirty: new Set(),
  frame: 0,
  timers: {},
};

const $ = (selector) => document.querySelector(selector);

class ApiFailure extends Error {}
class NeedsToken extends Error {}

async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    askToken(state.token ? "That token was refused." : "");
    throw new NeedsToken();
  }
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    const error = data && data.error ? data.error : { message: response.statusText };
    throw new ApiFailure(error.field ? `${error.field}: ${error.message}` : error.message);
  }
  return data;
}

function say(text) {
  $("#message").textContent = text;
  clearTimeout(state.timers.message);
  state.timers.message = setTimeout(() => ($("#message").textContent = ""), 6000);
}

function guarded(action) {
  return async (...args) => {
    try {
      await action(...args);
    } catch (error) {
      if (!(error instanceof NeedsToken)) say(error.message);
    }
  };
}

// -- auth -------------------------------------------------------------------------------------

function askToken(problem) {
  $("#token-error").textContent = problem;
  const dialog = $("#token-dialog");
  if (!dialog.open) dialog.showModal();
}

function useToken(event) {
  event.preventDefault();
  state.token = $("#token-input").value.trim();
  sessionStorage.setItem("oncue.token", state.token);
  $("#token-dialog").close();
  start();
}

function forgetToken() {
  sessionStorage.removeItem("oncue.token");
  state.token = null;
  if (state.stream) state.stream.abort();
  location.reload();
}

// -- the event stream -------------------------------------------------------------------------

async function follow() {
  for (;;) {
    const controller = new AbortController();
    state.stream = controller;
    try {
      const headers = { Accept: "text/event-stream" };
      if (state.token) headers.Authorization = `Bearer ${state.token}`;
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const response = await fetch("/api/v1/events", { headers, signal: controller.signal });
      if (response.status === 401) {
        askToken("That token was refused.");
        return;
      }
      if (response.ok) await readStream(response.body.getReader());
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function readStream(reader) {
  const decoder = new TextDecoder();
  let buffer = "";
  setLive(true);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      onFrame(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
}

function onFrame(raw) {
  let kind = "message";
  let data = null;
  let id = null;
  for (const line of raw.split("\n")) {
    const colon = line.indexOf(":");
    if (colon === 0) continue; // a comment: the heartbeat
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (name === "event") kind = value;
    else if (name === "data") data = JSON.parse(value);
    else if (name === "id") id = value;
  }
  if (id) state.lastEventId = id;
  if (kind === "task") onTaskEvent(data);
  else if (kind === "actor") onActorEvent(data);
  else if (kind === "reset") refreshAll();
}

function setLive(live) {
  const badge = $("#live");
  badge.textContent = live ? "live" : "offline";
  badge.className = `badge ${live ? "on" : "off"}`;
}

function onTaskEvent(event) {
  const at = Date.parse(event.at);
  if (event.status === "running") state.started.set(event.id, at);
  if (event.status === "completed" || event.status === "failed") {
    const second = Math.floor(at / 1000);
    const bucket = state.buckets.get(second) || { ok: 0, bad: 0 };
    bucket[event.status === "completed" ? "ok" : "bad"] += 1;
    state.buckets.set(second, bucket);
    const began = state.started.get(event.id);
    if (began !== undefined && event.status === "completed") keepDuration(event.type, at - began);
  }
  if (["completed", "failed", "cancelled"].includes(event.status)) state.started.delete(event.id);
  const row = state.tasks.find((task) => task.id === event.id);
  if (row) {
    Object.assign(row, { status: event.status, attempts: event.attempt, worker: event.worker });
    if (event.error) row.error = { type: "", message: event.error };
    mark("tasks");
  } else if (state.cursors.length === 1 && matchesFilters(event)) {
    refetchSoon("page", loadPage); // a new task on the first page
  }
  if (state.detail && state.detail.id === event.id) refetchSoon("detail", reloadDetail);
  refetchSoon("workers", loadWorkers); // stats are polled: on PostgreSQL they are a count
  mark("stats"); // the p50/p95 columns
  mark("chart");
}

function onActorEvent(event) {
  const when = new Date().toLocaleTimeString();
  const error = event.error ? ` ${event.error}` : "";
  state.actorEvents.unshift(`${when} ${event.path} ${event.kind} (restarts ${event.restarts})${error}`);
  state.actorEvents.length = Math.min(state.actorEvents.length, 50);
  mark("tree");
  refetchSoon("tree", loadTree);
}

function matchesFilters(event) {
  const { status, type } = state.filters;
  return (!status || event.status === status) && (!type || event.type === type);
}

function keepDuration(type, milliseconds) {
  const kept = state.durations.get(type) || [];
  kept.push(milliseconds / 1000);
  if (kept.length > DURATIONS_KEPT) kept.shift();
  state.durations.set(type, kept);
}

// -- batched redraws --------------------------------------------------------------------------

function mark(part) {
  state.dirty.add(part);
  if (!state.frame) state.frame = requestAnimationFrame(redraw);
}

function redraw() {
  state.frame = 0;
  const dirty = state.dirty;
  state.dirty = new Set();
  if (dirty.has("stats")) drawStats();
  if (dirty.has("chart")) drawChart();
  if (dirty.has("workers")) drawWorkers();
  if (dirty.has("tree")) drawTree();
  if (dirty.has("tasks")) drawTasks();
  if (dirty.has("detail")) drawDetail();
}

function refetchSoon(name, load) {
  if (state.timers[name]) return; // one fetch per REFETCH_EVERY at most
  state.timers[name] = setTimeout(() => {
    state.timers[name] = null;
    guarded(load)();
  }, REFETCH_EVERY);
}

// -- loading ----------------------------------------------------------------------------------

async function loadStats() {
  state.stats = await api("GET", "/api/v1/stats");
  mark("stats");
}

async function loadWorkers() {
  state.workers = (await api("GET", "/api/v1/workers")).workers;
  mark("workers");
}

async function loadTree() {
  if (!state.me || !state.me.admin) return;
  state.tree = (await api("GET", "/api/v1/tree")).actors;
  mark("tree");
}

async function loadPage() {
  const query = new URLSearchParams({ limit: PAGE_SIZE });
  if (state.filters.status) query.set("status", state.filters.status);
  if (state.filters.type) query.set("type", state.filters.type);
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) query.set("cursor", cursor);
  const page = await api("GET", `/api/v1/tasks?${query}`);
  state.tasks = page.tasks;
  state.nextCursor = page.next_cursor;
  mark("tasks");
}

async function openDetail(taskId) {
  state.detail = await api("GET", `/api/v1/tasks/${encodeURIComponent(taskId)}`);
  mark("detail");
}

async function reloadDetail() {
  if (state.detail) await openDetail(state.detail.id);
}

async function refreshAll() {
  await Promise.all([loadStats(), loadWorkers(), loadTree(), loadPage(), reloadDetail()]);
}

// -- drawing ----------------------------------------------------------------------------------

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function drawStats() {
  const stats = state.stats;
  if (!stats) return;
  $("#stat-queued").textContent = stats.queue_length;
  $("#stat-running").textContent = stats.running;
  $("#stat-completed").textContent = stats.successful;
  $("#stat-failed").textContent = stats.failed;
  $("#paused").textContent = stats.paused ? "paused" : "";
  drawPriorities(stats.queued_by_priority || {});
  const body = $("#by-type tbody");
  body.replaceChildren();
  for (const [type, counts] of Object.entries(stats.by_type).sort()) {
    const row = body.insertRow();
    cell(row, type);
    cell(row, (counts.pending || 0) + (counts.retrying || 0));
    cell(row, counts.running || 0);
    cell(row, counts.completed || 0);
    cell(row, counts.failed || 0);
    const kept = (state.durations.get(type) || []).slice().sort((a, b) => a - b);
    cell(row, kept.length ? seconds(quantile(kept, 0.5)) : "");
    cell(row, kept.length ? seconds(quantile(kept, 0.95)) : "");
  }
}

// The waiting tasks by priority, highest first, each with a bar scaled to the longest.
function drawPriorities(queued) {
  const body = $("#by-priority tbody");
  body.replaceChildren();
  const entries = Object.entries(queued).map(([p, n]) => [Number(p), n]).sort((a, b) => b[0] - a[0]);
  const most = Math.max(1, ...entries.map(([, n]) => n));
  for (const [priority, count] of entries) {
    const row = body.insertRow();
    row.dataset.priority = priority;
    const name = PRIORITY_NAMES[priority];
    cell(row, name ? `${name} (${priority})` : priority);
    cell(row, count, "count");
    const bar = document.createElement("div");
    bar.className = "depth";
    bar.style.width = `${(100 * count) / most}%`;
    cell(row, "", "bar-cell").append(bar);
  }
  if (!entries.length) cell(body.insertRow(), "nothing waiting", "note").colSpan = 3;
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function seconds(value) {
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(1)} s`;
}

function drawChart() {
  const canvas = $("#chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  context.clearRect(0, 0, width, height);
  const now = Math.floor(Date.now() / 1000);
  for (const second of state.buckets.keys()) {
    if (second < now - CHART_SECONDS) state.buckets.delete(second);
  }
  const series = { ok: [], bad: [] };
  let top = 1;
  for (let second = now - CHART_SECONDS + 1; second <= now; second += 1) {
    const bucket = state.buckets.get(second) || { ok: 0, bad: 0 };
    series.ok.push(bucket.ok);
    series.bad.push(bucket.bad);
    top = Math.max(top, bucket.ok, bucket.bad);
  }
  const styles = getComputedStyle(document.documentElement);
  context.fillStyle = styles.getPropertyValue("--muted");
  context.font = "11px system-ui, sans-serif";
  context.fillText(`${top}/s`, 4, 12);
  for (const [name, colour] of [["ok", "--ok"], ["bad", "--bad"]]) {
    context.strokeStyle = styles.getPropertyValue(colour);
    context.lineWidth = 1.5;
    context.beginPath();
    series[name].forEach((value, index) => {
      const x = (index / (CHART_SECONDS - 1)) * (width - 2) + 1;
      const y = height - 2 - (value / top) * (height - 18);
      if (index === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
  }
  let ok = 0;
  let bad = 0;
  for (const [second, bucket] of state.buckets) {
    if (second > now - 60) {
      ok += bucket.ok;
      bad += bucket.bad;
    }
  }
  $("#stat-failure-rate").textContent = ok + bad ? `${Math.round((100 * bad) / (ok + bad))}%` : "-";
}

function drawWorkers() {
  const body = $("#workers tbody");
  body.replaceChildren();
  for (const worker of state.workers) {
    const row = body.insertRow();
    cell(row, worker.name);
    cell(row, worker.state, `status ${worker.state === "busy" ? "running" : ""}`);
    cell(row, worker.current_task);
    const began = worker.current_task ? state.started.get(worker.current_task) : undefined;
    cell(row, began === undefined ? "" : seconds(Math.max(0, Date.now() - began) / 1000));
    cell(row, worker.tasks_done);
    cell(row, worker.restarts);
    cell(row, worker.last_error, "error");
  }
  if (document.activeElement !== $("#pool-size")) $("#pool-size").value = state.workers.length;
}

function drawTree() {
  const list = $("#tree");
  list.replaceChildren();
  for (const actor of state.tree) {
    const item = document.createElement("li");
    item.className = `depth-${actor.path.split("/").length - 2}`;
    const error = actor.last_error ? ` — ${actor.last_error}` : "";
    item.textContent = `${actor.name}: ${actor.state}, restarts ${actor.restarts}${error}`;
    list.append(item);
  }
  const events = $("#actor-events");
  events.replaceChildren(
    ...state.actorEvents.map((text) => Object.assign(document.createElement("li"), { textContent: text })),
  );
}

function drawTasks() {
  const body = $("#tasks tbody");
  body.replaceChildren();
  for (const task of state.tasks) {
    const row = body.insertRow();
    row.dataset.id = task.id;
    cell(row, task.number);
    cell(row, task.type);
    cell(row, task.status, `status ${task.status}`);
    cell(row, task.attempts);
    cell(row, task.worker);
    cell(row, task.created_at ? new Date(task.created_at).toLocaleString() : "");
    cell(row, task.error ? `${task.error.type}${task.error.type ? ": " : ""}${task.error.message}` : "", "error");
    row.addEventListener("click", guarded(() => openDetail(task.id)));
  }
  const page = state.cursors.length;
  $("#page-info").textContent = `page ${page}${state.nextCursor ? "" : " (last)"}`;
  $("#prev-page").disabled = page === 1;
  $("#first-page").disabled = page === 1;
  $("#next-page").disabled = !state.nextCursor;
}

function drawDetail() {
  const task = state.detail;
  $("#detail").hidden = !task;
  if (!task) return;
  $("#detail-number").textContent = `#${task.number}`;
  const status = $("#detail-status");
  status.textContent = task.status;
  status.className = `status ${task.status}`;
  const finished = ["completed", "failed", "cancelled"].includes(task.status);
  $("#detail-cancel").disabled = finished;
  $("#detail-retry").disabled = task.status !== "failed";
  $("#detail-delete").disabled = !finished;
  const fields = $("#detail-fields");
  fields.replaceChildren();
  for (const name of ["id", "type", "priority", "attempts", "max_retries", "worker", "key",
    "created_at", "started_at", "finished_at", "run_at"]) {
    if (task[name] === null || task[name] === undefined) continue;
    fields.append(Object.assign(document.createElement("dt"), { textContent: name }));
    fields.append(Object.assign(document.createElement("dd"), { textContent: String(task[name]) }));
  }
  const progress = $("#detail-progress");
  progress.hidden = !task.progress;
  if (task.progress) {
    progress.querySelector(".bar").style.setProperty("--done", `${Math.round(task.progress.fraction * 100)}%`);
    progress.querySelector(".note").textContent =
      `${Math.round(task.progress.fraction * 100)}% ${task.progress.message || ""}`;
  }
  $("#detail-payload").textContent = JSON.stringify(task.payload, null, 2);
  $("#detail-result").textContent = task.result === null ? "" : JSON.stringify(task.result, null, 2);
  const error = task.error;
  $("#detail-error").textContent = error
    ? `${error.type}: ${error.message}${error.traceback ? `\n\n${error.traceback}` : ""}`
    : "";
  const history = $("#detail-history");
  history.replaceChildren();
  for (const step of task.history || []) {
    const item = document.createElement("li");
    const on = step.worker ? ` on ${step.worker}` : "";
    const why = step.error ? ` — ${step.error}` : "";
    item.textContent = `${new Date(step.at).toLocaleString()} ${step.status}${on}${why}`;
    history.append(item);
  }
}

// -- actions ----------------------------------------------------------------------------------

async function taskAction(action) {
  const task = state.detail;
  if (!task) return;
  const path = `/api/v1/tasks/${encodeURIComponent(task.id)}`;
  if (action === "delete") {
    if (!confirm(`Delete task #${task.number}?`)) return;
    await api("DELETE", path);
    state.detail = null;
    mark("detail");
  } else {
    state.detail = await api("POST", `${path}/${action}`);
    mark("detail");
  }
  say(`task #${task.number}: ${action} done`);
  await loadPage();
}

async function runBulk(action, filter) {
  const shown = Object.entries(filter).map(([name, value]) => `${name} ${value}`).join(", ");
  if (!confirm(`${action} every task${shown ? ` with ${shown}` : ""}?`)) return;
  let cursor = null;
  let done = 0;
  let failed = 0;
  for (let round = 0; round < BULK_ROUNDS; round += 1) {
    const body = { action, filter };
    if (cursor) body.cursor = cursor;
    const answer = await api("POST", "/api/v1/tasks/bulk", body);
    done += answer.done;
    failed += answer.failed.length;
    cursor = answer.next_cursor;
    $("#bulk-result").textContent = `${action}: ${done} done, ${failed} changed meanwhile${cursor ? "…" : ""}`;
    if (!cursor) break;
  }
  say(`${action}: ${done} tasks`);
  await refreshAll();
}

function bulkFilter() {
  const filter = {};
  if (state.filters.type) filter.type = state.filters.type;
  if (state.filters.status) filter.status = state.filters.status;
  const after = $("#bulk-after").value;
  const before = $("#bulk-before").value;
  if (after) filter.created_after = new Date(after).toISOString();
  if (before) filter.created_before = new Date(before).toISOString();
  return filter;
}

async function retryFailed() {
  const filter = { status: "failed" };
  if (state.filters.type) filter.type = state.filters.type;
  await runBulk("retry", filter);
}

async function applyFilters(event) {
  event.preventDefault();
  state.filters = { status: $("#filter-status").value, type: $("#filter-type").value.trim() };
  state.cursors = [null];
  await loadPage();
}

async function resize() {
  await api("PUT", "/api/v1/workers", { count: Number($("#pool-size").value) });
  await loadWorkers();
  await loadTree();
}

// -- start ------------------------------------------------------------------------------------

function wire() {
  $("#token-form").addEventListener("submit", useToken);
  $("#logout").addEventListener("click", forgetToken);
  $("#filters").addEventListener("submit", guarded(applyFilters));
  $("#next-page").addEventListener("click", guarded(async () => {
    state.cursors.push(state.nextCursor);
    await loadPage();
  }));
  $("#prev-page").addEventListener("click", guarded(async () => {
    if (state.cursors.length > 1) state.cursors.pop();
    await loadPage();
  }));
  $("#first-page").addEventListener("click", guarded(async () => {
    state.cursors = [null];
    await loadPage();
  }));
  for (const action of ["cancel", "retry", "delete"]) {
    $(`#detail-${action}`).addEventListener("click", guarded(() => taskAction(action)));
  }
  $("#detail-close").addEventListener("click", () => {
    state.detail = null;
    mark("detail");
  });
  $("#retry-failed").addEventListener("click", guarded(retryFailed));
  $("#bulk-run").addEventListener("click", guarded(() => runBulk($("#bulk-action").value, bulkFilter())));
  $("#pause").addEventListener("click", guarded(async () => {
    await api("POST", "/api/v1/queue/pause");
    await loadStats();
  }));
  $("#resume").addEventListener("click", guarded(async () => {
    await api("POST", "/api/v1/queue/resume");
    await loadStats();
  }));
  $("#resize").addEventListener("click", guarded(resize));
}

async function start() {
  try {
    state.me = await api("GET", "/api/v1/me");
  } catch (error) {
    if (!(error instanceof NeedsToken)) say(error.message);
    return;
  }
  document.body.classList.toggle("admin-hidden", !state.me.admin);
  $("#who").textContent = state.me.auth ? `${state.me.subject}${state.me.admin ? " (admin)" : ""}` : "";
  $("#logout").hidden = !state.me.auth;
  follow();
  await guarded(refreshAll)();
  clearInterval(state.timers.poll);
  state.timers.poll = setInterval(guarded(async () => {
    await Promise.all([loadStats(), loadWorkers(), loadTree()]);
  }), POLL_EVERY);
  clearInterval(state.timers.chart);
  state.timers.chart = setInterval(() => mark("chart"), 1000);
}

wire();
start();
