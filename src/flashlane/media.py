"""What a media input is and what it costs: MIME type from the content, pages, pixels, seconds,
and the tokens the API bills for it.

One rule, shared by the client (which estimates and reserves with it) and the emulator (which
bills with it), as ``models.estimate_tokens`` is for text, so an estimate matches the charge.
Pure functions of the bytes (no SDK, no errors module): the emulator may import this layer.

Token costs, as the Gemini API documents them:

- Gemini 3 models, default ``media_resolution``: an image is billed at HIGH, 1120 tokens; a PDF
  page at MEDIUM, 560 tokens (https://ai.google.dev/gemini-api/docs/media-resolution, "Token
  counts": "UNSPECIFIED defaults to HIGH (1120 tokens) for images and MEDIUM (560 tokens) for
  PDFs"; a third-party measurement of 561 tokens per PDF page on Gemini 3.x agrees,
  huggingface.co/datasets/JOHNISKING/pdf-token-cost).
- Earlier models: an image with both sides <= 384 px is 258 tokens; larger ones are tiled into
  768x768 tiles of 258 tokens each (https://ai.google.dev/gemini-api/docs/tokens, "Multimodal
  tokens"); a PDF page is 258 tokens (https://ai.google.dev/gemini-api/docs/document-processing).
- Audio, every model: 32 tokens per second ("Gemini represents each second of audio as 32
  tokens", https://ai.google.dev/gemini-api/docs/tokens).
"""

from __future__ import annotations

import io
import math
import wave
from dataclasses import dataclass
from typing import IO

__all__ = [
    "INLINE_REQUEST_LIMIT_BYTES",
    "MAX_INLINE_FILE_BYTES",
    "SUPPORTED_MIME_TYPES",
    "MediaInfo",
    "media_tokens",
    "measure",
    "normalize_mime",
    "page_texts",
    "sniff_mime",
]

# "If your total request, including files and instructions, exceeds 20MB, you should use the
# File API" (Google, discuss.ai.google.dev/t/is-there-any-preprocessing-of-images-in-api/43061;
# the same 20 MB in the Files API docs, ai.google.dev/tutorials/prompting_with_media).
INLINE_REQUEST_LIMIT_BYTES = 20 * 1024 * 1024
# Inline data travels base64-encoded (4 bytes per 3), and the prompt needs room too.
PROMPT_ROOM_BYTES = 256 * 1024
MAX_INLINE_FILE_BYTES = (INLINE_REQUEST_LIMIT_BYTES - PROMPT_ROOM_BYTES) * 3 // 4

# Input types Gemini reads. Images: PNG, JPEG, WEBP, HEIC, HEIF
# (https://ai.google.dev/gemini-api/docs/image-understanding); audio: WAV, MP3, AIFF, AAC, OGG,
# FLAC (https://ai.google.dev/gemini-api/docs/audio); documents: PDF
# (https://ai.google.dev/gemini-api/docs/document-processing).
SUPPORTED_MIME_TYPES = frozenset({
    "image/png", "image/jpeg", "image/webp", "image/heic", "image/heif",
    "application/pdf",
    "audio/wav", "audio/mp3", "audio/aiff", "audio/aac", "audio/ogg", "audio/flac",
})
# What sniffers (and browsers) call the same types, as the API names them.
_ALIASES = {
    "image/jpg": "image/jpeg", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav",
    "audio/mpeg": "audio/mp3", "audio/x-aiff": "audio/aiff", "audio/x-flac": "audio/flac", "audio/x-aac": "audio/aac",
}

GEMINI3_IMAGE_TOKENS = 1120  # default media_resolution (HIGH) for images on Gemini 3
GEMINI3_PDF_PAGE_TOKENS = 560  # default media_resolution (MEDIUM) for PDF pages on Gemini 3
TILE_TOKENS = 258  # one image tile, or one PDF page, before Gemini 3
SMALL_IMAGE_SIDE = 384  # both sides at most this: a single tile
TILE_SIDE = 768
AUDIO_TOKENS_PER_SECOND = 32
# Compressed audio (MP3, AAC, OGG, FLAC) has no duration without a decoder; 128 kbit/s is the
# common MP3 rate, so a file's seconds are estimated from its size at that rate.
ASSUMED_AUDIO_BYTES_PER_SECOND = 128_000 // 8
SNIFF_BYTES = 8192  # enough header for every type above (filetype reads 261; PDF/PNG fewer)


