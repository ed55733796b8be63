// Runs side by side: pick runs, then their loss and validation-loss histories on one chart
// each (GET /v1/runs/{id}/metrics?points=), their figures and what their configs disagree on
// (GET /v1/runs/compare?ids=). The chosen ids stay in the address (?ids=a,b).

import { $, api, clearError, el, formatTime, formatValue, setUp, showError } from "./app.js";

const LISTED_RUNS = 200;
const HISTORY_POINTS = 500;
const MAX_COMPARED = 10;
const CHART_HEIGHT = 300;
const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7d8c", "#cf222e", "#57606a", "#e16f24", "#6639ba"];

setUp();
main().catch(showError);

async function main() {
  $("pick").addEventListener("submit", pickedRuns);
  const chosen = (new URLSearchParams(location.search).get("ids") ?? "").split(",").filter(Boolean);
  const listing = await api(`/v1/runs?limit=${LISTED_RUNS}`);
  renderRuns(listing.runs, new Set(chosen));
  if (chosen.length >= 2) {
    await compare(chosen);
  }
}

function renderRuns(runs, chosen) {
  const rows = runs.map((run) =>
    el(
      "tr",
      {},
      el("td", {}, el("input", { type: "checkbox", name: "run", value: run.run_id, checked: chosen.has(run.run_id), "aria-label": run.run_id })),
      el("td", {}, el("code", {}, run.run_id)),
      el("td", {}, `${run.model_family}/${run.model_size}`),
      el("td", { class: "number" }, formatValue(run.loss)),
      el("td", { class: "number" }, run.val_loss === null ? "" : formatValue(run.val_loss)),
      el("td", { class: "number" }, run.steps),
      el("td", {}, formatTime(run.created_at)),
    ),
  );
  $("runs").tBodies[0].replaceChildren(...rows);
  $("runs").dataset.count = String(rows.length);
}

async function pickedRuns(event) {
  event.preventDefault();
  const ids = [...document.querySelectorAll("input[name=run]:checked")].map((box) => box.value);
  if (ids.length < 2 || ids.length > MAX_COMPARED) {
    showError(new Error(`Pick 2 to ${MAX_COMPARED} runs (${ids.length} picked).`));
    return;
  }
  history.replaceState(null, "", `?ids=${ids.map(encodeURIComponent).join(",")}`);
  await compare(ids).catch(showError);
}

async function compare(ids) {
  clearError();
  const comparison = await api(`/v1/runs/compare?ids=${ids.map(encodeURIComponent).join(",")}`);
  const histories = await Promise.all(
    ids.map((id) => api(`/v1/runs/${encodeURIComponent(id)}/metrics?points=${HISTORY_POINTS}`)),
  );
  $("comparison").hidden = false;
  drawChart($("loss-compare"), ids, histories, "loss", "training loss");
  drawChart($("val-compare"), ids, histories, "val_loss", "validation loss");
  renderFigures(comparison.runs);
  renderDifferences(ids, comparison.config_differences);
}

// One line per run on shared steps: uPlot wants one x array, so the union of the runs' steps,
// with gaps (null) where a run has no point, spanned by the line.
function drawChart(container, ids, histories, field, what) {
  const values = histories.map((page) => new Map(page.points.filter((p) => p[field] !== null).map((p) => [p.step, p[field]])));
  const steps = [...new Set(values.flatMap((byStep) => [...byStep.keys()]))].sort((a, b) => a - b);
  const data = [steps, ...values.map((byStep) => steps.map((step) => byStep.get(step) ?? null))];
  const series = [
    { label: "step" },
    ...ids.map((id, index) => ({
      label: id,
      stroke: COLORS[index % COLORS.length],
      width: 2,
      spanGaps: true,
      points: { show: field === "val_loss" },
    })),
  ];
  container.replaceChildren();
  new uPlot(
    {
      width: Math.max(container.clientWidth, 320),
      height: CHART_HEIGHT,
      scales: { x: { time: false } },
      axes: [{ label: "step" }, { label: what }],
      series,
    },
    data,
    container,
  );
  container.dataset.series = String(ids.length);
  container.dataset.points = String(values.reduce((sum, byStep) => sum + byStep.size, 0));
}

function renderFigures(runs) {
  const rows = runs.map((run) =>
    el(
      "tr",
      {},
      el("td", {}, el("code", {}, run.run_id)),
      el("td", {}, `${run.model_family}/${run.model_size}`),
      el("td", { class: "number" }, formatValue(run.final.loss)),
      el("td", { class: "number" }, run.final.val_loss === null ? "" : formatValue(run.final.val_loss)),
      el("td", { class: "number" }, run.best.val_loss === null ? "" : `${formatValue(run.best.val_loss)} (${run.best.val_loss_step})`),
      el("td", { class: "number" }, run.final.steps),
      el("td", { class: "number" }, `${run.final.elapsed_s.toFixed(1)} s`),
      el("td", {}, run.final.stop_reason),
    ),
  );
  $("figures").tBodies[0].replaceChildren(...rows);
}

function renderDifferences(ids, differences) {
  const table = $("differences");
  table.tHead.replaceChildren(el("tr", {}, el("th", {}, "config"), ...ids.map((id) => el("th", {}, el("code", {}, id)))));
  const keys = Object.keys(differences).sort();
  const rows = keys.map((key) =>
    el("tr", {}, el("th", { scope: "row" }, key), ...ids.map((id) => el("td", {}, formatValue(differences[key][id] ?? null)))),
  );
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", { colspan: ids.length + 1, class: "muted" }, "The configs agree on every key.")));
  }
  table.tBodies[0].replaceChildren(...rows);
}
