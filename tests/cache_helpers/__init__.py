"""Helpers for the cache tests: deterministic data and subprocess workers."""
