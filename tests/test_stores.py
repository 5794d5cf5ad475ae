"""One suite, both stores: the same corpora built into the embedded store and into a real Milvus (a milvus-lite
server over HTTP, the code path a cluster uses) must answer, scope, cite, list and update alike."""
from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

from conftest import seed_recall_at_5
from indexer.build import build_index
from indexer.freshness import is_up_to_date
from service.retrieval import Retriever
from text.bilingual import lexicon
from stores.contract import FORMAT_VERSION, Scope, StoreLocation
from stores.embedded import EmbeddedLocation
from stores.milvus import MilvusLocation
from stores.milvus_schema import MANIFEST_PROPERTY

ROOT = Path(__file__).resolve().parent.parent
STORES = ("embedded", "milvus")
LIBRARY = {
    "news/lighthouse.txt": "The old lighthouse on the northern cape was rebuilt in 1921 after a storm destroyed its lamp.",
    "news/harbour.txt": "The harbour master keeps a log of every ship that enters the port during the winter months.",
    "notes/蛟龙.txt": "蛟龙号是中国自行设计、自主集成研制的载人潜水器，最大下潜深度为七千米级。",
    "notes/deep/海洋.txt": "海洋覆盖地球表面约百分之七十一，平均深度约三千七百米。",
    "notes/繁體.txt": "臺灣的玉山是東亞最高的山峰，海拔三千九百五十二公尺。",
}


def location_for(kind: str, root: Path, milvus_uri: str, collection: str) -> StoreLocation:
    return EmbeddedLocation(root) if kind == "embedded" else MilvusLocation(milvus_uri, collection)


@pytest.fixture(scope="module")
def seed_stores(seed_index: Path, milvus_server, embedder) -> dict[str, Retriever]:
    """The project's corpus in both stores; Milvus built with the embedded index's caches (nothing re-encoded)."""
    milvus = MilvusLocation(milvus_server.uri, "seed_suite")
    build_index(ROOT / "corpus", seed_index, embedder, progress=False, location=milvus)
    locations = {"embedded": EmbeddedLocation(seed_index), "milvus": milvus}
    return {kind: Retriever(location.open(embedder.model_id, embedder.dim), embedder)
            for kind, location in locations.items()}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = tmp_path_factory.mktemp("library")
    for doc_id, text in LIBRARY.items():
        (corpus / doc_id).parent.mkdir(parents=True, exist_ok=True)
        (corpus / doc_id).write_text(text, encoding="utf-8")
    return corpus


@pytest.fixture(scope="module")
def library_stores(library: Path, tmp_path_factory, milvus_server, embedder) -> dict[str, Retriever]:
    retrievers = {}
    for kind in STORES:
        root = tmp_path_factory.mktemp(f"library-{kind}")
        location = location_for(kind, root, milvus_server.uri, "library_suite")
        build_index(library, root, embedder, progress=False, location=location)
        retrievers[kind] = Retriever(location.open(embedder.model_id, embedder.dim), embedder)
    return retrievers


def recall_at_5(retriever: Retriever) -> float:
    return seed_recall_at_5(lambda question: {h.doc_id for h in retriever.ask(question, 5).hits})


def test_milvus_answers_the_seed_questions_as_well_as_the_embedded_store(seed_stores):
    embedded, milvus = recall_at_5(seed_stores["embedded"]), recall_at_5(seed_stores["milvus"])
    assert embedded > 0.8
    assert milvus >= embedded - 0.03, (embedded, milvus)


def test_both_stores_cite_the_same_passage_for_a_clear_question(seed_stores):
    """The same document, passage and highlighted sentence. Not always the same span: the embedded store leaves
    the commonest words out of keyword searches (stores/contract.py), which may change what overlapping passage
    merges into the hit."""
    milvus, embedded = (seed_stores[kind].ask("蛟龙号载人潜水器最大下潜深度是多少？", 3).hits[0]
                        for kind in ("milvus", "embedded"))
    assert milvus.doc_id == embedded.doc_id
    assert milvus.start < embedded.end and embedded.start < milvus.end
    assert highlighted(milvus) == highlighted(embedded) != ""


def highlighted(hit) -> str:
    return hit.text[hit.highlight[0] : hit.highlight[1]] if hit.highlight else ""


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize("scope, allowed", [
    (Scope(folder="news"), {"news/lighthouse.txt", "news/harbour.txt"}),
    (Scope(folder="notes/deep"), {"notes/deep/海洋.txt"}),
    (Scope(language="zh-Hant"), {"notes/繁體.txt"}),
    (Scope(folder="notes", language="zh-Hans"), {"notes/蛟龙.txt", "notes/deep/海洋.txt"}),
    (Scope(folder="nowhere"), set()),
])
def test_scopes_filter_inside_the_search(library_stores, kind, scope, allowed):
    hits = library_stores[kind].ask("lighthouse 海洋 深度 山峰", 10, scope=scope).hits
    assert {h.doc_id for h in hits} == allowed


@pytest.mark.parametrize("kind", STORES)
def test_a_store_knows_which_words_its_passages_contain(library_stores, kind):
    words = ["lighthouse", "潜水器", "玉山", "superbowl", "冰川"]  # keyword tokens, as text.segment makes them
    assert library_stores[kind].store.known(words).tolist() == [True, True, True, False, False]
    assert library_stores[kind].store.known([]).tolist() == []


