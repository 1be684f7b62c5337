"""``flashlane eval`` / ``lane.evaluate``: choose model, thinking, packing, examples and service
tier by measured accuracy and cost (issue 24). ``metrics`` scores answers against the truth
(scikit-learn, sacrebleu: the ``flashlane[eval]`` extra); ``grid`` runs each configuration as a
run of the pipeline, in one resumable folder, and decides; ``plot`` draws the decision."""

from __future__ import annotations

from .grid import (
    ALL_EXAMPLES,
    Config,
    EvalReport,
    aevaluate,
    configurations,
    estimate,
    evaluate,
    format_estimate,
    format_eval,
    is_eval_dir,
    load_eval,
)
from .metrics import BOOTSTRAP_RESAMPLES, DEFAULT_SEED

__all__ = ["ALL_EXAMPLES", "BOOTSTRAP_RESAMPLES", "Config", "DEFAULT_SEED", "EvalReport", "aevaluate",
           "configurations", "estimate", "evaluate", "format_estimate", "format_eval", "is_eval_dir", "load_eval"]
