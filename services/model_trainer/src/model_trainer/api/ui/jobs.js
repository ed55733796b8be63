// The jobs list: the caller's jobs, newest first, filtered by status and type (kept in the
// address, so a reload or a shared link shows the same), refreshed every few seconds.

import { $, api, clearError, el, formatTime, setUp, showError } from "./app.js";

const PAGE = 50;
const MAX_LIMIT = 200; // the API's largest page
const REFRESH_MS = 3000;

let shown = PAGE; // how many rows the list asks for: grows with "Show more"
let nextCursor = null;
let timer = null;
let generation = 0; // the newest request's number: an older answer arriving late is dropped

setUp();
readFilters();
$("status").addEventListener("change", filtersChanged);
$("type").addEventListener("change", filtersChanged);
$("more").addEventListener("click", showMore);
refresh();

function readFilters() {
  const params = new URLSearchParams(location.search);
  $("status").value = params.get("status") ?? "";
  $("type").value = params.get("type") ?? "";
}

function query(limit, cursor) {
  const params = new URLSearchParams({ limit: String(limit) });
  for (const name of ["status", "type"]) {
    if ($(name).value) {
      params.set(name, $(name).value);
    }
  }
  if (cursor) {
    params.set("cursor", cursor);
  }
  return params;
}

function filtersChanged() {
  const params = query(PAGE, null);
  params.delete("limit");
  const search = params.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
  shown = PAGE;
  refresh();
}

// Reloads the rows shown so far (up to the API's page size) and schedules the next refresh.
async function refresh() {
  clearTimeout(timer);
  const mine = ++generation;
  try {
    const body = await api(`/v1/jobs?${query(Math.min(shown, MAX_LIMIT), null)}`);
    if (mine !== generation) {
      return;
    }
    render(body.jobs, false);
    nextCursor = body.next_cursor;
    $("more").hidden = nextCursor === null;
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    clearError();
  } catch (error) {
    showError(error);
  }
  if (mine === generation) {
    timer = setTimeout(refresh, REFRESH_MS);
  }
}

async function showMore() {
  const mine = generation;
  try {
    const body = await api(`/v1/jobs?${query(PAGE, nextCursor)}`);
    if (mine !== generation) {
      return;
    }
    render(body.jobs, true);
    shown += body.jobs.length;
    nextCursor = body.next_cursor;
    $("more").hidden = nextCursor === null;
  } catch (error) {
    showError(error);
  }
}

function render(jobs, append) {
  const tbody = $("jobs").tBodies[0];
  if (!append) {
    tbody.replaceChildren();
  }
  tbody.append(...jobs.map(row));
  $("jobs").dataset.count = String(tbody.rows.length);
  $("empty").hidden = tbody.rows.length > 0;
}

function row(job) {
  const link = el("a", { href: `job.html?id=${encodeURIComponent(job.job_id)}` }, job.job_id);
  const run = job.run_id ? el("code", {}, job.run_id) : "";
  return el(
    "tr",
    { "data-job-id": job.job_id, "data-status": job.status },
    el("td", { class: "time" }, formatTime(job.created_at)),
    el("td", {}, link),
    el("td", {}, job.type),
    el("td", {}, el("span", { class: `status ${job.status}` }, job.status)),
    el("td", {}, el("progress", { max: 1, value: job.progress }), ` ${Math.round(job.progress * 100)}%`),
    el("td", {}, run),
    el("td", { class: "message" }, job.error ? `${job.error.code}: ${job.error.message}` : job.message),
  );
}
