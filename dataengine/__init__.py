"""dataengine: a lakehouse for LLM training data.

Core types live here (document schema, Stage, Pipeline); executors run pipelines over
shards and the warehouse (DuckLake) stores every result as a versioned snapshot.
"""

__version__ = "0.1.0"
