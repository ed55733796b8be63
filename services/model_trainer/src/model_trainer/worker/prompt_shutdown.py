"""A worker asked to stop exits at once, not up to a minute later.

RQ listens for commands on a pub/sub thread. Its `unsubscribe` sends UNSUBSCRIBE and then stops
that thread with redis-py's `PubSubWorkerThread.stop()`, which since redis-py 8 waits for the
thread to end. When the thread handles the UNSUBSCRIBE reply before the stop (as happens on a
loaded machine) it finds itself subscribed to nothing and waits up to RQ's 60 s for a
subscription: a worker told to stop (a deploy's SIGTERM) sat that long after its job was back
in the queue. Here the thread's run flag is cleared first, so the reply ends it at once.
"""

from __future__ import annotations

from redis.client import PubSubWorkerThread
from rq.worker import BaseWorker

# How long the worker waits for its command thread once the reply has woken it.
STOP_WAIT_S = 5.0


class PromptUnsubscribe(BaseWorker):
    """A mixin for RQ worker classes (before the RQ class in the bases)."""

    def unsubscribe(self) -> None:
        # RQ declares the attribute as None; it holds the thread once subscribed.
        thread, pubsub = vars(self).get("pubsub_thread"), self.pubsub
        if not isinstance(thread, PubSubWorkerThread) or pubsub is None:
            return
        self.log.info(
            "Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name
        )
        thread.stop(timeout=0)  # clears the run flag without waiting
        pubsub.unsubscribe()
        thread.stop(timeout=STOP_WAIT_S)
        pubsub.close()
