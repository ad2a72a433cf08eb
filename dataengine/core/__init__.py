"""Core types every layer shares. What a plugin author needs::

    from dataengine.core import Stage, StageParams, GlobalStage, Reader, ReaderOptions
"""

from dataengine.core.errors import DataEngineError, PipelineConfigError, StageError
from dataengine.core.global_stage import GlobalStage
from dataengine.core.reader import Reader, ReaderOptions
from dataengine.core.stage import Stage, StageParams

__all__ = ["DataEngineError", "GlobalStage", "PipelineConfigError", "Reader", "ReaderOptions", "Stage", "StageError",
           "StageParams"]
