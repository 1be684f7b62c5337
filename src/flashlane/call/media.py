"""Media as inputs: ``fl.File`` (and ``pathlib.Path``) wherever an item's text goes.

An item's text stays a string through the whole pipeline (templates, ids, hashes, the run
store, resume, cache keys), so a file inside it is written as a *marker* naming its content
hash: ``⟦file sha256:…⟧``. Only ``request.build_call`` turns markers into parts, once, so every
path that builds a request (one call, streams, tasks, ``lane.map``, runs, batch jobs) sends the
same parts; and since the marker is the file's hash, a changed file changes the item's hash
(a rerun re-asks it) while an unchanged one resumes.

A request's files go inline (``inlineData``) while they fit its inline limit; the largest of the
rest are referenced (``fileData``) by a placeholder uri naming their upload digest, which
``uploads.Uploads`` swaps for the uri of the file uploaded through the Files API just before the
request is sent.

Everything that can be wrong with a file (missing, unreadable, an unsupported type, too large
for the Files API) is found when the ``File`` is made: before any request is sent.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError, unreadable
from ..media import (
    FILES_API_MAX_FILE_BYTES,
    MEDIA_RESOLUTIONS,
    SNIFF_BYTES,
    SUPPORTED_MIME_TYPES,
    MediaInfo,
    measure,
    media_tokens,
    normalize_mime,
    page_selection,
    pdf_subset,
    sniff_mime,
    wire_resolution,
)
from ..models import estimate_tokens

__all__ = ["File", "MARKER", "Marked", "Tokens", "UPLOAD_URI", "as_file", "fetch", "is_url", "as_text", "with_files", "has_media",
           "marked_files", "marked_tokens", "media_parts", "split_marked", "uploaded_hash"]

_HASH_CHARS = 32  # 128 bits of sha256: unique among any run's files
MARKER = "⟦file sha256:{}⟧"
# A file's own media_resolution (Gemini 3, per part) is part of its marker (``…@low``), so the
# same bytes at two resolutions are two markers, and the item's hash changes with the level.
# Likewise the pages sent of a PDF (``…#1-3``).
_MARKER_RE = re.compile(f"⟦file sha256:([0-9a-f]{{{_HASH_CHARS}}}(?:@(?:{'|'.join(MEDIA_RESOLUTIONS)}))?(?:#[0-9,-]+)?)⟧")
_READ_CHUNK = 1 << 20
# A fileData part's uri until its file is uploaded (uploads.Uploads swaps it): names the upload digest.
UPLOAD_URI = "flashlane-upload:{}"
_SUPPORTED_LIST = "PNG, JPEG, WEBP, HEIC, HEIF, PDF, WAV, MP3, AIFF, AAC, OGG, FLAC"

# Marker -> File, for as long as something (an item, a call's options) holds the File: the
# marker in the text is how the request builder finds the bytes again, without threading a
# side channel through every layer between the item and the request.
_LIVE: weakref.WeakValueDictionary[str, File] = weakref.WeakValueDictionary()


class File:
    """A document, image or audio file as an input: ``fl.File("inv.pdf")``,
    ``fl.File(png_bytes)``, ``fl.File(path, mime_type="image/png")``.

    The type comes from the content (magic bytes); ``mime_type`` overrides it. Paths are read
    again when the request is built, so a run holds no file in memory between requests.
    ``media_resolution`` (low / medium / high) sets this file's own level (Gemini 3 only: the
    API takes it per part there), over the run's or the call's. ``pages`` (``"1-3"``,
    ``"1,4-5"``) sends only those pages of a PDF (a smaller PDF built when the request is; pages
    past the end are left out); other files ignore it."""

    __slots__ = ("_data", "path", "name", "mime_type", "size", "sha256", "info", "media_resolution", "pages",
                 "__weakref__")
    name: str  # the path or URL as given, or "bytes"

    def __init__(self, source: str | Path | bytes | bytearray | File, mime_type: str | None = None, *,
                 media_resolution: str | None = None, pages: str | None = None) -> None:
        if isinstance(source, File):
            media_resolution = media_resolution or source.media_resolution
            pages = pages or source.page_spec
            url = source.name if is_url(source.name) else None
            source = url or (source.path if source.path is not None else source._source_bytes())
        if media_resolution is not None and media_resolution not in MEDIA_RESOLUTIONS:
            raise InputError(f"media_resolution must be one of {', '.join(MEDIA_RESOLUTIONS)}, not {media_resolution!r}",
                             hint='e.g. fl.File("scan.png", media_resolution="low")')
        self.media_resolution: str | None = media_resolution
        self.pages: tuple[int, ...] | None = None  # the PDF pages sent (1-based), None: all
        self._data: bytes | None = None
        self.path: Path | None = None
        if isinstance(source, (bytes, bytearray)):
            self._data = bytes(source)
            self.name = "bytes"
            head, digest, size = self._data[:SNIFF_BYTES], hashlib.sha256(self._data).hexdigest(), len(self._data)
        elif isinstance(source, str) and is_url(source):
            self.name = source
            self.path, head, digest, size = fetch(source)
        elif isinstance(source, (str, Path)):
            self.path = Path(source)
            self.name = str(source)
            head, digest, size = _scan(self.path)
        else:
            raise InputError(f"fl.File takes a path or bytes, not {type(source).__name__}",
                             hint='e.g. fl.File("invoice.pdf") or fl.File(png_bytes)')
        if size == 0:
            raise InputError(f"{self.name} is empty", hint="pass a file with content")
        mime = normalize_mime(mime_type) if mime_type else sniff_mime(head)
        if mime is None or mime not in SUPPORTED_MIME_TYPES:
            what = f"type {mime}" if mime else "an unrecognised type"
            raise InputError(f"{self.name} is {what}, which Gemini does not read",
                             hint=f"supported: {_SUPPORTED_LIST}")
        if size > FILES_API_MAX_FILE_BYTES:
            raise _too_large(self.name, size)
        try:
            self.info: MediaInfo = measure(mime, self._data if self._data is not None else str(self.path))
        except ValueError as e:
            raise InputError(f"{self.name}: {e}", hint="check that the file is not damaged") from None
        self.mime_type, self.size, self.sha256 = mime, size, digest
        if pages and self.info.pages is not None:
            self._select(pages)
        _LIVE[self.marker_id] = self

    def _select(self, spec: str) -> None:
        try:
            wanted = page_selection(spec)
        except ValueError as e:
            raise InputError(f"pages {spec!r}: {e}", hint='e.g. --pages 1-3, or pages="1,4-5"') from None
        total = self.info.pages or 0
        chosen = tuple(p for p in wanted if p <= total)
        if not chosen:
            raise InputError(f"{self.name} has {total} page(s); pages {spec!r} selects none of them",
                             hint="pick pages within the document")
        if len(chosen) < total:
            self.pages = chosen
            self.info = replace(self.info, pages=len(chosen))

    @property
    def page_spec(self) -> str | None:
        """The pages sent, as ``"1-3,5"`` (None: all)."""
        if not self.pages:
            return None
        runs: list[list[int]] = []
        for p in self.pages:
            if runs and p == runs[-1][1] + 1:
                runs[-1][1] = p
            else:
                runs.append([p, p])
        return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in runs)

    @property
    def marker_id(self) -> str:
        level = f"@{self.media_resolution}" if self.media_resolution else ""
        pages = f"#{self.page_spec}" if self.pages else ""
        return self.sha256[:_HASH_CHARS] + level + pages

    def data(self) -> bytes:
        """The bytes sent: the file's, or only its chosen pages (a PDF built now, one at a time)."""
        if self.pages:
            try:
                return pdf_subset(self._data if self._data is not None else str(self.path), self.pages)
            except OSError as e:
                raise InputError(f"cannot read {self.name}: {e.strerror or e}", hint="check the path") from None
        return self._source_bytes()

    def _source_bytes(self) -> bytes:
        if self._data is not None:
            return self._data
        assert self.path is not None
        try:
            return self.path.read_bytes()
        except OSError as e:
            raise InputError(f"cannot read {self.name}: {e.strerror or e}", hint="check the path") from None

    def tokens(self, model: str, resolution: str | None = None) -> int:
        """Input tokens this file costs on ``model`` at its own media resolution, else
        ``resolution`` (the call's), else the default (media.media_tokens: the rule the emulator bills by)."""
        return media_tokens(model, self.info, self.media_resolution or resolution)

    def part(self) -> Any:
        from google.genai import types

        return types.Part.from_bytes(data=self.data(), mime_type=self.mime_type, media_resolution=self._level())

    def _level(self) -> Any:
        from google.genai import types

        # types.Part.media_resolution is a PartMediaResolution (google-genai types.py; sent as
        # part.mediaResolution = {"level": "MEDIA_RESOLUTION_LOW"}).
        return types.PartMediaResolution(level=types.PartMediaResolutionLevel(wire_resolution(self.media_resolution))) \
            if self.media_resolution else None

    @property
    def upload_digest(self) -> str:
        """What an upload of this file is keyed and named by: the content's sha256, or, when only
        some pages are sent, a digest of the content's hash and those pages (the bytes uploaded)."""
        if not self.pages:
            return self.sha256
        return hashlib.sha256(f"{self.sha256}#{self.page_spec}".encode()).hexdigest()

    def ref_part(self) -> Any:
        """The ``fileData`` part that references this file once uploaded (a placeholder uri until then)."""
        from google.genai import types

        return types.Part(file_data=types.FileData(file_uri=UPLOAD_URI.format(self.upload_digest),
                                                   mime_type=self.mime_type), media_resolution=self._level())

    def source(self) -> str | bytes:
        """What an upload reads: the path (streamed by the SDK), or the bytes sent (in-memory files,
        chosen pages)."""
        return str(self.path) if self.path is not None and not self.pages else self.data()

    def __str__(self) -> str:
        return MARKER.format(self.marker_id)

    def __format__(self, spec: str) -> str:
        return str(self)

    def __repr__(self) -> str:
        level = f", media_resolution={self.media_resolution!r}" if self.media_resolution else ""
        return f"File({self.name!r}, mime_type={self.mime_type!r}{level})"


