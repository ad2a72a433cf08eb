"""Verifiable rewards: the ``reward`` stage, its verifiers and the code sandbox."""
