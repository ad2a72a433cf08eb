"""Generators: LLM backends and synthetic-data recipes."""
