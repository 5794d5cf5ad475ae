"""The Milvus store against a real Milvus Lite server: writes, reads, rewrites and model changes (outages:
test_milvus_outage.py)."""
from __future__ import annotations

import numpy as np
import pytest
from pymilvus import MilvusClient

from milvus_fixtures import (DIM, EN, MODEL, ODD, ODD_FOLDER, ZH, build, built, corpus, location,  # noqa: F401
                             manifest, publish, server, vectors_for)  # fixtures: built, location, server
from indexer.process import process
from stores import milvus_store
from stores.contract import FORMAT_VERSION, DocumentMeta, IndexUnusable, Scope
from stores.milvus_schema import MAX_VARCHAR_BYTES, passage_id
from text.normalize import fold_script
from text.segment import keyword_tokens


def test_published_build_is_opened_with_its_manifest_and_counts(built):
    location, documents, _ = built
    assert location.published() == "b1" and str(location) == f"milvus {location.uri}/built"
    store = location.open(MODEL, DIM)
    passages = sum(len(d.passages) for d in documents.values())
    assert store.manifest["counts"] == {"skipped": 0, "documents": len(documents), "passages": passages}
    assert store.passage_count == passages and store.manifest["model"] == {"id": MODEL, "dim": DIM}


def test_the_manifest_holds_the_mean_of_every_vector_and_vectors_read_back_by_id(built):
    location, documents, vectors = built
    store = location.open(MODEL, DIM)
    every = np.concatenate([vectors[doc_id] for doc_id in sorted(documents)])
    assert np.allclose(store.manifest["mean_vector"], every.mean(axis=0), atol=1e-6)
    ids = [passage_id("notes/en.txt", 0), passage_id("pdf/zh_hans.pdf", 1), passage_id("notes/en.txt", 0)]
    expected = np.stack([vectors["notes/en.txt"][0], vectors["pdf/zh_hans.pdf"][1], vectors["notes/en.txt"][0]])
    assert np.allclose(store.vectors(ids), expected, atol=1e-6)


