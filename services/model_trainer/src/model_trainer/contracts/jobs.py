"""Job types, payloads and records: what the API enqueues and what workers report back."""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict

from model_trainer.contracts.export import ExportConfig
from model_trainer.contracts.model import EvalConfig, GenerateConfig, ScoreConfig
from model_trainer.contracts.studies import TrialRef
from model_trainer.contracts.tokenizer import TokenizerTrainConfig
from model_trainer.contracts.train_config import ModelTrainConfig
from model_trainer.errors import ModelTrainerError, quoted
from platform_core.json_types import JSONObject

# The domain this service's Redis keys and channels are named under (platform_workers.keys).
DOMAIN = "trainer"

JobType = Literal["train", "eval", "score", "generate", "tokenizer", "export"]
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
# Whose fault a failure is: the request's, ours, or the machine's (out of memory, no GPU).
ErrorKind = Literal["user", "system", "resource"]
QueueName = Literal["train", "infer"]
# A job's place in its queue class: workers take every high job before any normal one, and
# every normal one before any low one.
Priority = Literal["high", "normal", "low"]
OriginKind = Literal["schedule", "study"]
# What a worker has (found when it starts, or set by WORKER_DEVICE), and what a job needs of its
# worker: a train job asking for device "cuda" needs CUDA; every other job runs on any worker.
WorkerDevice = Literal["cpu", "cuda"]
WorkerDeviceChoice = Literal["auto", "cpu", "cuda"]
JobDevice = Literal["any", "cuda"]

ERROR_KINDS: tuple[ErrorKind, ...] = ("user", "system", "resource")
JOB_TYPES: tuple[JobType, ...] = ("train", "eval", "score", "generate", "tokenizer", "export")
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "completed", "failed", "cancelled")
TERMINAL_STATUSES: tuple[JobStatus, ...] = ("completed", "failed", "cancelled")
PRIORITIES: tuple[Priority, ...] = ("high", "normal", "low")
ORIGIN_KINDS: tuple[OriginKind, ...] = ("schedule", "study")
WORKER_DEVICE_CHOICES: tuple[WorkerDeviceChoice, ...] = ("auto", "cpu", "cuda")
JOB_DEVICES: tuple[JobDevice, ...] = ("any", "cuda")

# Long jobs on `train` (training, tokenizers, exports), short ones on `infer`, so a training
# never delays a generate request.
QUEUE_FOR_TYPE: dict[JobType, QueueName] = {
    "train": "train",
    "tokenizer": "train",
    "export": "train",
    "eval": "infer",
    "score": "infer",
    "generate": "infer",
}
QUEUE_NAMES: tuple[QueueName, ...] = tuple(dict.fromkeys(QUEUE_FOR_TYPE.values()))

# Every worker process heartbeats its RQ registration this often, busy or idle (a thread beside
# RQ's loop); one silent for WORKER_LIVENESS_S is counted dead by /readyz.
WORKER_HEARTBEAT_S = 5
WORKER_LIVENESS_S = 3 * WORKER_HEARTBEAT_S


def rq_queue(queue: QueueName, priority: Priority, needs: JobDevice = "any") -> str:
    """The RQ queue a job waits in: its class's name for normal priority (what dashboards and
    older clients already know), `{class}-high` / `{class}-low` otherwise; a job that needs
    CUDA waits in `{class}-cuda` (`-cuda-high`, `-cuda-low`), which only CUDA workers serve."""
    base = queue if needs == "any" else f"{queue}-{needs}"
    return base if priority == "normal" else f"{base}-{priority}"


def rq_queues(queue: QueueName, needs: JobDevice = "any") -> list[str]:
    """A class's RQ queues for one need, in the order workers serve them (RQ takes the first
    non-empty)."""
    return [rq_queue(queue, priority, needs) for priority in PRIORITIES]


def every_rq_queue(queue: QueueName) -> list[str]:
    """Every RQ queue of a class, whatever its jobs need: what queue depths count."""
    return [name for needs in JOB_DEVICES for name in rq_queues(queue, needs)]


def worker_rq_queues(queue: QueueName, device: WorkerDevice) -> list[str]:
    """What a worker of a device class listens to, in order: a CUDA worker takes the jobs only
    it can run before those any worker can; a CPU worker never sees a CUDA job."""
    if device == "cpu":
        return rq_queues(queue)
    return [*rq_queues(queue, "cuda"), *rq_queues(queue)]


def parse_queue(value: str) -> QueueName:
    """Narrow a queue name given on the command line to one the service has."""
    for queue in QUEUE_NAMES:
        if queue == value:
            return queue
    raise ModelTrainerError(
        "INVALID_CONFIG",
        f"queue must be one of {', '.join(QUEUE_NAMES)}, got {quoted(value)}",
        details={"field": "queues"},
    )


# Enqueued by dotted path so the API never imports a worker module (nor torch).
WORKER_FUNCTIONS: dict[JobType, str] = {
    "train": "model_trainer.worker.train_job.process_train_job",
    "eval": "model_trainer.worker.eval_job.process_eval_job",
    "score": "model_trainer.worker.score_job.process_score_job",
    "generate": "model_trainer.worker.generate_job.process_generate_job",
    "tokenizer": "model_trainer.worker.tokenizer_job.process_tokenizer_job",
    "export": "model_trainer.worker.export_job.process_export_job",
}


class JobError(TypedDict):
    """Why a job failed: its code, whose fault (kind) and a message."""

    code: str
    kind: ErrorKind
    message: str


class JobOrigin(TypedDict):
    """What submitted a job on its user's behalf: a schedule's firing or a study's trial."""

    kind: OriginKind
    id: str
    trial: int | None


class JobRecord(TypedDict):
    """One Redis hash per job (`trainer:job:{job_id}`), decoded field by field."""

    job_id: str
    user_id: int
    type: JobType
    queue: QueueName
    status: JobStatus
    progress: float
    message: str
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    run_id: str | None
    result: JSONObject | None
    error: JobError | None
    priority: Priority
    origin: JobOrigin | None


class RunJobPayload(TypedDict):
    """What every job payload carries: who asked, and the run it trains or uses."""

    job_id: str
    user_id: int
    run_id: str


class TrainJobPayload(RunJobPayload):
    config: ModelTrainConfig
    tokenizer_id: str | None
    # A study's trial reports its val losses to the study and stops when it is pruned.
    trial: NotRequired[TrialRef]


class ModelJobPayload(RunJobPayload):
    """A job that uses a trained model: the run's final one, or its checkpoint at `step`
    (absent in payloads enqueued before checkpoints could be named: the final model)."""

    step: NotRequired[int | None]


class EvalJobPayload(ModelJobPayload):
    config: EvalConfig


class ScoreJobPayload(ModelJobPayload):
    config: ScoreConfig


class GenerateJobPayload(ModelJobPayload):
    config: GenerateConfig


class ExportJobPayload(ModelJobPayload):
    """The run to export: its final model, or its checkpoint at `step`."""

    config: ExportConfig


class TokenizerJobPayload(TypedDict):
    """A tokenizer job makes no run: its record's run_id is None, its id is in the config."""

    job_id: str
    user_id: int
    config: TokenizerTrainConfig
