"""flashlane: cheap, high-volume LLM work on Gemini Flash-Lite, correctly by default.

    import flashlane as fl
    lane = fl.Lane()
    lane.classify("Fast shipping, great quality.", labels=["positive", "negative", "neutral"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import Settings, load_settings
from .emulator.lazy import lazy_attributes as _lazy_attributes
from .errors import (
    AuthError,
    BadRequest,
    BudgetExceeded,
    ConfigError,
    ContentError,
    EmptyAnswer,
    FlashlaneError,
    InputError,
    MalformedResponse,
    ModelNotFound,
    NoQuota,
    Outage,
    OutputTruncated,
    RateLimited,
    SafetyBlocked,
    SchemaViolation,
    ServiceUnavailable,
    Timeout,
    ToolLoopExceeded,
    TransportError,
)
from .models import CATALOG, DEFAULT_MODEL, ModelInfo, Usage

__version__ = "0.2.0"

# The names below import google-genai (about 0.5 s). They load on first use, so that
# ``import flashlane.emulator`` (and the pytest plugin, loaded in every project that has
# flashlane installed) stays free of the SDK. PEP 562 module __getattr__.
_LAZY = {
    "Lane": "lane",
    "File": "call.media",
    "Result": "call.result",
    "TextStream": "call.stream",
    "Classification": "tasks",
    "Extraction": "tasks",
    "Provenance": "tasks",
    "Summary": "tasks",
    "Task": "tasks",
    "Translation": "tasks",
    "GoogleSearch": "call.tools",
    "UrlContext": "call.tools",
    "CodeExecution": "call.tools",
    "FileSearch": "call.tools",
    "ToolCall": "call.tools",
    "Source": "call.tools",
}

if TYPE_CHECKING:
    from .call.media import File
    from .call.result import Result
    from .call.stream import TextStream
    from .call.tools import CodeExecution, FileSearch, GoogleSearch, Source, ToolCall, UrlContext
    from .lane import Lane
    from .tasks import Classification, Extraction, Provenance, Summary, Task, Translation


__getattr__ = _lazy_attributes(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "AuthError",
    "BadRequest",
    "BudgetExceeded",
    "Classification",
    "CodeExecution",
    "ConfigError",
    "ContentError",
    "EmptyAnswer",
    "Extraction",
    "File",
    "FileSearch",
    "FlashlaneError",
    "GoogleSearch",
    "InputError",
    "Lane",
    "MalformedResponse",
    "ModelInfo",
    "ModelNotFound",
    "NoQuota",
    "Outage",
    "Provenance",
    "OutputTruncated",
    "RateLimited",
    "Result",
    "SafetyBlocked",
    "SchemaViolation",
    "ServiceUnavailable",
    "Settings",
    "Source",
    "Summary",
    "Task",
    "TextStream",
    "Timeout",
    "ToolCall",
    "ToolLoopExceeded",
    "Translation",
    "TransportError",
    "UrlContext",
    "Usage",
    "__version__",
    "load_settings",
]
