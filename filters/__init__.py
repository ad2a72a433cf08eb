"""Filters: annotators that add columns (language id, heuristics, classifiers, dedup, diversity)."""
