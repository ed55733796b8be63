"""Redis-aware helpers any worker service shares: connections, job events, cancellation."""
