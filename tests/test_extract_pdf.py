"""PDF extraction on PDFs printed by Chromium (tests/fixtures/make_pdf_fixtures.py) and on broken files."""
from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pypdf
import pytest

from extract import ExtractionError, Extracted, Limits
from extract import pdf as pdf_module
from extract.layout import Line, Page, drop_running_lines, is_page_number, starts_paragraph, tidy
from extract.ocr import usable_languages
from extract.pdf import _title, extract_pdf
from text.ideographs import unify_ideographs

FIXTURES = Path(__file__).parent / "fixtures" / "pdf"
CJK = r"[\u3400-\u9fff，。：；！？、“”]"
RADICALS = re.compile(r"[\u2e80-\u2fdf\uf900-\ufaff\U0002f800-\U0002fa1f]")
CACHE: dict[str, Extracted] = {}


def extracted(name: str) -> Extracted:
    if name not in CACHE:
        CACHE[name] = extract_pdf((FIXTURES / name).read_bytes(), Limits())
    return CACHE[name]


def pdf_bytes(writer: pypdf.PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pages_are_where_their_text_is() -> None:
    doc = extracted("zh_hans.pdf")
    text = doc.original
    assert doc.format == "pdf" and doc.content.text == text
    assert len(doc.page_starts) == 3 and doc.page_starts[0] == 0
    assert list(doc.page_starts) == sorted(doc.page_starts)
    assert doc.page_of(text.index("而无需理解这些庞大的语言模型")) == 2
    assert doc.page_of(text.index("并已宣布与Azure OpenAI Service")) == 3
    assert doc.page_of(text.index("雇佣团队")) == 1
    assert doc.title == "微软为什么必须拯救OpenAI"


def test_wrapped_lines_are_joined_and_paragraphs_kept() -> None:
    text = extracted("zh_hans.pdf").original
    assert "异常激烈。也许正是微软的果断" in text  # a wrap inside a paragraph
    assert "基于大型语言模型的应用程序" in text  # a paragraph continued on the next page
    assert "\n忘记可能永远不会实现的创建通用人工智能" in text  # a paragraph start
    assert 15 <= text.count("\n") <= 30  # one per paragraph, not one per line (~100 lines)
    assert not re.search(f"{CJK} +{CJK}", text)


def test_running_headers_footers_and_page_numbers_are_dropped() -> None:
    for name in ("zh_hans.pdf", "zh_hant.pdf"):
        text = extracted(name).original
        assert "file://" not in text
        assert not re.search(r"\d+/\d+/\d+, \d+:\d+", text)  # Chromium's date header
        assert not re.search(r"(?m)^\s*\d+\s*/\s*\d+\s*$|\b[123]/[23]\b", text)
        assert "微软为什么必须拯救OpenAI" not in text and "今天的AWS，不是昨天的Azure" not in text


def test_radicals_and_compatibility_ideographs_are_unified() -> None:
    text = extracted("zh_hans.pdf").original
    assert "部首字符：生活一切首先，豈非如此。" in text  # the text layer has ⽣ ⼀ ⾸ and U+F900
    for name in ("zh_hans.pdf", "zh_hant.pdf", "two_columns.pdf", "en_hyphens.pdf"):
        assert not RADICALS.search(extracted(name).original), name


def test_traditional_chinese() -> None:
    doc = extracted("zh_hant.pdf")
    assert len(doc.page_starts) == 2
    assert "徹底取消了與微軟的排他性協議" in doc.original
    assert doc.page_of(doc.original.index("進入下一個階段")) == 2


def test_english_hyphenated_wraps_are_joined() -> None:
    text = extracted("en_hyphens.pdf").original
    for word in ("governmental", "computational", "infrastructure", "announcement", "verification"):
        assert word in text
    assert "single-provider" in text
    assert "\u2010" not in text and "\u00ad" not in text
    assert "recalibrated their expectations when the companies renegotiated it.\nInteroperability" in text


def test_two_columns_are_read_left_then_right() -> None:
    text = extracted("two_columns.pdf").original
    in_order = ["摘要:在过去三年中", "\n然而,近几个月来", "\n“谈话中会有紧张的时刻吗", "\n大多数婚姻摩擦的故事",
                "\n最终,两家公司达成了解决方案。据知情人士透露,2024年夏天", "\n其中最大的协议是与甲骨文达成的"]
    positions = [text.index(phrase) for phrase in in_order]
    assert positions == sorted(positions)


def test_pdf_metadata_titles_that_are_file_names_are_ignored() -> None:
    assert _title("Microsoft Word - 报告.docx") is None
    assert _title("untitled") is None
    assert _title("scan0001.pdf") is None
    assert _title("  ") is None
    assert _title("微软与 OpenAI 的新同盟") == "微软与 OpenAI 的新同盟"


def test_page_number_lines() -> None:
    for text in ("3", "- 3 -", "3/10", "Page 3 of 10", "第 3 页", "第3頁", "第 3 页 共 10 页"):
        assert is_page_number(text), text
    for text in ("2023年", "3 个", "Page three", "第三章", "3.5"):
        assert not is_page_number(text), text


def test_repeated_margin_lines_are_dropped_body_lines_kept() -> None:
    def page(n: int) -> Page:
        return Page([Line(f"年度报告 {n}", 50, 300, 20, 30, 10), Line("正文第一行", 50, 500, 100, 112, 12),
                     Line("年度报告", 50, 300, 400, 412, 12), Line(f"第 {n} 页", 280, 320, 760, 770, 10)],
                    612, 792)
    kept = drop_running_lines([page(n) for n in range(1, 5)])
    assert [[ln.text for ln in p.lines] for p in kept] == [["正文第一行", "年度报告"]] * 4


def test_tidy_removes_spaces_inside_cjk_only() -> None:
    assert tidy("微 软 的 OpenAI 投 资 , 以及 ( 如果 )") == "微软的 OpenAI 投资,以及(如果)"
    assert tidy("看作 “ 人工智能公司 ”，尤其是") == "看作“人工智能公司”，尤其是"
    assert tidy("the end. (Next one) he said “ yes ”") == "the end. (Next one) he said “ yes ”"


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: b"<html><body>not a pdf</body></html>", "not a PDF"),
    (lambda: (FIXTURES / "zh_hant.pdf").read_bytes()[: (FIXTURES / "zh_hant.pdf").stat().st_size // 2],
     "damaged or truncated"),
    (lambda: b"%PDF-1.7\n" + b"\x00" * 100, "damaged or truncated"),
    (lambda: pdf_bytes(pypdf.PdfWriter()), "cannot be opened"),  # zero pages: PDFium refuses to open it
])
def test_bad_files_are_refused_with_a_reason(make, reason: str) -> None:
    with pytest.raises(ExtractionError, match=reason):
        extract_pdf(make(), Limits())


