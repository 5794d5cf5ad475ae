"""Bytes → str for documents whose encoding nobody wrote down (UTF-8, GB18030 and Big5 are all common)."""
from __future__ import annotations

import codecs

from charset_normalizer import from_bytes


class UndecodableError(ValueError):
    """The bytes are empty, binary, or in no encoding we can identify."""


# Detection on the first 64 KiB is as reliable as on the whole file and keeps huge files cheap.
_SNIFF_BYTES = 64 * 1024
_CHINESE_ENCODINGS = ("gb18030", "big5")


def decode_bytes(data: bytes) -> str:
    """Decode a document, trying strict UTF-8 first, then charset-normalizer's best guess."""
    if not data.strip():
        raise UndecodableError("empty file")
    text = _decode_by_bom(data)
    if text is None and b"\x00" in data[:_SNIFF_BYTES]:
        raise UndecodableError("binary file (NUL bytes)")
    text = text or _try_decode(data, "utf-8") or _detect_and_decode(data)
    if text is None:
        raise UndecodableError("no text encoding fits")
    if _looks_binary(text):
        raise UndecodableError("binary file (mostly control characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode_by_bom(data: bytes) -> str | None:
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _try_decode(data, encoding)
    return None


def _try_decode(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _detect_and_decode(data: bytes) -> str | None:
    best = from_bytes(data[:_SNIFF_BYTES], cp_isolation=None).best()
    candidates = [best.encoding] if best is not None else []
    candidates += [enc for enc in _CHINESE_ENCODINGS if enc not in candidates]
    for encoding in candidates:
        text = _try_decode(data, encoding)
        if text is not None:
            return text
    return None


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f")
    return controls > len(sample) * 0.05
