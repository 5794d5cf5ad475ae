"""Checking uploaded files before any of them touches the corpus: names, sizes, types by content, overwrites.

Every check runs on every file of a request first; only when all pass are they written, each atomically
(a temporary file renamed into place; without `replace`, a hard link that fails if the name was taken in
the meantime). So a refused request changes nothing, and a reader of the corpus never sees half a file.
"""
from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from extract import FORMATS, sniff_format
from service.errors import ApiError

MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w.\-()\[\] 　]")  # \w: letters and digits of every script (CJK names stay readable)
# What the content must be for each format: PDFs and .docx by their signatures, the rest must decode as text.
_CONTENT_OF = {"pdf": "pdf", "docx": "docx", "text": "text", "markdown": "text", "html": "text"}


@dataclass(frozen=True)
class Upload:
    doc_id: str  # corpus-relative path
    target: Path
    data: bytes
    replaces: bool  # a file of that name exists and will be replaced


def safe_name(filename: str) -> str:
    """The file name a client sent, made safe for any file system: its last path part, NFC, no control or
    reserved characters, no leading dots, at most MAX_NAME_CHARS (the extension kept)."""
    name = unicodedata.normalize("NFC", filename.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .　")
    stem, dot, suffix = name.rpartition(".")
    if dot and len(name) > MAX_NAME_CHARS:
        name = stem[: MAX_NAME_CHARS - len(suffix) - 1] + "." + suffix
    return name[:MAX_NAME_CHARS]


def safe_folder(folder: str) -> str:
    """A sub-folder of the corpus from a client's `folder` field: each part made safe, '.' and '..' refused."""
    parts = [p for p in folder.replace("\\", "/").split("/") if p.strip()]
    if any(p.strip() in (".", "..") for p in parts):
        raise ApiError(400, "invalid_folder", "folder must not contain '.' or '..' parts")
    safe = [safe_name(p) for p in parts]
    if any(not p for p in safe):
        raise ApiError(400, "invalid_folder", f"folder {folder!r} has a part with no usable characters")
    return "/".join(safe)


def check_upload(corpus: Path, folder: str, filename: str, data: bytes, max_bytes: int, replace: bool) -> Upload:
    name = safe_name(filename or "")
    format = FORMATS.get(Path(name).suffix.lower())
    if not name or format is None:
        raise ApiError(415, "unsupported_file_type", f"{filename!r}: only {', '.join(sorted(FORMATS))} files can be "
                                                     "added")
    if len(data) > max_bytes:
        raise ApiError(413, "payload_too_large", f"{filename!r} has {len(data)} bytes, more than {max_bytes} "
                                                 "(QA_MAX_UPLOAD_MB)")
    if not data.strip():
        raise ApiError(400, "empty_file", f"{filename!r} is empty")
    found = sniff_format(data)
    if found != _CONTENT_OF[format]:
        what = {"pdf": "a PDF", "docx": "a Word .docx file", "text": "text"}.get(found or "", "binary data")
        raise ApiError(415, "file_type_mismatch", f"{filename!r} is named as {format} but its content is {what}")
    doc_id = f"{folder}/{name}" if folder else name
    target = corpus / doc_id
    if not target.parent.resolve().is_relative_to(corpus.resolve()):
        raise ApiError(400, "invalid_folder", f"folder {folder!r} leads outside the corpus")
    exists = target.exists() or target.is_symlink()
    if exists and not target.is_file():
        raise ApiError(409, "already_exists", f"{doc_id} exists in the corpus and is not a regular file")
    if exists and not replace:
        raise ApiError(409, "already_exists", f"{doc_id} is already in the corpus; send replace=true to replace it")
    return Upload(doc_id, target, data, exists)


def write_upload(upload: Upload) -> None:
    upload.target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=upload.target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(upload.data)
        if upload.replaces:
            os.replace(tmp, upload.target)
        else:
            try:
                os.link(tmp, upload.target)  # fails if another request took the name since it was checked
            except FileExistsError:
                raise ApiError(409, "already_exists", f"{upload.doc_id} was added meanwhile; "
                                                      "send replace=true to replace it") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