def test_encrypted_pdf_is_refused() -> None:
    writer = pypdf.PdfWriter(clone_from=FIXTURES / "en_hyphens.pdf")
    writer.encrypt(user_password="secret", owner_password="owner")
    with pytest.raises(ExtractionError, match="password-protected"):
        extract_pdf(pdf_bytes(writer), Limits())


def test_page_cap_is_enforced_without_reading_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    writer = pypdf.PdfWriter()
    for _ in range(5000):
        writer.add_blank_page(200, 200)
    monkeypatch.setattr(pdf_module, "_read_pages", lambda *args: pytest.fail("pages were read past the cap"))
    with pytest.raises(ExtractionError, match=r"has 5000 pages, more than the limit of 2000 \(QA_MAX_PAGES\)"):
        extract_pdf(pdf_bytes(writer), Limits(max_pages=2000))


def test_scan_without_ocr_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (FIXTURES / "scanned_zh.pdf").read_bytes()
    with pytest.raises(ExtractionError, match="OCR is turned off"):
        extract_pdf(data, Limits(ocr=False))
    monkeypatch.setattr(pdf_module, "usable_languages", lambda wanted: None)
    with pytest.raises(ExtractionError, match="OCR is unavailable.*tesseract-ocr"):
        extract_pdf(data, Limits())
    monkeypatch.setattr(pdf_module, "usable_languages", lambda wanted: "eng")
    monkeypatch.setattr(pdf_module, "ocr_page", lambda page, langs: (_ for _ in ()).throw(RuntimeError("crashed")))
    with pytest.raises(ExtractionError, match="OCR failed: crashed"):
        extract_pdf(data, Limits())


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed (apt install tesseract-ocr)")
def test_only_installed_ocr_languages_are_asked_for() -> None:
    assert usable_languages("klingon+eng+chi_sim") == "eng+chi_sim"
    assert usable_languages("klingon") is None


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed (apt install tesseract-ocr)")
def test_mixed_pdf_ocrs_only_the_scanned_page(monkeypatch: pytest.MonkeyPatch) -> None:
    writer = pypdf.PdfWriter(clone_from=FIXTURES / "zh_hant.pdf")
    writer.append(FIXTURES / "scanned_zh.pdf")
    ocred = []
    ocr_page = pdf_module.ocr_page
    monkeypatch.setattr(pdf_module, "ocr_page", lambda page, langs: ocred.append(langs) or ocr_page(page, langs))
    doc = extract_pdf(pdf_bytes(writer), Limits())
    assert len(ocred) == 1 and len(doc.page_starts) == 3
    scanned = doc.original[doc.page_starts[2]:]
    assert doc.page_of(doc.original.index("徹底取消了與微軟的排他性協議")) == 1
    assert sum(phrase in scanned for phrase in ("明星公司", "混乱瓦解", "感恩节家庭争吵", "大型语言模型")) >= 3
    assert not re.search(f"{CJK} +{CJK}", scanned)