def test_past_mean_sample_passages_the_mean_is_of_a_uniform_sample_by_id(location, monkeypatch):
    monkeypatch.setattr(milvus_store, "MEAN_SAMPLE", 4)
    documents = corpus()
    vectors = build(location, documents)
    rows = [(passage_id(doc_id, i), v) for doc_id in documents for i, v in enumerate(vectors[doc_id])]
    stride = -(-len(rows) // 4)
    sampled = [v for pid, v in rows if pid < 2**63 // stride]
    assert 0 < len(sampled) < len(rows)
    assert np.allclose(location.open(MODEL, DIM).manifest["mean_vector"], np.mean(sampled, axis=0), atol=1e-6)


def test_passages_come_back_as_written(built):
    location, documents, _ = built
    store = location.open(MODEL, DIM)
    pdf = documents["pdf/zh_hans.pdf"]
    ids = [passage_id("pdf/zh_hans.pdf", i) for i in range(len(pdf.passages))]
    read = store.passages(ids + [12345])
    assert sorted(read) == sorted(ids)
    for ordinal, written in enumerate(pdf.passages):
        passage = read[ids[ordinal]]
        assert (passage.doc_id, passage.title, passage.language) == ("pdf/zh_hans.pdf", "title of pdf/zh_hans.pdf",
                                                                     pdf.language)
        assert (passage.start, passage.end, passage.clean_start, passage.clean_end, passage.text, passage.folded) == (
            written.start, written.end, written.clean_start, written.clean_end, written.text, written.folded)
        assert (passage.page, passage.page_end) == (written.page, written.page_end)
    assert read[ids[0]].page == 1 and store.passages([passage_id("notes/en.txt", 0)])[passage_id("notes/en.txt", 0)].page is None


def test_documents_are_whole_with_their_metadata(built):
    location, documents, _ = built
    store = location.open(MODEL, DIM)
    pdf = store.document("pdf/zh_hans.pdf")
    written = documents["pdf/zh_hans.pdf"]
    assert (pdf.clean_text, pdf.extracted_text, pdf.page_starts) == (
        written.clean_text, written.original, written.clean_page_starts)
    assert (pdf.format, pdf.passage_count, pdf.original_length, pdf.sha256) == (
        "pdf", len(written.passages), len(written.original), "sha-pdf/zh_hans.pdf")
    text = store.document("notes/en.txt")
    assert text.extracted_text is None and text.clean_text == documents["notes/en.txt"].clean_text
    assert text.language == "en" and text.url is None and text.page_starts == []
    assert store.document(ODD).title == f"title of {ODD}"
    assert store.document("missing.txt") is None


def test_listing_pages_in_doc_id_order_and_scopes_folders(built):
    location, documents, _ = built
    store = location.open(MODEL, DIM)
    every = store.documents(limit=100)
    assert [d["doc_id"] for d in every] == sorted(documents)
    assert set(every[0]) == {"doc_id", "title", "language", "format", "passages", "sha256"}
    assert [d["doc_id"] for d in store.documents(offset=1, limit=2)] == sorted(documents)[1:3]
    assert [d["doc_id"] for d in store.documents("notes")] == ["notes/en.txt", "notes/zh/微软.txt"]
    assert [d["doc_id"] for d in store.documents("/notes/zh/")] == ["notes/zh/微软.txt"]
    assert store.document_count() == len(documents) and store.document_count("notes") == 2
    assert store.document_count("nowhere") == 0 and store.documents("notes", offset=5) == []


def test_dense_search_ranks_by_cosine_within_the_scope(built):
    location, documents, vectors = built
    store = location.open(MODEL, DIM)
    target = passage_id("notes/zh/微软.txt", 1)
    hits = store.dense(vectors["notes/zh/微软.txt"][1], 5, Scope())
    best = int(hits.scores.argmax())
    assert len(hits) == 5 and hits.ids[best] == target
    assert hits.scores[best] == pytest.approx(1.0, abs=1e-4) and hits.languages[best] == "zh-Hans"
    english = store.dense(vectors["notes/zh/微软.txt"][1], 100, Scope(language="en"))
    assert english and set(english.languages) == {"en"}
    assert set(english.ids.tolist()) == {passage_id(d, i) for d, document in documents.items() if document.language == "en"
                            for i in range(len(document.passages))}
    in_folder = store.dense(vectors["notes0.txt"][0], 100, Scope(folder="notes"))
    folder_ids = {passage_id(d, i) for d in ("notes/en.txt", "notes/zh/微软.txt") for i in range(len(documents[d].passages))}
    assert set(in_folder.ids.tolist()) == folder_ids
    assert store.dense(vectors[ODD][0], 3, Scope(folder=ODD_FOLDER)).ids.tolist() == [passage_id(ODD, 0)]
    assert len(store.dense(vectors[ODD][0], 3, Scope(folder="notes/zh", language="en"))) == 0


def test_keyword_search_takes_our_tokens_and_scores_positive(built):
    location, _, _ = built
    store = location.open(MODEL, DIM)
    tokens = keyword_tokens(fold_script("纳德拉说数据中心").casefold())
    hits = store.keyword(tokens, 10, Scope())
    assert hits and (hits.scores > 0).all()
    best = store.passages([int(hits.ids[hits.scores.argmax()])])
    assert next(iter(best.values())).doc_id in ("notes/zh/微软.txt", "notes0.txt")
    english = store.keyword(keyword_tokens("nadella partnership"), 10, Scope())
    top = int(english.scores.argmax())
    best = int(english.ids[top])
    assert english.languages[top] == "en" and store.passages([best])[best].doc_id == "notes/en.txt"
    assert set(store.keyword(keyword_tokens("nadella"), 10, Scope(language="en")).ids.tolist()) <= {
        passage_id("notes/en.txt", i) for i in range(10)}
    assert len(store.keyword(keyword_tokens("partnership"), 10, Scope(folder="notes/zh"))) == 0
    assert store.keyword(keyword_tokens("奇怪"), 10, Scope(folder=ODD_FOLDER)).ids.tolist() == [passage_id(ODD, 0)]
    assert [d["doc_id"] for d in store.documents(ODD_FOLDER)] == [ODD]
    assert len(store.keyword([], 10, Scope())) == 0 and len(store.keyword(["zzzunknown"], 10, Scope())) == 0


def test_rewrite_drops_stale_passages_and_delete_removes_a_document(location):
    long_text = "。".join(f"第{i}段讲述数据中心的电力与芯片供应" for i in range(60)) + "。"
    build(location, {"a/long.txt": process(long_text.encode(), "text"), "a/keep.txt": process(EN.encode(), "text")})
    long_passages = len(process(long_text.encode(), "text").passages)
    assert long_passages > 2
    writer = location.writer("b2", MODEL)
    assert writer.stored() == {"a/long.txt": "v1", "a/keep.txt": "v1"}
    short = process("短了很多的新版本。".encode(), "text")
    writer.write(DocumentMeta("a/long.txt", "sha-new", "new title"), short, vectors_for(short, 9), "v2")
    writer.delete(["a/keep.txt"])
    publish(writer, manifest("b2"))
    writer.close()
    store = location.open(MODEL, DIM)
    assert location.published() == "b2" and store.manifest["counts"]["passages"] == store.passage_count == 1
    ids = [passage_id("a/long.txt", i) for i in range(long_passages)]
    assert list(store.passages(ids)) == [ids[0]] and store.passages(ids)[ids[0]].text == "短了很多的新版本。"
    assert store.document("a/long.txt").clean_text == "短了很多的新版本。" and store.document("a/keep.txt") is None
    assert [d["doc_id"] for d in store.documents()] == ["a/long.txt"]
    assert len(store.keyword(keyword_tokens("openai"), 10, Scope())) == 0
    assert location.writer("b3", MODEL).stored() == {"a/long.txt": "v2"}


def test_passages_without_a_document_row_are_reported_for_rewriting(location, server):
    build(location, {"x.txt": process(EN.encode(), "text"), "y.txt": process(ZH.encode(), "text")})
    client = MilvusClient(server.uri)  # as if a build had died between writing x.txt's passages and its row
    client.delete(location.names.documents, filter='doc_id == "x.txt"')
    client.close()
    assert location.writer("b2", MODEL).stored() == {"x.txt": "", "y.txt": "v1"}


def test_another_model_starts_the_collections_over(location):
    build(location, {"one.txt": process(EN.encode(), "text")})
    writer = location.writer("b2", "other-model")
    assert writer.stored() == {}
    assert location.published() is None  # dropped: nothing half-old is served as the new model's build
    document = process(ZH.encode(), "text")
    writer.write(DocumentMeta("two.txt", "sha", "two"), document, vectors_for(document, 1), "v1")
    publish(writer, manifest("b2", "other-model"))
    store = location.open("other-model", DIM)
    assert [d["doc_id"] for d in store.documents()] == ["two.txt"]
    with pytest.raises(IndexUnusable, match="built with model other-model"):
        location.open(MODEL, DIM)


def test_another_dimension_starts_the_collections_over(location):
    build(location, {"one.txt": process(EN.encode(), "text")})
    document = process(ZH.encode(), "text")
    wide = np.ones((len(document.passages), 2 * DIM), dtype=np.float32) / np.sqrt(2 * DIM)
    writer = location.writer("b2", MODEL)
    assert writer.stored() == {"one.txt": "v1"}  # the build now skips one.txt: losing it must fail the build
    with pytest.raises(ValueError, match="held 8-d vectors .* gives 16-d; the collections were emptied"):
        writer.write(DocumentMeta("two.txt", "sha", "two"), document, wide, "v1")
    writer = location.writer("b3", MODEL)
    assert writer.stored() == {}
    writer.write(DocumentMeta("two.txt", "sha", "two"), document, wide, "v1")
    with pytest.raises(ValueError, match="8-d vectors after 16-d ones"):
        writer.write(DocumentMeta("three.txt", "sha", "three"), document, vectors_for(document, 1), "v1")
    publish(writer, manifest("b3", dim=2 * DIM))
    assert [d["doc_id"] for d in location.open(MODEL, 2 * DIM).documents()] == ["two.txt"]


def test_open_says_what_is_wrong(location, server):
    with pytest.raises(IndexUnusable, match="no published build in milvus .*; build one"):
        location.open(MODEL, DIM)
    assert location.published() is None and location.manifest() is None
    writer = location.writer("b1", MODEL)
    document = process(EN.encode(), "text")
    writer.write(DocumentMeta("one.txt", "sha", "one"), document, vectors_for(document, 1), "v1")
    writer._flush()
    with pytest.raises(IndexUnusable, match="no published build"):  # written, never published
        location.open(MODEL, DIM)
    publish(writer, manifest("b1", format_version=FORMAT_VERSION - 1))
    with pytest.raises(IndexUnusable, match=f"index format {FORMAT_VERSION - 1} .* rebuild"):
        location.open(MODEL, DIM)
    publish(writer, manifest("b1"))
    with pytest.raises(IndexUnusable, match=f"built with model {MODEL} \\(8-d\\) but the service runs other"):
        location.open("other", DIM)
    with pytest.raises(IndexUnusable, match="\\(16-d\\)"):
        location.open(MODEL, 16)
    client = MilvusClient(server.uri)
    client.drop_collection(location.names.documents)
    client.close()
    with pytest.raises(IndexUnusable, match="incomplete: collection .*_documents is missing"):
        location.open(MODEL, DIM)


def test_long_texts_are_cut_into_parts_and_long_passages_read_back(location):
    text = "Проверка связи без единой точки " * 3000  # ~170 KB, no Han or Latin units: one passage
    document = process(text.encode(), "text")
    assert len(document.passages[0].text.encode()) > MAX_VARCHAR_BYTES
    build(location, {"ru.txt": document, "en.txt": process(EN.encode(), "text")})
    store = location.open(MODEL, DIM)
    assert store.document("ru.txt").clean_text == document.clean_text
    passage = store.passages([passage_id("ru.txt", 0)])[passage_id("ru.txt", 0)]
    assert passage.text == document.passages[0].text and passage.folded == document.passages[0].folded
    assert passage_id("ru.txt", 0) in store.keyword(keyword_tokens("проверка"), 5, Scope()).ids
