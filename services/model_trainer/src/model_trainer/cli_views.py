"""How the CLI shows jobs to people: a table of jobs, one job's record, and results as text
(generated samples, scores) rather than JSON. `--json` prints what the API answered instead."""

from __future__ import annotations

import orjson
from rich.console import Console
from rich.table import Table

from platform_core.json_types import (
    JSONObject,
    JSONValue,
    PayloadError,
    optional_object,
    optional_str,
    require_float,
    require_int,
    require_str,
)

_COLUMNS = ("JOB ID", "TYPE", "STATUS", "PROGRESS", "CREATED", "RUN / ERROR")


def objects(value: JSONValue | None, field: str) -> list[JSONObject]:
    """A list of JSON objects, or a PayloadError naming the field."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise PayloadError(field, f"field '{field}' must be a list of objects")
    return [item for item in value if isinstance(item, dict)]


def pretty_json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _when(ts: str | None) -> str:
    """`2026-12-05 10:31:05` from an ISO time (seconds are enough in a table)."""
    return "-" if ts is None else ts[:19].replace("T", " ")


def _outcome(record: JSONObject) -> str:
    error = optional_object(record, "error")
    if error is not None:
        return f"{require_str(error, 'code')}: {require_str(error, 'message')}"
    return optional_str(record, "run_id") or ""


def jobs_table(jobs: list[JSONObject]) -> str:
    """One row per job, aligned, without trailing spaces (so it greps and diffs cleanly)."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in _COLUMNS:
        table.add_column(column, no_wrap=True)
    for job in jobs:
        table.add_row(
            require_str(job, "job_id"),
            require_str(job, "type"),
            require_str(job, "status"),
            f"{require_float(job, 'progress') * 100:.0f}%",
            _when(require_str(job, "created_at")),
            _outcome(job),
        )
    console = Console(width=10_000, color_system=None)
    with console.capture() as captured:
        console.print(table)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def job_summary(record: JSONObject) -> str:
    """The record in a few lines: what, how far, when, and how it ended."""
    lines = [
        f"job {require_str(record, 'job_id')}: {require_str(record, 'type')} "
        f"{require_str(record, 'status')} {require_float(record, 'progress') * 100:.0f}%"
        f" (queue {require_str(record, 'queue')}, attempts {require_int(record, 'attempts')})",
        f"created {_when(require_str(record, 'created_at'))}  "
        f"started {_when(optional_str(record, 'started_at'))}  "
        f"finished {_when(optional_str(record, 'finished_at'))}",
    ]
    message = optional_str(record, "message")
    if message:
        lines.append(f"last: {message}")
    run_id = optional_str(record, "run_id")
    if run_id:
        lines.append(f"run {run_id}")
    error = optional_object(record, "error")
    if error is not None:
        lines.append(
            f"error: {require_str(error, 'code')} ({require_str(error, 'kind')}): "
            f"{require_str(error, 'message')}"
        )
    return "\n".join(lines)


def result_text(job_type: str, result: JSONObject) -> str:
    """Generated samples and scores as people read them; any other result as JSON."""
    if job_type == "generate":
        outputs = result.get("outputs")
        if not isinstance(outputs, list) or not all(isinstance(text, str) for text in outputs):
            raise PayloadError("outputs", "field 'outputs' must be a list of strings")
        return "\n".join(
            f"--- sample {number} ---\n{text}" for number, text in enumerate(outputs, 1)
        )
    if job_type == "score":
        return score_text(result)
    return pretty_json(result)


def score_text(result: JSONObject) -> str:
    """The text's loss and perplexity, then (detail_level per_char) each token's probability,
    surprisal and most likely alternatives."""
    lines = [
        f"loss {require_float(result, 'loss'):.4f} nats/token, perplexity "
        f"{require_float(result, 'perplexity'):.3f} over {require_int(result, 'num_tokens')} "
        "tokens"
    ]
    per_token = result.get("per_token")
    for token in [] if per_token is None else objects(per_token, "per_token"):
        alternatives = ", ".join(
            f"{require_str(other, 'token')!r} {require_float(other, 'prob'):.3f}"
            for other in objects(token.get("top_k"), "top_k")
        )
        lines.append(
            f"{require_str(token, 'token')!r:>8}  p {require_float(token, 'prob'):.3f}  "
            f"{require_float(token, 'surprisal'):6.2f} bits  top: {alternatives}"
        )
    return "\n".join(lines)
