// The dashboard: plain DOM code, no framework. Every request carries the token kept in this
// browser (localStorage) as `Authorization: Bearer`; the event stream is read with fetch,
// since EventSource cannot send that header. Nothing from the server is put in the page as
// HTML: job data is text.
"use strict";

const TOKEN_KEY = "kaggle-solver-token";
const $ = (id) => document.getElementById(id);

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token()) h.Authorization = "Bearer " + token();
  return h;
}

class Unauthorized extends Error {}

async function api(method, path, extra) {
  const response = await fetch(path, Object.assign({ method, headers: headers() }, extra || {}));
  if (response.status === 401) throw new Unauthorized();
  return response;
}

async function json(method, path) {
  const response = await api(method, path);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || response.status + " " + response.statusText);
  return body;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child != null) node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function stateBadge(state) { return el("span", { class: "state " + state }, state); }

function when(text) {
  if (!text) return "";
  const d = new Date(text);
  return isNaN(d) ? text : d.toLocaleString();
}

function progress(job) {
  if (job.status === "processing") {
    const attempt = job.attempt ? `attempt ${job.attempt}${job.max_attempts ? "/" + job.max_attempts : ""}` : "";
    return [job.stage || "", attempt].filter(Boolean).join(", ");
  }
  if (job.status === "failed") return job.message || "";
  return job.attempt ? `${job.attempt} attempt(s)` : "";
}

function showLogin(reason) {
  for (const id of ["list-view", "job-view"]) $(id).hidden = true;
  $("login").hidden = false;
  $("logout").hidden = !token();
  $("login-error").textContent = reason || "";
  stopTimers();
}

let timers = [];
let stream = null;
function stopTimers() {
  timers.forEach(clearInterval); timers = [];
  if (stream) { stream.abort(); stream = null; }
}

async function guarded(work) {
  try { await work(); } catch (e) {
    if (e instanceof Unauthorized) showLogin(token() ? "That token was refused." : "");
    else throw e;
  }
}

// The job list.
let cursor = null;
async function loadJobs(append) {
  const state = $("state-filter").value;
  const params = new URLSearchParams({ limit: "25" });
  if (state) params.set("state", state);
  if (append && cursor != null) params.set("cursor", String(cursor));
  const page = await json("GET", "/jobs?" + params);
  const body = $("jobs").tBodies[0];
  if (!append) body.replaceChildren();
  for (const job of page.jobs) {
    body.append(el("tr", { "data-job": job.job_id },
      el("td", {}, el("a", { href: "/jobs/" + job.job_id }, job.job_id.slice(0, 8))),
      el("td", { class: "url" }, job.url),
      el("td", {}, stateBadge(job.status)),
      el("td", { class: "optional" }, progress(job)),
      el("td", { class: "optional" }, job.validation_score != null ? job.validation_score.toFixed(5) : ""),
      el("td", { class: "optional" }, when(job.created_at))));
  }
  cursor = page.next_cursor;
  $("more").hidden = cursor == null;
  $("empty").hidden = body.rows.length > 0;
}

async function showList() {
  $("login").hidden = true; $("job-view").hidden = true;
  await loadJobs(false);
  $("list-view").hidden = false;
  timers.push(setInterval(() => guarded(() => loadJobs(false)), 2000));
}

async function submitJob(event) {
  event.preventDefault();
  const params = new URLSearchParams({ url: $("url").value.trim() });
  if ($("policy").value.trim()) params.set("policy", $("policy").value.trim());
  const response = await api("POST", "/run?" + params);
  const body = await response.json().catch(() => ({}));
  const result = $("submit-result");
  if (response.status === 202) {
    result.className = "";
    result.replaceChildren("Accepted: ", el("a", { href: "/jobs/" + body.job_id, id: "submitted" }, body.job_id));
    $("url").value = "";
    await loadJobs(false);
  } else {
    result.className = "error";
    result.textContent = body.detail || response.status + " " + response.statusText;
  }
}

// One job.
async function refreshJob(id) {
  const job = await json("GET", "/status/" + id);
  $("job-state").replaceChildren(stateBadge(job.status));
  $("job-state").dataset.state = job.status;
  $("job-message").textContent = job.message || "";
  $("download").hidden = job.status !== "completed";
  $("cancel").hidden = job.status === "completed" || job.status === "failed";
  $("stop").hidden = job.status !== "processing" || job.candidates_tried == null;
  return job;
}

