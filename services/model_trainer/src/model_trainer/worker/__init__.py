"""RQ job functions (one module per job type) and the worker entry point."""