def normalize_mime(mime: str) -> str:
    mime = mime.split(";")[0].strip().lower()
    return _ALIASES.get(mime, mime)


def sniff_mime(head: bytes) -> str | None:
    """The MIME type from the content's first bytes (magic numbers), or None if unknown."""
    import filetype  # a small, dependency-free magic-number table (github.com/h2non/filetype.py)

    kind = filetype.guess(head[:SNIFF_BYTES])
    if kind is not None:
        return normalize_mime(kind.mime)
    if head.lstrip()[:5] == b"%PDF-":  # PDFs may carry leading junk the spec tolerates (PDF 32000, 7.5.2)
        return "application/pdf"
    return None


@dataclass(frozen=True)
class MediaInfo:
    mime_type: str
    pages: int | None = None  # PDF
    width: int | None = None  # image
    height: int | None = None
    seconds: float | None = None  # audio


def measure(mime_type: str, data: bytes | IO[bytes] | str) -> MediaInfo:
    """Pages, pixels or seconds of one medium (``data``: the bytes, a binary file or a path).
    Raises ValueError when the content is not readable as its type."""
    mime = normalize_mime(mime_type)
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    if mime == "application/pdf":
        from pypdf import PdfReader  # a well-kept PDF library: page count without rendering
        from pypdf.errors import PyPdfError

        try:
            return MediaInfo(mime, pages=len(PdfReader(src).pages))
        except (PyPdfError, OSError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not a readable PDF ({e})") from None
    if mime.startswith("image/"):
        if mime in ("image/heic", "image/heif"):  # Pillow cannot read HEIC; its header size is not needed on Gemini 3
            return MediaInfo(mime)
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(src) as im:  # reads the header only, not the pixels
                w, h = im.size
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"not a readable image ({e})") from None
        return MediaInfo(mime, width=w, height=h)
    if mime == "audio/wav":
        try:
            with wave.open(src) as w:  # type: ignore[arg-type]
                return MediaInfo(mime, seconds=w.getnframes() / float(w.getframerate() or 1))
        except (wave.Error, EOFError) as e:
            raise ValueError(f"not a readable WAV file ({e})") from None
    if mime.startswith("audio/"):
        size = len(data) if isinstance(data, bytes) else _size(src)
        return MediaInfo(mime, seconds=size / ASSUMED_AUDIO_BYTES_PER_SECOND)
    raise ValueError(f"unsupported media type {mime}")


def page_texts(data: bytes | IO[bytes] | str, max_pages: int | None = None) -> list[str]:
    """The text layer of each page of a PDF (``data``: its bytes, a binary file or a path; the
    first ``max_pages`` only, if given), as pypdf extracts it; "" for a page without one (a scan).
    Raises ValueError for an unreadable PDF. Provenance checks extracted values against these
    texts, and the emulator reads its answers from them, so both see the same characters."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    src = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        pages = PdfReader(src).pages
        return [page.extract_text() or "" for page in (pages if max_pages is None else pages[:max_pages])]
    except (PyPdfError, OSError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"not a readable PDF ({e})") from None


def _size(src: object) -> int:
    import os

    if isinstance(src, str):
        return os.path.getsize(src)
    f = src  # a binary file
    pos = f.tell()  # type: ignore[attr-defined]
    end = f.seek(0, 2)  # type: ignore[attr-defined]
    f.seek(pos)  # type: ignore[attr-defined]
    return int(end)


def _gemini3(model: str) -> bool:
    return model.removeprefix("models/").startswith("gemini-3")


def media_tokens(model: str, info: MediaInfo) -> int:
    """Input tokens one medium costs on ``model`` at the default media resolution."""
    g3 = _gemini3(model)
    if info.pages is not None:
        return info.pages * (GEMINI3_PDF_PAGE_TOKENS if g3 else TILE_TOKENS)
    if info.mime_type.startswith("image/"):
        if g3 or info.width is None or info.height is None:
            return GEMINI3_IMAGE_TOKENS if g3 else TILE_TOKENS
        if info.width <= SMALL_IMAGE_SIDE and info.height <= SMALL_IMAGE_SIDE:
            return TILE_TOKENS
        return math.ceil(info.width / TILE_SIDE) * math.ceil(info.height / TILE_SIDE) * TILE_TOKENS
    if info.seconds is not None:
        return math.ceil(info.seconds * AUDIO_TOKENS_PER_SECOND)
    return 0
