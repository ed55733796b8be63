"""Contracts every process shares: JSON shapes, errors and versioned events."""
