"""The local web UI (``dataengine ui``): tables, blends, runs and their reports, and a read-only SQL box."""
