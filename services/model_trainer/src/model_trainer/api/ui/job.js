// One job, live: its record, a loss chart (training loss and validation loss by step) fed by
// the job's event stream as it arrives, its config, its events and its result.

import {
  $,
  TERMINAL_STATUSES,
  api,
  el,
  fieldsList,
  followEvents,
  formatTime,
  formatValue,
  setUp,
  showError,
} from "./app.js";

const SHOWN_EVENTS = 500; // the table keeps the newest; the count says how many arrived
const SHOWN_TOKENS = 1000;
const HISTORY_POINTS = 1000;
const CHART_HEIGHT = 320;

const jobId = new URLSearchParams(location.search).get("id");
const points = new Map(); // step -> {loss, val}
let chart = null;
let drawTimer = null;
let eventCount = 0;
let configShown = false;
let configLoading = false;

setUp();
main().catch(showError);

async function main() {
  if (!jobId) {
    throw new Error("No job id: open this page as job.html?id=JOB_ID (links on the Jobs page).");
  }
  document.title = `Job ${jobId} · model-trainer`;
  $("job-id").textContent = jobId;
  const record = await refreshRecord();
  if (record.type === "train") {
    $("charts").hidden = false;
    chart = lossChart($("loss-chart"));
    window.addEventListener("resize", () => chart.setSize(chartSize($("loss-chart"))));
  }
  loadConfig();
  await followEvents(jobId, onFrame, async () => !TERMINAL_STATUSES.has((await refreshRecord()).status));
  const ended = await refreshRecord();
  loadConfig();
  if (chart !== null && points.size === 0 && ended.run_id) {
    await loadHistory(ended.run_id);
  }
}

async function refreshRecord() {
  const record = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
  renderRecord(record);
  return record;
}

function renderRecord(record) {
  $("status").textContent = record.status;
  $("status").className = `status ${record.status}`;
  $("progress").value = record.progress;
  $("message").textContent = record.message;
  const summary = {
    type: record.type,
    queue: record.queue,
    priority: record.priority,
    attempts: record.attempts,
    created: formatTime(record.created_at),
    started: formatTime(record.started_at),
    finished: formatTime(record.finished_at),
    run: record.run_id ?? "",
  };
  $("summary").replaceChildren(fieldsList(summary));
  if (record.error) {
    renderError(record.error);
  } else if (record.result) {
    renderResult(record.result);
  }
}

function onFrame(frame) {
  const event = frame.data;
  eventCount += 1;
  $("event-count").textContent = `(${eventCount})`;
  addEventRow(frame.event, event);
  if (frame.event === "trainer.metrics.progress.v1") {
    addPoint(event);
  } else if (frame.event === "trainer.metrics.config.v1") {
    $("config").append(fieldsList(modelFields(event), "The model, as the worker built it"));
  } else if (frame.event === "trainer.job.progress.v1") {
    $("progress").value = event.progress;
    $("message").textContent = event.message;
  } else if (frame.event === "trainer.job.started.v1") {
    refreshRecord().catch(showError); // started at, attempts
  }
  loadConfig();
}

// The config the job started with, from the line its worker logged first ("job started",
// written once the work began: asked for again with each event until it is there).
async function loadConfig() {
  if (configShown || configLoading) {
    return;
  }
  configLoading = true;
  try {
    const logs = await api(`/v1/jobs/${encodeURIComponent(jobId)}/logs?tail=1000`);
    const started = logs.lines.find((line) => line.fields && line.fields.event === "job.started");
    if (started && started.fields.config) {
      configShown = true;
      const model = $("config").querySelectorAll("section.fields");
      $("config").replaceChildren(fieldsList(started.fields.config), ...model);
    }
  } catch (error) {
    showError(error);
  } finally {
    configLoading = false;
  }
}

function modelFields(event) {
  const { type, job_id, user_id, ts, ...fields } = event;
  return fields;
}

// --- the loss chart -------------------------------------------------------------------------

function chartSize(container) {
  return { width: Math.max(container.clientWidth, 320), height: CHART_HEIGHT };
}

function lossChart(container) {
  const options = {
    ...chartSize(container),
    scales: { x: { time: false } },
    axes: [{ label: "step" }, { label: "loss (nats/token)" }],
    series: [
      { label: "step" },
      { label: "training loss", stroke: "#1f6feb", width: 2, spanGaps: true },
      {
        label: "validation loss",
        stroke: "#d1242f",
        width: 2,
        spanGaps: true,
        points: { show: true, size: 7, fill: "#d1242f" },
      },
    ],
  };
  return new uPlot(options, [[], [], []], container);
}

function addPoint(event) {
  const point = points.get(event.step) ?? { loss: null, val: null };
  point.loss = event.loss;
  if (typeof event.val_loss === "number") {
    point.val = event.val_loss;
  }
  points.set(event.step, point);
  const parts = [`step ${event.step}${event.total_steps ? `/${event.total_steps}` : ""}`, `loss ${event.loss.toFixed(4)}`];
  if (typeof event.val_loss === "number") {
    parts.push(`val loss ${event.val_loss.toFixed(4)}`);
  }
  if (typeof event.tokens_per_second === "number") {
    parts.push(`${Math.round(event.tokens_per_second).toLocaleString()} tokens/s`);
  }
  $("latest").textContent = parts.join(" · ");
  if (drawTimer === null) {
    drawTimer = setTimeout(draw, 50); // a replay of many events draws once
  }
}

