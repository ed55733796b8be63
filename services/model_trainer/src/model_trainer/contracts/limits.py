"""The largest value each request field may take, written once and torch-free.

The HTTP request models declare them as pydantic field constraints (so OpenAPI shows them) and
the config validators check them again, so a config built by the CLI or a worker obeys the same
ranges. Each bound is one a worker can honour on the machines we target; the operator-tunable
budgets (tokens per step, text bytes, request bytes) live in settings instead.
"""

from __future__ import annotations

# Seeds feed torch and numpy generators; numpy takes at most 32 bits.
MAX_SEED = 2**32 - 1

# Longer than any preset's context; gpt2 sizes are also held to their own context.
MAX_SEQ_LEN = 8192
MAX_BATCH_SIZE = 4096
MAX_GRAD_ACCUM_STEPS = 1024
MAX_EPOCHS = 1000
MAX_STEPS = 10_000_000
MAX_LEARNING_RATE = 10.0
MAX_WEIGHT_DECAY = 10.0
MAX_GRAD_CLIP = 1e6
MAX_TIME_BUDGET_S = 7 * 24 * 3600.0
MAX_KEEP_CHECKPOINTS = 100
MAX_PATIENCE = 1000
# Reading runs: a listing, a comparison, and one page (or down-sampling) of a metrics history.
MAX_LISTED_RUNS = 1000
MAX_COMPARED_RUNS = 10
DEFAULT_METRIC_POINTS = 1000
MAX_METRIC_POINTS = 10_000
MAX_MIN_DELTA = 10.0
MAX_GRAD_NORM_ALERT = 1e12
MAX_SPIKE_RATIO = 100.0
MAX_EVAL_BATCHES = 1_000_000
# Processes one training may run on its worker machine; settings' MAX_TRAIN_PROCESSES may allow
# fewer.
MAX_PROCESSES = 64

MAX_NEW_TOKENS = 4096
# How long GET /v1/jobs/{job_id}?wait_s= may hold its answer for the job to end.
MAX_WAIT_S = 60.0
MAX_RETURN_SEQUENCES = 16
MAX_TEMPERATURE = 100.0
# Score's per-token alternatives grow the result by this factor.
MAX_SCORE_TOP_K = 100
MAX_SAMPLE_TOP_K = 1_000_000

# Inline texts (score's text, generate's prompt) in characters; settings' MAX_TEXT_BYTES also
# bounds their UTF-8 size and that of files they name.
MAX_TEXT_CHARS = 1 << 20

# Every id we name things by (runs, tokenizers) is at most this long; corpus ids are sha256 hex.
MAX_ID_CHARS = 128
MAX_PATH_CHARS = 4096

# `GET /v1/jobs/{id}/logs?tail=`: at most every line a job keeps (job_logs.LOG_LINES_KEPT).
MAX_LOG_TAIL = 1000
DEFAULT_LOG_TAIL = 100
# The model registry (storage/models.py): each user's names, versions and aliases stay bounded.
# Model and alias names; a reference is `name@alias` or `name/version`.
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
MAX_MODEL_REF_CHARS = 64 + 1 + 64
MAX_MODELS_PER_USER = 1000
MAX_VERSIONS_PER_MODEL = 10_000
MAX_ALIASES_PER_MODEL = 64
# Previous holders an alias remembers for rollback (older ones are forgotten).
MAX_ALIAS_HISTORY = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_VERSIONS_PAGE = 200
MAX_COMPARE_VERSIONS = 10
# Schedules (settings add MIN_SCHEDULE_INTERVAL_S and MAX_SCHEDULES_PER_USER): an interval is at
# most a year; a cron expression is five fields; a name is a short label; a schedule keeps its
# newest firings.
MAX_SCHEDULE_INTERVAL_S = 366 * 24 * 3600
MAX_CRON_CHARS = 200
MAX_SCHEDULE_NAME_CHARS = 128
# A schedule's kept request (JSON); a long text belongs in a file under DATA_ROOT.
MAX_SCHEDULE_REQUEST_BYTES = 64 * 1024
FIRINGS_KEPT = 100
