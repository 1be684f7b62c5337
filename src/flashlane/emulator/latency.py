"""Latency model: time to first token, then output tokens at the model's tokens/s.

``latency_scale`` multiplies everything; 0 (tests) means no sleeping at all, not even a
zero-length ``asyncio.sleep``. Thinking tokens are generated before the first answer token.
"""

from __future__ import annotations

import asyncio

from ..models import ModelInfo


def plan(info: ModelInfo, output_tokens: int, chunks: int, scale: float) -> tuple[float, float]:
    """(seconds before the first chunk, seconds between later chunks)."""
    if scale <= 0:
        return 0.0, 0.0
    first = info.ttft_s * scale
    total_gen = output_tokens / max(info.output_tokens_per_s, 1e-9) * scale
    if chunks <= 1:
        return first + total_gen, 0.0
    return first + total_gen / chunks, total_gen * (chunks - 1) / chunks / (chunks - 1)


def total(info: ModelInfo, output_tokens: int, scale: float) -> float:
    if scale <= 0:
        return 0.0
    return (info.ttft_s + output_tokens / max(info.output_tokens_per_s, 1e-9)) * scale


async def pause(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)
