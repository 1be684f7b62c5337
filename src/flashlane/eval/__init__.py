"""``flashlane eval`` / ``lane.evaluate``: choose model, thinking, packing, examples and service
tier by measured accuracy and cost (issue 24). ``metrics`` scores answers against the truth
(scikit-learn, sacrebleu: the ``flashlane[eval]`` extra); ``grid`` runs each configuration through
the pipeline's engine and decides."""

from __future__ import annotations

from .grid import ALL_EXAMPLES, Config, EvalReport, aevaluate, configurations, format_eval
from .metrics import BOOTSTRAP_RESAMPLES, DEFAULT_SEED

__all__ = ["ALL_EXAMPLES", "BOOTSTRAP_RESAMPLES", "Config", "DEFAULT_SEED", "EvalReport", "aevaluate",
           "configurations", "format_eval"]
