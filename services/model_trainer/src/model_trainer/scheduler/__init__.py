"""Schedules: when each fires (timing), what a firing does (firing), and the process that fires
them (`model-trainer scheduler`, service)."""
