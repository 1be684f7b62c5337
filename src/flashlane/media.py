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
  tokens", https://ai.google.dev/gemini-api/docs/tokens), at every media resolution ("audio
  inputs are tokenized at a fixed rate per second across all resolution levels",
  https://ai.google.dev/gemini-api/docs/media-resolution).

``media_resolution`` (LOW / MEDIUM / HIGH) sets the tokens of an image or a PDF page
(https://ai.google.dev/gemini-api/docs/media-resolution, "Token counts"):

- Gemini 3: LOW 280, MEDIUM 560, HIGH 1120, for an image and for a PDF page alike (the same
  table, as quoted by fastgptplus.com/en/posts/gemini-3-pro-media-resolution-parameter:
  "MEDIA_RESOLUTION_LOW (280 tokens), MEDIA_RESOLUTION_MEDIUM (560 tokens),
  MEDIA_RESOLUTION_HIGH (1120 tokens)"). Set per request (``GenerationConfig.media_resolution``)
  or per part (``Part.media_resolution``, Gemini 3 only; the part's wins).
- Earlier models: LOW 64, MEDIUM 256, HIGH "zoomed reframing with 256 tokens" (the API's own
  enum documentation, docs.cloud.google.com .../GenerationConfig-MediaResolution: "low (64
  tokens)", "medium (256 tokens)", "high (zoomed reframing with 256 tokens)"). LOW and MEDIUM are
  a fixed count per image or page; HIGH reframes into 768x768 tiles like the default, so it is
  priced as the default.
"""

from __future__ import annotations

import io
import math
import wave
from dataclasses import dataclass
from typing import IO

__all__ = [
    "FILE_TTL_S",
    "FILES_API_MAX_FILE_BYTES",
    "FILES_API_PROJECT_BYTES",
    "INLINE_REQUEST_LIMIT_BYTES",
    "MEDIA_RESOLUTIONS",
    "MAX_INLINE_FILE_BYTES",
    "SUPPORTED_MIME_TYPES",
    "MediaInfo",
    "inline_file_budget",
    "media_tokens",
    "measure",
    "modality",
    "normalize_mime",
    "page_texts",
    "page_selection",
    "pdf_subset",
    "resolution_of",
    "supports_part_resolution",
    "wire_resolution",
    "sniff_mime",
]

# What goes inline. The API's documents say: "Always use the File API when the total request
# size (including the files, text prompt, system instructions, etc.) is larger than 20 MB"
# (https://ai.google.dev/gemini-api/docs/document-processing, "Large PDFs"; the same in the image
# and audio guides). Since 2026-01-12 the API takes up to 100 MB of base64-encoded inline data,
# "with varying limits based on data types" (PDFs: 50 MB; blog.google, "Increased file size limits
# and expanded inputs support in Gemini API"; ai.google.dev/gemini-api/docs/file-input-methods).
# flashlane keeps the 20 MB line: every model and the Batch API's inline requests (20 MB per job)
# take it, and a larger file is sent once through the Files API and referenced by every request
# (retries, re-asks, reruns) instead of travelling again each time. Settings.inline_max_bytes
# (FLASHLANE_INLINE_MAX_BYTES) moves the line.
INLINE_REQUEST_LIMIT_BYTES = 20 * 1024 * 1024
# Inline data travels base64-encoded (4 bytes per 3), and the prompt needs room too.
PROMPT_ROOM_BYTES = 256 * 1024
# The Files API: "store up to 20 GB of files per project, with a per-file maximum size of 2 GB.
# Files are stored for 48 hours" (https://ai.google.dev/gemini-api/docs/files; the same note in
# the document-processing, image and audio guides).
FILES_API_MAX_FILE_BYTES = 2 * 1024**3
FILES_API_PROJECT_BYTES = 20 * 1024**3
FILE_TTL_S = 48 * 3600


def inline_file_budget(request_limit: int) -> int:
    """Bytes of files (before base64) one request may carry inline under ``request_limit``."""
    return max(request_limit - PROMPT_ROOM_BYTES, 0) * 3 // 4


MAX_INLINE_FILE_BYTES = inline_file_budget(INLINE_REQUEST_LIMIT_BYTES)

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

# media_resolution levels a run, a task or (Gemini 3) a part may ask for, as flashlane spells them.
MEDIA_RESOLUTIONS = ("low", "medium", "high")
_WIRE_PREFIX = "MEDIA_RESOLUTION_"
# Gemini 3: tokens per image or PDF page at each level (the "Token counts" table cited above).
GEMINI3_RESOLUTION_TOKENS = {"low": 280, "medium": 560, "high": 1120}
# Earlier models: a fixed count per image or page at LOW and MEDIUM; HIGH tiles as the default does.
EARLIER_RESOLUTION_TOKENS = {"low": 64, "medium": 256}
GEMINI3_IMAGE_TOKENS = GEMINI3_RESOLUTION_TOKENS["high"]  # the default (unset) for images on Gemini 3
GEMINI3_PDF_PAGE_TOKENS = GEMINI3_RESOLUTION_TOKENS["medium"]  # the default (unset) for PDF pages on Gemini 3
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


def supports_part_resolution(model: str) -> bool:
    """Whether ``model`` takes ``media_resolution`` on a single part (Gemini 3 only)."""
    return _gemini3(model)


def wire_resolution(level: str) -> str:
    """``"low"`` -> ``"MEDIA_RESOLUTION_LOW"`` (the enum the API and the SDK's types name)."""
    return _WIRE_PREFIX + level.upper()


def resolution_of(value: object) -> str | None:
    """A level as flashlane spells it from the wire's enum (either case, with or without the
    prefix), or None for unset / UNSPECIFIED / unknown."""
    if not isinstance(value, str):
        return None
    level = value.strip().upper().removeprefix(_WIRE_PREFIX).lower()
    return level if level in MEDIA_RESOLUTIONS else None


def modality(info: MediaInfo) -> str:
    """The ``MediaModality`` the API reports a medium's prompt tokens under
    (``usageMetadata.promptTokensDetails``): DOCUMENT, IMAGE or AUDIO."""
    if info.pages is not None or info.mime_type == "application/pdf":
        return "DOCUMENT"
    return "AUDIO" if info.mime_type.startswith("audio/") else "IMAGE"


def media_tokens(model: str, info: MediaInfo, resolution: str | None = None) -> int:
    """Input tokens one medium costs on ``model`` at ``resolution`` (None: the default)."""
    g3 = _gemini3(model)
    if resolution not in MEDIA_RESOLUTIONS:
        resolution = None
    if info.pages is not None:
        if g3:
            return info.pages * GEMINI3_RESOLUTION_TOKENS[resolution or "medium"]
        return info.pages * EARLIER_RESOLUTION_TOKENS.get(resolution or "", TILE_TOKENS)
    if info.mime_type.startswith("image/"):
        if g3:
            return GEMINI3_RESOLUTION_TOKENS[resolution or "high"]
        if resolution in EARLIER_RESOLUTION_TOKENS:
            return EARLIER_RESOLUTION_TOKENS[resolution]
        if info.width is None or info.height is None:
            return TILE_TOKENS
        if info.width <= SMALL_IMAGE_SIDE and info.height <= SMALL_IMAGE_SIDE:
            return TILE_TOKENS
        return math.ceil(info.width / TILE_SIDE) * math.ceil(info.height / TILE_SIDE) * TILE_TOKENS
    if info.seconds is not None:
        return math.ceil(info.seconds * AUDIO_TOKENS_PER_SECOND)
    return 0


def page_selection(spec: str) -> tuple[int, ...]:
    """1-based page numbers from ``"1-3"``, ``"2"`` or ``"1,3,5-7"``, sorted, each once.
    Raises ValueError naming what is wrong."""
    pages: set[int] = set()
    for piece in spec.replace(" ", "").split(","):
        if not piece:
            continue
        lo, sep, hi = piece.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"{piece!r} is not a page or a range of pages")
        first, last = int(lo), int(hi) if sep else int(lo)
        if first < 1 or last < first:
            raise ValueError(f"{piece!r} is not a range of pages (pages count from 1)")
        pages.update(range(first, last + 1))
    if not pages:
        raise ValueError("no pages given")
    return tuple(sorted(pages))


def pdf_subset(data: bytes | IO[bytes] | str, pages: tuple[int, ...]) -> bytes:
    """A PDF of only ``pages`` (1-based) of ``data`` (bytes, a binary file or a path), built with
    pypdf: the pages are copied as they are, nothing is rendered."""
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(io.BytesIO(data) if isinstance(data, bytes) else data)
    writer = PdfWriter()
    for n in pages:
        writer.add_page(reader.pages[n - 1])
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()
