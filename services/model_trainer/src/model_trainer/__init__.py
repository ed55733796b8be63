"""Train and serve small language models as queued, typed jobs."""
