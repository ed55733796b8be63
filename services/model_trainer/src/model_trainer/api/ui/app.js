// What every page shares: the API key (asked for once, kept in this tab's sessionStorage),
// authorized calls to /v1, a job's Server-Sent Events read with fetch (EventSource cannot send
// the Authorization header), and small helpers that build elements (text only, never HTML).

const KEY_ITEM = "model-trainer.api-key";
const TERMINAL_EVENTS = new Set(["trainer.job.completed.v1", "trainer.job.failed.v1"]);
export const TERMINAL_STATUSES = new Set(["completed", "failed", "cancelled"]);

let keyWaiters = [];

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

export function $(id) {
  return document.getElementById(id);
}

// An element with attributes and children (strings become text nodes, null is skipped).
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The key, once there is one: asks for it (the form every page has) when the tab has none.
export function needKey() {
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) {
    return Promise.resolve(key);
  }
  if ($("key-form").hidden) {
    askForKey(null);
  }
  return new Promise((resolve) => keyWaiters.push(resolve));
}

function askForKey(message) {
  $("key-form").hidden = false;
  $("key-message").textContent =
    message ??
    "Enter your API key. It stays in this tab (sessionStorage) and is sent only to this " +
      "server's /v1 API.";
  $("key-input").focus();
}

function useKey(event) {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) {
    return;
  }
  sessionStorage.setItem(KEY_ITEM, key);
  $("key-input").value = "";
  $("key-form").hidden = true;
  const waiting = keyWaiters;
  keyWaiters = [];
  waiting.forEach((resolve) => resolve(key));
}

function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
  askForKey("Key forgotten. Enter a key to go on.");
}

// Wires the key form and the header's button; every page calls it first.
export function setUp() {
  $("key-form").addEventListener("submit", useKey);
  $("forget-key").addEventListener("click", forgetKey);
}

export function showError(error) {
  const box = $("error");
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

export function clearError() {
  $("error").hidden = true;
}

// fetch with the key; a refused key (401) is dropped and asked for again, then the call retried.
async function authorizedFetch(path, headers) {
  for (;;) {
    const key = await needKey();
    const response = await fetch(path, {
      headers: { ...headers, Authorization: `Bearer ${key}` },
      cache: "no-store",
    });
    if (response.status !== 401) {
      return response;
    }
    if (sessionStorage.getItem(KEY_ITEM) === key) {
      sessionStorage.removeItem(KEY_ITEM);
      askForKey("That key was refused (401 UNAUTHENTICATED). Enter a valid API key.");
    }
  }
}

async function failure(response) {
  const body = await response.json().catch(() => null);
  const error = body && body.error;
  return error
    ? new ApiError(response.status, error.code, error.message)
    : new ApiError(response.status, `HTTP_${response.status}`, response.statusText);
}

// GET a /v1 path as JSON; an error answer throws ApiError with our error body's code.
export async function api(path) {
  const response = await authorizedFetch(path, { Accept: "application/json" });
  if (!response.ok) {
    throw await failure(response);
  }
  return response.json();
}

// The frames of a text/event-stream body: {id, event, data} (data parsed as JSON).
async function* sseFrames(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += value.replaceAll("\r\n", "\n");
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const frame = parseFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (frame !== null) {
        yield frame;
      }
      end = buffer.indexOf("\n\n");
    }
  }
}

function parseFrame(block) {
  const frame = { id: null, event: "message", data: [] };
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    if (colon === 0) {
      continue; // a comment: the server's keepalive
    }
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") {
      frame.id = value;
    } else if (field === "event") {
      frame.event = value;
    } else if (field === "data") {
      frame.data.push(value);
    }
  }
  if (frame.data.length === 0) {
    return null;
  }
  try {
    return { id: frame.id, event: frame.event, data: JSON.parse(frame.data.join("\n")) };
  } catch {
    return null;
  }
}

// Follows GET /v1/jobs/{id}/events, calling onFrame for each event, until the job's terminal
// event. A dropped connection (the API restarting, a network blip) is resumed with
// Last-Event-ID after a pause that doubles up to 5 s; `stillRunning()` (asked before each
// resume) ends the follow when the job ended without a terminal event in its stream (expired).
export async function followEvents(jobId, onFrame, stillRunning) {
  const path = `/v1/jobs/${encodeURIComponent(jobId)}/events`;
  let lastId = null;
  let pause = 200;
  for (;;) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (lastId !== null) {
        headers["Last-Event-ID"] = lastId;
      }
      const response = await authorizedFetch(path, headers);
      if (!response.ok) {
        throw await failure(response);
      }
      for await (const frame of sseFrames(response.body)) {
        lastId = frame.id ?? lastId;
        pause = 200;
        onFrame(frame);
        if (TERMINAL_EVENTS.has(frame.event)) {
          return;
        }
      }
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) {
        throw error;
      }
    }
    if (!(await stillRunning().catch(() => true))) {
      return;
    }
    await sleep(pause);
    pause = Math.min(pause * 2, 5000);
  }
}

export function formatTime(iso) {
  if (!iso) {
    return "";
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function formatValue(value) {
  if (typeof value === "number" && !Number.isInteger(value)) {
    return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e6 ? value.toFixed(4) : value.toPrecision(4);
  }
  if (value !== null && typeof value === "object") {
    return JSON.stringify(value);
  }
  return String(value);
}

// An object's fields as name/value pairs laid out in columns (nested values as JSON).
export function fieldsList(object, title = null) {
  const items = Object.entries(object).map(([name, value]) =>
    el("div", {}, el("dt", {}, name), el("dd", {}, formatValue(value))),
  );
  const list = el("dl", { class: "fields" }, ...items);
  return title ? el("section", { class: "fields" }, el("h3", {}, title), list) : list;
}
