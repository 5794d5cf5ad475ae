"""Reading a corpus folder: encodings detected, junk skipped with a reason, nothing crashes."""
from pathlib import Path

import pytest

from stores import index_dir
from indexer.build import build_index
from stores.sqlite import SqliteReader

from conftest import process_corpus
from text.decode import UndecodableError, decode_bytes

TRADITIONAL = "微軟與OpenAI的協議結束了Azure長達六年的雲服務獨佔模式。輝達的GPU供不應求，數據中心的電力成為瓶頸。"
SIMPLIFIED = "微软与OpenAI的协议结束了Azure长达六年的云服务独占模式。英伟达的GPU供不应求，数据中心的电力成为瓶颈。"


@pytest.mark.parametrize(
    "text, encoding",
    [(SIMPLIFIED, "gb18030"), (TRADITIONAL, "big5"), (TRADITIONAL, "utf-8"), (SIMPLIFIED, "utf-16")],
)
def test_decodes_common_chinese_encodings(text, encoding):
    assert decode_bytes(text.encode(encoding)) == text


@pytest.mark.parametrize("data", [b"", b"   \n", b"\x00\x01\x02binary\x00" * 50, bytes(range(256)) * 20])
def test_rejects_empty_and_binary(data):
    with pytest.raises(UndecodableError):
        decode_bytes(data)


def test_corpus_walk_reads_what_it_can_and_reports_the_rest(tmp_path: Path):
    (tmp_path / "gb.txt").write_bytes(("标题\n" + SIMPLIFIED).encode("gb18030"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "big5.md").write_bytes(("標題\n" + TRADITIONAL).encode("big5"))
    (tmp_path / "page.html").write_text(f"<html><body><h1>网页</h1><p>{SIMPLIFIED}</p></body></html>", "utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blob.txt").write_bytes(b"\x00\xff\x10" * 100)
    (tmp_path / "image.png").write_bytes(b"\x89PNG....")
    (tmp_path / "chrome.txt").write_text("加载中...\n关闭\n", "utf-8")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    documents, reasons = process_corpus(tmp_path)
    assert sorted(documents) == ["gb.txt", "page.html", "sub/big5.md"]
    assert documents["gb.txt"].original.endswith(SIMPLIFIED) and documents["gb.txt"].language == "zh-Hans"
    assert documents["sub/big5.md"].title == "標題" and documents["sub/big5.md"].language == "zh-Hant"
    assert documents["page.html"].clean_text == "网页\n" + SIMPLIFIED
    assert set(reasons) == {"empty.txt", "blob.txt", "image.png", "chrome.txt", "dangling.txt"}
    assert "empty" in reasons["empty.txt"] and "binary" in reasons["blob.txt"]
    assert "unsupported" in reasons["image.png"] and "no text" in reasons["chrome.txt"]


def test_titles_and_manifest_overrides(tmp_path: Path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("<!-- \ntitle: 头注标题\n -->\n\n正文。", "utf-8")
    (corpus / "b.txt").write_text("第一行标题\n正文。", "utf-8")
    (corpus / "manifest.json").write_text('{"b.txt": {"title": "清单标题", "url": "https://x", "date": "2025-01-01"}}')
    build = Path(build_index(corpus, tmp_path / "index", embedder, progress=False).where)
    store = SqliteReader(build / index_dir.STORE)
    assert store.document("a.txt").title == "头注标题"
    b = store.document("b.txt")
    assert (b.title, b.url, b.date) == ("清单标题", "https://x", "2025-01-01")