function draw() {
  drawTimer = null;
  const steps = [...points.keys()].sort((a, b) => a - b);
  const losses = steps.map((step) => points.get(step).loss);
  const vals = steps.map((step) => points.get(step).val);
  chart.setData([steps, losses, vals]);
  const container = $("loss-chart");
  container.dataset.lossPoints = String(losses.filter((v) => v !== null).length);
  container.dataset.valPoints = String(vals.filter((v) => v !== null).length);
  container.dataset.lastStep = steps.length ? String(steps[steps.length - 1]) : "";
}

// A finished run whose events expired: its history from the run directory instead.
async function loadHistory(runId) {
  try {
    const page = await api(`/v1/runs/${encodeURIComponent(runId)}/metrics?points=${HISTORY_POINTS}`);
    for (const point of page.points) {
      points.set(point.step, { loss: point.loss, val: point.val_loss });
    }
    draw();
  } catch (error) {
    showError(error);
  }
}

// --- events ---------------------------------------------------------------------------------

function addEventRow(name, event) {
  const tbody = $("events").tBodies[0];
  tbody.prepend(
    el(
      "tr",
      { "data-type": name },
      el("td", { class: "time" }, event.ts ? new Date(event.ts).toLocaleTimeString() : ""),
      el("td", {}, el("code", {}, name)),
      el("td", {}, eventDetails(name, event)),
    ),
  );
  while (tbody.rows.length > SHOWN_EVENTS) {
    tbody.deleteRow(-1);
  }
  $("events").dataset.count = String(eventCount);
}

function eventDetails(name, event) {
  switch (name) {
    case "trainer.job.started.v1":
      return `queue ${event.queue}`;
    case "trainer.job.progress.v1":
      return `${Math.round(event.progress * 100)}% ${event.message}`;
    case "trainer.job.completed.v1":
      return `result ${event.result_bytes} bytes`;
    case "trainer.job.failed.v1":
      return `${event.code} (${event.error_kind}): ${event.message}`;
    case "trainer.metrics.progress.v1":
      return [
        `step ${event.step}`,
        `loss ${formatValue(event.loss)}`,
        typeof event.val_loss === "number" ? `val loss ${formatValue(event.val_loss)}` : null,
        typeof event.tokens_per_second === "number" ? `${Math.round(event.tokens_per_second)} tokens/s` : null,
      ]
        .filter(Boolean)
        .join(" · ");
    case "trainer.metrics.alert.v1":
      return event.message;
    default:
      return Object.entries(modelFields(event))
        .map(([key, value]) => `${key} ${formatValue(value)}`)
        .join(" · ");
  }
}

// --- the result -----------------------------------------------------------------------------

function renderError(error) {
  const box = $("result");
  box.dataset.state = "error";
  box.replaceChildren(
    el("p", { class: "error-code" }, el("strong", {}, error.code), ` (${error.kind}): ${error.message}`),
  );
}

function renderResult(result) {
  const box = $("result");
  box.dataset.state = "done";
  const parts = [];
  if (Array.isArray(result.outputs)) {
    parts.push(...result.outputs.map((text, index) => generated(result, text, index)));
  }
  if (Array.isArray(result.per_token)) {
    parts.push(tokenTable(result.per_token));
  }
  const scalars = Object.fromEntries(
    Object.entries(result).filter(([, value]) => value === null || typeof value !== "object"),
  );
  parts.push(fieldsList(scalars));
  const raw = el("pre", {}, JSON.stringify(result, null, 2));
  parts.push(el("details", {}, el("summary", {}, "The result as JSON"), raw));
  box.replaceChildren(...parts);
}

function generated(result, text, index) {
  const notes = [`sequence ${index + 1}`];
  if (Array.isArray(result.new_tokens)) {
    notes.push(`${result.new_tokens[index]} new tokens`);
  }
  if (Array.isArray(result.finished_on_eos) && result.finished_on_eos[index]) {
    notes.push("ended at end-of-text");
  }
  return el("figure", { class: "generated" }, el("pre", {}, text), el("figcaption", {}, notes.join(", ")));
}

function tokenTable(tokens) {
  const rows = tokens.slice(0, SHOWN_TOKENS).map((token) =>
    el(
      "tr",
      {},
      el("td", {}, el("code", {}, JSON.stringify(token.token))),
      el("td", { class: "number" }, token.prob.toFixed(4)),
      el("td", { class: "number" }, token.surprisal.toFixed(2)),
      el("td", {}, (token.top_k ?? []).map((alt) => `${JSON.stringify(alt.token)} ${alt.prob.toFixed(3)}`).join("  ")),
    ),
  );
  const caption =
    tokens.length > SHOWN_TOKENS ? `Scores (the first ${SHOWN_TOKENS} of ${tokens.length} tokens)` : "Scores";
  return el(
    "table",
    { class: "list tokens", "data-count": tokens.length },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, el("th", {}, "token"), el("th", {}, "probability"), el("th", {}, "surprisal (bits)"), el("th", {}, "most likely instead"))),
    el("tbody", {}, ...rows),
  );
}
