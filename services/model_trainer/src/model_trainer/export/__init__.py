"""Export bundles: a trained run as files that work without this service (worker side)."""