@pytest.mark.parametrize("kind", STORES)
def test_a_store_searches_the_passages_pivot_words(library_stores, kind):
    """English stems of every passage: a Chinese one's words glossed, an English one's words stemmed."""
    store = library_stores[kind].store

    def pivot_hits(words: list[str], scope: Scope = Scope()) -> list[str]:
        found = store.keyword(lexicon().pivot_words(words), 10, scope, side="pivot")
        best_first = found.ids[np.argsort(-found.scores, kind="stable")].tolist()  # candidates come in no order
        return [store.passages(best_first)[pid].doc_id for pid in best_first]

    assert pivot_hits(["oceans", "depth"])[0] == "notes/deep/海洋.txt"
    assert pivot_hits(["lighthouses"]) == ["news/lighthouse.txt"]
    assert pivot_hits(["oceans"], Scope(folder="news")) == []
    assert len(store.keyword(["ocean"], 10, Scope())) == 0  # the own side has no such English word


def assert_the_mean_vector_is_the_passages(store) -> None:
    """The manifest's mean vector is the mean of every passage's vector, which `vectors` reads back by id."""
    everything = store.dense(np.ones(store.manifest["model"]["dim"], np.float32), store.passage_count, Scope())
    ids = everything.ids.tolist()
    assert len(ids) == store.passage_count
    assert np.allclose(store.manifest["mean_vector"], store.vectors(ids).mean(axis=0), atol=1e-5)


@pytest.mark.parametrize("kind", STORES)
def test_a_store_reads_passage_vectors_and_records_their_mean(library_stores, embedder, kind):
    store = library_stores[kind].store
    question = embedder.queries(["lighthouse storm"])[0]
    found = store.dense(question, 5, Scope())
    assert np.allclose(store.vectors(found.ids.tolist()) @ question, found.scores, atol=1e-4)
    assert_the_mean_vector_is_the_passages(store)


def test_documents_read_alike(library_stores):
    embedded, milvus = library_stores["embedded"].store, library_stores["milvus"].store
    for folder in (None, "news", "notes", "notes/deep", "nowhere"):
        assert milvus.document_count(folder) == embedded.document_count(folder)
        assert milvus.documents(folder) == embedded.documents(folder)
    assert milvus.documents(offset=1, limit=2) == embedded.documents(offset=1, limit=2)
    for doc_id in LIBRARY:
        assert milvus.document(doc_id) == embedded.document(doc_id)
    assert milvus.document("absent.txt") is None and embedded.document("absent.txt") is None
    assert milvus.passage_count == embedded.passage_count


@pytest.mark.parametrize("kind", STORES)
def test_an_incremental_build_changes_adds_and_deletes(library, tmp_path, milvus_server, embedder, kind):
    corpus = tmp_path / "corpus"
    shutil.copytree(library, corpus)
    location = location_for(kind, tmp_path / "index", milvus_server.uri, f"incremental_{kind}")
    build_index(corpus, tmp_path / "index", embedder, progress=False, location=location)
    (corpus / "news/harbour.txt").write_text("The harbour froze in the winter of 1947 and no ship entered.", "utf-8")
    (corpus / "notes/繁體.txt").unlink()
    (corpus / "notes/new.txt").write_text("A new note about glaciers and the ice they carry to the sea.", "utf-8")
    manifest = build_index(corpus, tmp_path / "index", embedder, progress=False, location=location).manifest
    assert (manifest["work"]["documents_written"], manifest["work"]["documents_deleted"]) == (2, 1)  # both in place
    retriever = Retriever(location.open(embedder.model_id, embedder.dim), embedder)
    assert [d["doc_id"] for d in retriever.store.documents()] == sorted(
        {*LIBRARY, "notes/new.txt"} - {"notes/繁體.txt"})
    assert retriever.ask("When did the harbour freeze?", 1).hits[0].text.startswith("The harbour froze")
    assert all(h.doc_id != "notes/繁體.txt" for h in retriever.ask("玉山 海拔", 10).hits)
    assert retriever.store.known(["玉山", "glaciers"]).tolist() == [False, True]  # deleted, added
    glaciers = retriever.store.keyword(lexicon().pivot_words(["glacier"]), 5, Scope(), side="pivot")
    assert [retriever.store.passages(glaciers.ids.tolist())[pid].doc_id for pid in glaciers.ids.tolist()] == [
        "notes/new.txt"]
    assert manifest["counts"] == {"documents": 5, "passages": retriever.passage_count, "skipped": 0}
    assert_the_mean_vector_is_the_passages(retriever.store)  # the unchanged documents' vectors too


def test_an_index_of_an_older_format_is_not_up_to_date(library, milvus_server, embedder, tmp_path):
    """Milvus reads an older manifest without complaint (opening it refuses it): `make index` must rebuild."""
    location = MilvusLocation(milvus_server.uri, "older_format")
    build_index(library, tmp_path, embedder, progress=False, location=location)
    assert is_up_to_date(library, location, embedder.model_id)
    older = {**location.manifest(), "format_version": FORMAT_VERSION - 1}
    MilvusClient(milvus_server.uri).alter_collection_properties(
        location.names.passages, properties={MANIFEST_PROPERTY: json.dumps(older, ensure_ascii=False)})
    assert not is_up_to_date(library, location, embedder.model_id)


def test_the_retriever_knows_only_the_contract():
    """Fusion, merging and citations are one copy: service/retrieval.py imports no store and tests no type."""
    tree = ast.parse((ROOT / "service" / "retrieval.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in imported if m.startswith("stores")} == {"stores.contract"}
    assert not {"faiss", "bm25s", "sqlite3", "pymilvus"} & imported
    assert not any(isinstance(node, ast.Name) and node.id == "isinstance" for node in ast.walk(tree))