def test_unify_ideographs() -> None:
    assert unify_ideographs("⽣⼀⾸") == "生一首"  # Kangxi radicals
    assert unify_ideographs("⻢⻘⻓") == "马青长"  # CJK Radicals Supplement
    assert unify_ideographs("\uf900\U0002f800") == "\u8c48\u4e3d"  # compatibility ideographs
    assert unify_ideographs("\ufa11") == "\ufa11"  # 﨑 is a unified ideograph despite its block
    mixed = "OpenAI ⽣成式 AI：①②, ｆｕｌｌ"
    assert len(unify_ideographs(mixed)) == len(mixed) and unify_ideographs(mixed) == "OpenAI 生成式 AI：①②, ｆｕｌｌ"


def test_wrapped_lines_of_an_indented_quote_are_joined() -> None:
    """A blockquote is indented on both sides: its lines share the indent and must not each start a paragraph."""
    def line(text: str, x0: float, x1: float, top: float) -> Line:
        return Line(text, x0, x1, top, top + 12, 12, left=28, right=568)

    body = line("上一段正文结束了。", 28, 200, 100)
    quote = [line("尽管拥有自己令人印象深刻的 AI 研究员名单，微软极其在意 OpenAI 的", 50, 545, 130),
             line("ChatGPT语言模型，因为它依赖这些模型所作的云计算投资。", 50, 400, 146)]
    after = line("下一段正文从这里开始，它并不缩进。", 28, 560, 176)
    assert not starts_paragraph(quote[0], quote[1], 4.0)  # a wrap inside the quote
    assert starts_paragraph(body, quote[0], 4.0)  # the quote begins
    assert starts_paragraph(quote[1], after, 4.0)  # and ends


def test_characters_outside_the_bmp_are_joined_from_their_surrogate_halves() -> None:
    """PDFium gives 𫚭 (U+2B6AD, in CMRC 2018) two char indices; the line text must hold one character, and a
    stray half must not make the file unreadable (it used to raise UnicodeEncodeError further on)."""
    assert pdf_module._pair_surrogates("甲\ud86d\udeadb乙\ud800") == "甲𫚭b乙\ufffd"
    assert pdf_module._pair_surrogates("\ud86d\udead").encode("utf-8") == "𫚭".encode("utf-8")