async function refreshAttempts(id) {
  const log = await json("GET", `/jobs/${id}/logs`);
  const box = $("attempts");
  if (!log.attempts.length) return;
  box.replaceChildren(...log.attempts.map((a, i) => {
    const ok = !a.error;
    const facts = [a.generator, a.backend, a.wall_ms != null ? (a.wall_ms / 1000).toFixed(1) + " s" : null,
      a.exit_code != null ? "exit " + a.exit_code : null, a.limit ? "limit: " + a.limit : null].filter(Boolean).join(" · ");
    const details = el("details", { class: "attempt", "data-attempt": String(a.attempt) },
      el("summary", {}, `Attempt ${a.attempt}: `, el("strong", { class: ok ? "ok" : "error" }, ok ? "succeeded" : "failed"),
        el("span", { class: "muted" }, " " + facts)),
      el("div", { class: "body" },
        a.error ? el("p", { class: "error" }, a.error) : null,
        el("h3", {}, "Code"), el("pre", { class: "code" }, a.code || "(no code)"),
        a.stderr_tail ? el("h3", {}, "stderr (tail)") : null,
        a.stderr_tail ? el("pre", { class: "tail" }, a.stderr_tail) : null,
        a.stdout_tail ? el("h3", {}, "stdout (tail)") : null,
        a.stdout_tail ? el("pre", { class: "tail" }, a.stdout_tail) : null));
    if (i === log.attempts.length - 1 && !ok) details.open = true;
    return details;
  }));
}

function addEvent(event) {
  const item = el("li", { class: event.kind, "data-kind": event.kind },
    el("span", { class: "kind" }, event.kind), el("span", {}, event.message));
  if (event.stage) item.dataset.stage = event.stage;
  $("timeline").append(item);
}

// Reads the job's event stream with fetch (for the Authorization header), reconnecting with
// Last-Event-ID until the terminal event.
async function follow(id, onEvent) {
  let last = 0;
  for (;;) {
    const controller = new AbortController();
    stream = controller;
    const extra = last ? { "Last-Event-ID": String(last) } : {};
    let response;
    try {
      response = await fetch(`/jobs/${id}/events`, { headers: headers(extra), signal: controller.signal });
    } catch (e) {
      if (controller.signal.aborted) return;
      await new Promise((r) => setTimeout(r, 1000)); continue;
    }
    if (response.status === 401) throw new Unauthorized();
    if (!response.ok) return;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", ended = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          let kind = "message", data = "", seq = null;
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) kind = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
            else if (line.startsWith("id:")) seq = Number(line.slice(3).trim());
          }
          if (!data) continue;
          if (seq) last = seq;
          const event = JSON.parse(data);
          if (kind === "terminal" || kind === "error") ended = true;
          await onEvent(kind, event);
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
    }
    if (ended) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function showJob(id) {
  $("login").hidden = true; $("list-view").hidden = true;
  $("job-title").textContent = "Job " + id.slice(0, 8);
  $("timeline").replaceChildren();
  const job = await refreshJob(id);
  await refreshAttempts(id);
  $("job-view").hidden = false;
  $("download").onclick = () => guarded(() => download(id));
  $("cancel").onclick = () => guarded(() => cancel(id));
  $("stop").onclick = () => guarded(() => stop(id));
  follow(id, async (kind, event) => {
    if (kind === "error") { $("job-message").textContent = event.detail; return; }
    addEvent(event);
    if (kind === "attempt-end" || kind === "terminal") await refreshAttempts(id);
    if (kind === "stage" || kind === "terminal" || kind === "attempt-end") await refreshJob(id);
  }).catch((e) => { if (e instanceof Unauthorized) showLogin("That token was refused."); });
  return job;
}

async function download(id) {
  const response = await api("GET", `/jobs/${id}/submission`);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    $("action-result").textContent = body.detail || response.statusText;
    return;
  }
  const blob = await response.blob();
  const link = el("a", { href: URL.createObjectURL(blob), download: `submission-${id}.csv` });
  document.body.append(link); link.click(); link.remove();
  $("action-result").textContent = `Downloaded submission-${id}.csv (${blob.size} bytes).`;
}

async function cancel(id) {
  const response = await api("DELETE", "/jobs/" + id);
  const body = await response.json().catch(() => ({}));
  $("action-result").textContent = response.ok ? "Cancel: " + body.outcome : (body.detail || response.statusText);
  await refreshJob(id);
}

async function stop(id) {
  const response = await api("POST", `/jobs/${id}/stop`);
  const body = await response.json().catch(() => ({}));
  $("action-result").textContent = response.ok ? "Stop: " + body.outcome : (body.detail || response.statusText);
  await refreshJob(id);
}

function route() {
  stopTimers();
  const match = location.pathname.match(/^\/jobs\/([0-9a-fA-F-]{36})$/);
  return guarded(() => (match ? showJob(match[1]) : showList()));
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    route();
  });
  $("logout").addEventListener("click", () => { localStorage.removeItem(TOKEN_KEY); route(); });
  $("submit-form").addEventListener("submit", (e) => guarded(() => submitJob(e)));
  $("state-filter").addEventListener("change", () => guarded(() => loadJobs(false)));
  $("more").addEventListener("click", () => guarded(() => loadJobs(true)));
  route();
});
