"""flashlane: cheap, high-volume LLM work on Gemini Flash-Lite, correctly by default.

    import flashlane as fl
    lane = fl.Lane()
    lane.classify("Fast shipping, great quality.", labels=["positive", "negative", "neutral"])
"""

from __future__ import annotations

from .client import Lane, TextStream
from .config import Settings, load_settings
from .errors import (
    AuthError,
    BadRequest,
    BudgetExceeded,
    ConfigError,
    ContentError,
    EmptyAnswer,
    FlashlaneError,
    InputError,
    ModelNotFound,
    OutputTruncated,
    RateLimited,
    SafetyBlocked,
    SchemaViolation,
    ServiceUnavailable,
    Timeout,
    TransportError,
)
from .models import CATALOG, DEFAULT_MODEL, ModelInfo
from .result import Result, Usage
from .tasks import Classification, Summary, Task, Translation

__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "AuthError",
    "BadRequest",
    "BudgetExceeded",
    "Classification",
    "ConfigError",
    "ContentError",
    "EmptyAnswer",
    "FlashlaneError",
    "InputError",
    "Lane",
    "ModelInfo",
    "ModelNotFound",
    "OutputTruncated",
    "RateLimited",
    "Result",
    "SafetyBlocked",
    "SchemaViolation",
    "ServiceUnavailable",
    "Settings",
    "Summary",
    "Task",
    "TextStream",
    "Timeout",
    "Translation",
    "TransportError",
    "Usage",
    "load_settings",
]
