"""Typed contracts shared by the API, workers and backends."""
