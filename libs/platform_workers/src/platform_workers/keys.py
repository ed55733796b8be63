"""Redis key and channel names of a domain's jobs, built only here so readers and writers agree.

For a domain (``trainer`` for the model trainer), a job and a user:

- ``{domain}:events``             pub/sub channel carrying every event of the domain
- ``{domain}:events:{job_id}``    stream keeping the job's events for replay
- ``{domain}:logs:{job_id}``      list keeping the job's newest log lines (JSON), oldest first
- ``{domain}:job:{job_id}``       hash holding the job's record
- ``{domain}:cancel:{job_id}``    flag whose existence asks the job to stop
- ``{domain}:jobs:user:{user_id}`` sorted set indexing one user's jobs
- ``{domain}:jobs:active``        sorted set of the jobs not yet ended (what reconciliation checks)
- ``{domain}:user:{user_id}:active:{queue}`` sorted set of one user's unended jobs on a queue
- ``{domain}:metrics:jobs_ended``   hash counting ended jobs by type, status and code
- ``{domain}:metrics:job_durations`` hash of job run-time histograms by type and status

A user's model registry (model names never hold ``:``):

- ``{domain}:user:{user_id}:models``                         sorted set of the user's model names
- ``{domain}:user:{user_id}:model:{name}``                   hash holding the model's record
- ``{domain}:user:{user_id}:model:{name}:version:{n}``       hash holding version n (immutable)
- ``{domain}:user:{user_id}:model:{name}:aliases``           hash alias -> version
- ``{domain}:user:{user_id}:model:{name}:alias:{alias}:history`` list of the alias's previous
  holders, newest first

Hyperparameter studies:

- ``{domain}:study:{study_id}``            JSON string holding the study's record
- ``{domain}:study:{study_id}:trials``     hash trial number -> the trial's record (JSON)
- ``{domain}:study:{study_id}:lock``       lock held by whoever advances the study
- ``{domain}:optuna:{study_id}:``          prefix of the study's Optuna journal
- ``{domain}:user:{user_id}:studies``      sorted set of one user's study ids, by creation time
- ``{domain}:studies:running``             set of the studies not yet ended
"""


def events_channel(domain: str) -> str:
    """The pub/sub channel every job of a domain publishes on."""
    return f"{domain}:events"


def event_stream_key(domain: str, job_id: str) -> str:
    """The stream that keeps one job's events for replay."""
    return f"{domain}:events:{job_id}"


def logs_key(domain: str, job_id: str) -> str:
    """The list that keeps one job's newest log lines."""
    return f"{domain}:logs:{job_id}"


def record_key(domain: str, job_id: str) -> str:
    """The hash holding a job's record."""
    return f"{domain}:job:{job_id}"


def cancel_key(domain: str, job_id: str) -> str:
    """The flag whose existence asks a job to stop."""
    return f"{domain}:cancel:{job_id}"


def active_jobs_key(domain: str) -> str:
    """The sorted set of jobs that have not ended, scored by creation time."""
    return f"{domain}:jobs:active"


def jobs_ended_key(domain: str) -> str:
    """The hash counting ended jobs, for Prometheus."""
    return f"{domain}:metrics:jobs_ended"


def job_durations_key(domain: str) -> str:
    """The hash holding job run-time histograms, for Prometheus."""
    return f"{domain}:metrics:job_durations"


def user_active_key(domain: str, user_id: int, queue: str) -> str:
    """The sorted set of one user's jobs on one queue that have not ended (admission control)."""
    return f"{domain}:user:{user_id}:active:{queue}"


def user_index_key(domain: str, user_id: int) -> str:
    """The sorted set listing one user's jobs."""
    return f"{domain}:jobs:user:{user_id}"


def user_models_key(domain: str, user_id: int) -> str:
    """The sorted set of one user's model names, scored by creation time."""
    return f"{domain}:user:{user_id}:models"


def model_key(domain: str, user_id: int, name: str) -> str:
    """The hash holding one of a user's models."""
    return f"{domain}:user:{user_id}:model:{name}"


def model_version_key(domain: str, user_id: int, name: str, version: int) -> str:
    """The hash holding one immutable version of a model."""
    return f"{model_key(domain, user_id, name)}:version:{version}"


def model_aliases_key(domain: str, user_id: int, name: str) -> str:
    """The hash naming which version each of a model's aliases points at."""
    return f"{model_key(domain, user_id, name)}:aliases"


def alias_history_key(domain: str, user_id: int, name: str, alias: str) -> str:
    """The list of an alias's previous versions, newest first (what rollback returns to)."""
    return f"{model_key(domain, user_id, name)}:alias:{alias}:history"


def study_key(domain: str, study_id: str) -> str:
    """The JSON string holding a study's record."""
    return f"{domain}:study:{study_id}"


def study_trials_key(domain: str, study_id: str) -> str:
    """The hash of a study's trial records, by trial number."""
    return f"{study_key(domain, study_id)}:trials"


def study_lock_key(domain: str, study_id: str) -> str:
    """The lock that lets one process at a time advance a study."""
    return f"{study_key(domain, study_id)}:lock"


def optuna_prefix(domain: str, study_id: str) -> str:
    """The key prefix of a study's own Optuna journal (one journal per study, so loading a
    study replays only its own history)."""
    return f"{domain}:optuna:{study_id}:"


def user_studies_key(domain: str, user_id: int) -> str:
    """The sorted set of one user's study ids, scored by creation time."""
    return f"{domain}:user:{user_id}:studies"


def running_studies_key(domain: str) -> str:
    """The set of studies that have not ended (what workers' maintenance advances)."""
    return f"{domain}:studies:running"


# Schedules (model_trainer/storage/schedules.py):
# - ``{domain}:schedule:{id}``            hash holding the schedule's record
# - ``{domain}:schedule:{id}:firings``    list of its newest firings (JSON), newest first
# - ``{domain}:user:{user_id}:schedules`` sorted set of one user's schedule ids by creation time
# - ``{domain}:schedules``                sorted set of every schedule id (what schedulers read)
# - ``{domain}:schedules:version``        counter bumped by every change a scheduler must see


def schedule_key(domain: str, schedule_id: str) -> str:
    """The hash holding one schedule's record."""
    return f"{domain}:schedule:{schedule_id}"


def schedule_firings_key(domain: str, schedule_id: str) -> str:
    """The list of one schedule's newest firings, newest first."""
    return f"{schedule_key(domain, schedule_id)}:firings"


def user_schedules_key(domain: str, user_id: int) -> str:
    """The sorted set of one user's schedule ids, scored by creation time."""
    return f"{domain}:user:{user_id}:schedules"


def schedules_key(domain: str) -> str:
    """The sorted set of every schedule id, scored by creation time."""
    return f"{domain}:schedules"


def schedules_version_key(domain: str) -> str:
    """The counter every schedule change bumps, so a scheduler re-reads only after one."""
    return f"{domain}:schedules:version"
