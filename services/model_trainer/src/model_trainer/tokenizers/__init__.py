"""Tokenizers, stored by id."""