# URLs. What Gemini reads by URL (a ``fileData`` part): Files API uris; YouTube videos; and, since
# 2026-01-12, public and signed HTTPS URLs, which "the Gemini API securely fetches ... during
# processing" (blog.google, "Increased file size limits and expanded inputs support in Gemini API";
# ai.google.dev/gemini-api/docs/file-input-methods, "External URLs"). flashlane fetches a URL itself
# instead, once per process, streamed to a temporary file: its type, pages and tokens are then known
# before anything is sent (estimates, budgets), the item's hash is the content's (a changed document
# is asked again, an unchanged one resumes), a URL that cannot be read fails before money is spent,
# and it is sent like any local file (inline, or uploaded once). The bytes pass through the client.
URL_SCHEMES = ("http://", "https://")
FETCH_TIMEOUT_S = 60.0
_FETCHED: dict[str, tuple[Path, bytes, str, int]] = {}  # url -> (temporary file, head, sha256, size)
_FETCH_DIR: list[Path] = []


def is_url(value: str) -> bool:
    return value[:8].lower().startswith(URL_SCHEMES)


def _fetch_dir() -> Path:
    if not _FETCH_DIR:
        import atexit
        import shutil
        import tempfile

        d = Path(tempfile.mkdtemp(prefix="flashlane-urls-"))
        atexit.register(shutil.rmtree, d, True)
        _FETCH_DIR.append(d)
    return _FETCH_DIR[0]


