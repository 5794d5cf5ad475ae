"""Word files: blocks in document order, tables row by row, and every bad file refused quickly with a reason."""
from __future__ import annotations

import io
import time
import tracemalloc
import zipfile

import docx
import pytest

import extract.docx as docx_module
from extract import ExtractionError, Limits
from extract.docx import extract_docx

LIMITS = Limits()


def _document() -> bytes:
    document = docx.Document()
    document.core_properties.title = "微软与OpenAI"
    document.add_heading("微软与OpenAI的合作", level=1)
    document.add_paragraph("微软必须拯救OpenAI。")
    document.add_paragraph("OpenAI的動作比所有人想象的都要快。")
    document.add_paragraph("Microsoft has to save OpenAI.")
    document.add_heading("要点", level=2)
    for item in ("第一点", "第二点"):
        document.add_paragraph(item, style="List Bullet")
    for item in ("one", "two"):
        document.add_paragraph(item, style="List Number")
    table = document.add_table(rows=3, cols=3)
    for row in range(3):
        for col in range(3):
            table.cell(row, col).text = f"格{row}{col}"
    document.add_paragraph("表格之后的段落。")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _refused(data: bytes, reason: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ExtractionError, match=reason):
        extract_docx(data, LIMITS)
    assert time.perf_counter() - started < 2


def test_blocks_come_in_document_order() -> None:
    extracted = extract_docx(_document(), LIMITS)
    assert extracted.original.split("\n") == [
        "微软与OpenAI的合作",
        "微软必须拯救OpenAI。",
        "OpenAI的動作比所有人想象的都要快。",
        "Microsoft has to save OpenAI.",
        "要点",
        "• 第一点",
        "• 第二点",
        "1. one",
        "2. two",
        "格00 | 格01 | 格02",
        "格10 | 格11 | 格12",
        "格20 | 格21 | 格22",
        "表格之后的段落。",
    ]
    assert extracted.format == "docx" and extracted.page_starts == ()
    assert extracted.title == "微软与OpenAI"
    assert extracted.content.text == extracted.original
    assert list(extracted.content.starts[:3]) == [0, 1, 2]


def test_no_title_when_core_properties_have_none() -> None:
    document = docx.Document()
    document.add_paragraph("正文")
    buffer = io.BytesIO()
    document.save(buffer)
    extracted = extract_docx(buffer.getvalue(), LIMITS)
    assert extracted.title is None and extracted.original == "正文"


def test_random_bytes_are_not_a_zip() -> None:
    _refused(bytes(range(256)) * 40, "not a zip archive")


def test_zip_without_document_xml() -> None:
    _refused(_zip({"hello.txt": b"hello"}), "no word/document.xml")


@pytest.mark.parametrize("magic_only", [True, False])
def test_ole_files_are_encrypted_or_legacy(magic_only: bool) -> None:
    junk = b"" if magic_only else bytes(range(256)) * 20
    _refused(docx_module.OLE_MAGIC + junk, "encrypted or password-protected")


def test_corrupt_xml() -> None:
    _refused(_zip({"word/document.xml": b"<w:document xmlns:w='x'><w:body><w:p>"}), "not well-formed")


def test_zip_bomb_is_refused_from_the_directory() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            zeros = bytes(1 << 20)
            for _ in range(300):
                member.write(zeros)
    bomb = buffer.getvalue()
    assert len(bomb) < 2 << 20
    tracemalloc.start()
    try:
        _refused(bomb, "too large|zip bomb")
        assert tracemalloc.get_traced_memory()[1] < 50 << 20
    finally:
        tracemalloc.stop()


def test_declared_sizes_that_lie_are_caught_while_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    paragraphs = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>" * 1000
    body = b"<w:document xmlns:w='x'><w:body>" + paragraphs + b"</w:body></w:document>"
    monkeypatch.setattr(docx_module, "MAX_PART_BYTES", 10_000)
    monkeypatch.setattr(docx_module, "_check_directory", lambda archive: None)
    _refused(_zip({"word/document.xml": body}), "^Word file too large: word/document.xml inflates to more than 10000")


def _nested_tables(depth: int) -> bytes:
    cell = b"<w:tbl><w:tr><w:tc>" * depth + b"<w:p><w:r><w:t>deep</w:t></w:r></w:p>" + b"</w:tc></w:tr></w:tbl>" * depth
    return _zip({"word/document.xml": b"<w:document xmlns:w='x'><w:body>" + cell + b"</w:body></w:document>"})


def test_nested_tables_are_read_up_to_lxml_depth_limit() -> None:
    assert extract_docx(_nested_tables(80), LIMITS).original == "deep"
    _refused(_nested_tables(120), "not well-formed")


def test_understated_size_is_corrupt() -> None:
    data = bytearray(_zip({"word/document.xml": b"<a>" + b"x" * 5000 + b"</a>"}))
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # uncompressed size in the central directory
    _refused(bytes(data), "corrupt")


def test_entities_are_not_expanded() -> None:
    laughs = b"""<?xml version="1.0"?>
<!DOCTYPE w:document [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:r><w:t>before &f; after</w:t></w:r></w:p></w:body></w:document>"""
    started = time.perf_counter()
    try:
        extracted = extract_docx(_zip({"word/document.xml": laughs}), LIMITS)
    except ExtractionError:
        return
    assert time.perf_counter() - started < 2
    assert len(extracted.original) < 100


def test_external_and_internal_entities_are_not_resolved() -> None:
    document = b"""<?xml version="1.0"?>
<!DOCTYPE w:document [ <!ENTITY a "INTERNAL"> <!ENTITY x SYSTEM "file:///etc/passwd"> ]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:r><w:t>before &a; &x; after</w:t></w:r></w:p></w:body></w:document>"""
    extracted = extract_docx(_zip({"word/document.xml": document}), LIMITS)
    assert extracted.original == "before   after"


def test_ratio_bomb_in_any_member() -> None:
    _refused(_zip({"word/document.xml": b"<a/>", "word/media/image1.png": bytes(20 << 20)}), "zip bomb")