def fetch(url: str) -> tuple[Path, bytes, str, int]:
    """A URL's content in a temporary file (fetched once per process, streamed: never whole in memory),
    with its head, sha256 and size. One-line InputError when it cannot be fetched."""
    if url in _FETCHED:
        return _FETCHED[url]
    import urllib.error
    import urllib.request

    target = _fetch_dir() / hashlib.sha256(url.encode()).hexdigest()
    h, size, head = hashlib.sha256(), 0, b""
    try:
        # The standard library's client: a GET that follows redirects, read in chunks.
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as r, target.open("wb") as out:  # noqa: S310 - http(s) only (is_url)
            while chunk := r.read(_READ_CHUNK):
                if not head:
                    head = chunk[:SNIFF_BYTES]
                size += len(chunk)
                if size > FILES_API_MAX_FILE_BYTES:
                    raise _too_large(url, size)
                h.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as e:
        target.unlink(missing_ok=True)
        raise InputError(f"cannot fetch {url}: {e.code} {e.reason}",
                         hint="check the URL (it must be readable without credentials)") from None
    except (urllib.error.URLError, OSError) as e:
        target.unlink(missing_ok=True)
        raise InputError(f"cannot fetch {url}: {getattr(e, 'reason', None) or e}",
                         hint="check the URL and the network") from None
    except InputError:
        target.unlink(missing_ok=True)
        raise
    _FETCHED[url] = (target, head, h.hexdigest(), size)
    return _FETCHED[url]


def _too_large(name: str, size: int) -> InputError:
    return InputError(f"{name} is {size / 2**30:.2f} GiB; the Files API takes files of at most "
                      f"{FILES_API_MAX_FILE_BYTES / 2**30:.0f} GiB", hint="split or compress the file")


def _scan(path: Path) -> tuple[bytes, str, int]:
    """The head, the sha256 and the size of a file, streamed (never the whole file in memory); a
    file too large to send is refused before it is read."""
    h, size, head = hashlib.sha256(), 0, b""
    try:
        if (total := path.stat().st_size) > FILES_API_MAX_FILE_BYTES and path.is_file():
            raise _too_large(str(path), total)
        with path.open("rb") as f:
            while chunk := f.read(_READ_CHUNK):
                if not head:
                    head = chunk[:SNIFF_BYTES]
                h.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise unreadable(path, e) from None
    return head, h.hexdigest(), size


def as_file(value: Any) -> File | None:
    if isinstance(value, File):
        return value
    if isinstance(value, Path):
        return File(value)
    return None


def with_files(value: Any) -> Any:
    """``value`` with every Path made an ``fl.File`` (a list's too), so the item that holds it
    keeps its files alive and stores their markers; anything else unchanged."""
    if isinstance(value, Path):
        return File(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, (File, Path)) for v in value):
        return [File(v) if isinstance(v, Path) else v for v in value]
    return value


class Marked(str):
    """Text with file markers that also holds the files, so they stay alive (and their markers
    resolve) for as long as the text is held: a call's options, a prompt being built."""

    __slots__ = ("files",)
    files: tuple[File, ...]

    def __new__(cls, text: str, files: Iterable[File]) -> Marked:
        self = super().__new__(cls, text)
        self.files = tuple(files)
        return self


def as_text(value: Any) -> Any:
    """An item's value with its files as markers: a File or Path, or a list mixing them with text
    (``[fl.File("p.jpg"), "caption"]``, joined by newlines). Anything else is returned as is."""
    f = as_file(value)
    if f is not None:
        return Marked(str(f), [f])
    if isinstance(value, (list, tuple)) and any(isinstance(v, (File, Path)) for v in value):
        pieces = [as_file(v) or v for v in value]
        return Marked("\n".join(str(p) for p in pieces), [p for p in pieces if isinstance(p, File)])
    return value


def has_media(text: str) -> bool:
    return "⟦file" in text and _MARKER_RE.search(text) is not None


def split_marked(text: str) -> list[str | File]:
    """``text`` cut at its markers: the text between them and the File each names."""
    out: list[str | File] = []
    pos = 0
    for m in _MARKER_RE.finditer(text):
        f = _LIVE.get(m.group(1))
        if f is None:  # a marker-shaped string with no file behind it: leave it as text
            continue
        if m.start() > pos:
            out.append(text[pos:m.start()])
        out.append(f)
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


@dataclass(frozen=True)
class Tokens:
    """The input tokens of marked text: its text, its files, and of the files the audio's."""

    text: int = 0
    media: int = 0
    audio: int = 0
    files: int = 0
    pages: int = 0  # PDF pages among the files (those sent)
    file_bytes: int = 0  # the files' sizes (a PDF's whole, also when only some pages are sent)

    @property
    def total(self) -> int:
        return self.text + self.media


def marked_tokens(text: str, model: str, resolution: str | None = None) -> Tokens:
    """What ``text`` (which may hold file markers) costs on ``model`` as ``build_call`` estimates
    it: each text piece by ``estimate_tokens``, each file by the media rules at its own
    resolution, else ``resolution``. Reads no file: pages and sizes were read when it was made."""
    if not has_media(text):
        return Tokens(text=estimate_tokens(text))
    out = Tokens()
    for piece in split_marked(text):
        if isinstance(piece, File):
            n = piece.tokens(model, resolution)
            out = replace(out, media=out.media + n, pages=out.pages + (piece.info.pages or 0), files=out.files + 1,
                          file_bytes=out.file_bytes + piece.size,
                          audio=out.audio + (n if piece.mime_type.startswith("audio/") else 0))
        elif piece.strip():
            out = replace(out, text=out.text + estimate_tokens(piece))
    return out


def marked_files(text: str) -> list[File]:
    return [p for p in split_marked(text) if isinstance(p, File)]


def media_parts(text: str, by_ref: frozenset[str] = frozenset()) -> tuple[list[Any], list[File]]:
    """The parts of a user turn whose text may hold markers, and the files among them; files whose
    upload digest is in ``by_ref`` are referenced (``fileData``, to be uploaded), the rest go inline."""
    from google.genai import types

    parts: list[Any] = []
    files: list[File] = []
    for piece in split_marked(text):
        if isinstance(piece, File):
            parts.append(piece.ref_part() if piece.upload_digest in by_ref else piece.part())
            files.append(piece)
        elif piece.strip():
            parts.append(types.Part(text=piece))
    return parts, files


def uploaded_hash(part: Any) -> str | None:
    """The upload digest a placeholder ``fileData`` part names, or None for any other part."""
    fd = getattr(part, "file_data", None)
    uri = getattr(fd, "file_uri", None) or ""
    prefix = UPLOAD_URI.format("")
    return uri[len(prefix):] if uri.startswith(prefix) else None

