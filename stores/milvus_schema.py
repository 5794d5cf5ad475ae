"""The Milvus collections' layout: field names, schemas, stable ids, keyword encoding and filter expressions.

Two collections per location: `<name>` holds one row per passage (vectors, BM25, offsets, display text) and
carries the published manifest as a collection property; `<name>_documents` holds one row per part of a
document (its texts cut to Milvus' VARCHAR limit) with the metadata on part 0.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pymilvus import DataType, Function, FunctionType, MilvusClient
from pymilvus.milvus_client import IndexParams

from stores.contract import FORMAT_VERSION, KeywordSide, Scope

MANIFEST_PROPERTY = "docqa.manifest"  # the published build's manifest (JSON), on the passages collection
MODEL_PROPERTY = "docqa.model"  # the model and index format the rows are made with (JSON), set when created
DOCUMENTS_SUFFIX = "_documents"
MAX_VARCHAR_BYTES = 65_535  # Milvus' VARCHAR limit (lite does not enforce it; a cluster does)
MAX_ID_BYTES = 4_096  # doc_ids and folder names (paths)
MAX_FOLDER_DEPTH = 256
# BM25 sees our own keyword tokens (text.segment.keyword_tokens), each spelled as an ASCII word so that the
# 'standard' analyzer keeps it whole: Milvus then ranks by exactly our tokenization (jieba search mode,
# punctuation dropped, script-folded), the same as the embedded store's bm25s. Measured against Milvus' own
# jieba analyzer over the folded text: XQuAD zh R@1 0.913 vs 0.879 (identical to bm25s), en equal.
KEYWORD_ANALYZER = {"tokenizer": "standard"}
KEYWORD_DIGEST_BYTES = 6  # 48 bits: collisions are negligible at any vocabulary size
# Each keyword side (stores/contract.py) is a text field and the sparse BM25 field Milvus makes of it.
KEYWORD_FIELDS: dict[KeywordSide, tuple[str, str]] = {"own": ("keywords", "sparse"), "pivot": ("pivot", "pivot_sparse")}
SPARSE_FIELDS = frozenset(sparse for _, sparse in KEYWORD_FIELDS.values())

# Passage fields the reader returns (StoredPassage), and the few that searches need.
PASSAGE_FIELDS = ("id", "doc_id", "title", "start", "end", "clean_start", "clean_end", "text", "folded",
                  "language", "page", "page_end", "overflow")
SEARCH_FIELDS = ("language",)
DOCUMENT_FIELDS = ("doc_id", "part", "meta", "clean", "extracted")


@dataclass(frozen=True)
class Names:
    """The two collection names of one location."""
    passages: str

    @property
    def documents(self) -> str:
        return self.passages + DOCUMENTS_SUFFIX


def passage_id(doc_id: str, ordinal: int) -> int:
    """Stable across builds, so rewriting a document upserts its passages in place: 63 bits of blake2b."""
    digest = hashlib.blake2b(f"{doc_id}\0{ordinal}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def document_key(doc_id: str, part: int) -> str:
    return f"{doc_id}#{part}"


def folders_of(doc_id: str) -> list[str]:
    """Every folder above a doc_id ("a/b/c.txt" → ["a", "a/b"]): a folder scope is one array_contains."""
    parts = doc_id.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def keyword_word(token: str) -> str:
    return "k" + hashlib.blake2b(token.encode("utf-8"), digest_size=KEYWORD_DIGEST_BYTES).hexdigest()


def keyword_text(tokens: list[str]) -> str:
    """Our tokens as the keyword field's text; a pathological passage keeps the tokens that fit the limit."""
    words = [keyword_word(t) for t in tokens]
    fit = MAX_VARCHAR_BYTES // (len(words[0]) + 1) if words else 0
    return " ".join(words[:fit])


def utf8_chunks(text: str, limit: int = MAX_VARCHAR_BYTES) -> list[str]:
    """`text` cut into pieces of at most `limit` UTF-8 bytes, never inside a character; [] for ""."""
    data, chunks, start = text.encode("utf-8"), [], 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte: back up to a boundary
            end -= 1
        chunks.append(data[start:end].decode("utf-8"))
        start = end
    return chunks


def fits(text: str, limit: int = MAX_VARCHAR_BYTES) -> bool:
    return len(text) * 4 <= limit or len(text.encode("utf-8")) <= limit


def clipped(text: str, limit: int) -> str:
    return text if fits(text, limit) else utf8_chunks(text, limit)[0]


def literal(value: str) -> str:
    """A string literal for a Milvus filter expression (quotes and backslashes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def folder_name(folder: str) -> str:
    return folder.strip("/")


def scope_filter(scope: Scope) -> str:
    """The filter expression selecting a scope's passages ("" for everything)."""
    clauses = []
    if scope.language is not None:
        clauses.append(f"language == {literal(scope.language)}")
    if scope.folder is not None and folder_name(scope.folder):
        clauses.append(folder_filter(scope.folder))
    return " and ".join(clauses)


def folder_filter(folder: str) -> str:
    """doc_id under `folder/`, as a range of doc_ids ('0' follows '/'), exactly as the SQLite store does.

    Equivalent to array_contains(folders, folder), but Milvus Lite evaluates array predicates row by row in
    Python (1.1 s a search over 21k passages) while a range on a VARCHAR is vectorized (~60 ms); on a cluster
    both are index lookups."""
    name = folder_name(folder)
    return f"doc_id >= {literal(name + '/')} and doc_id < {literal(name + '0')}"


def model_property(model_id: str) -> str:
    """What the collections' rows are made with: a build by another model or index format starts over."""
    return json.dumps({"id": model_id, "format_version": FORMAT_VERSION}, ensure_ascii=False)


def passages_schema(dim: int):
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    _add_identity(schema)
    schema.add_field("ordinal", DataType.INT64)
    schema.add_field("language", DataType.VARCHAR, max_length=32)
    schema.add_field("title", DataType.VARCHAR, max_length=MAX_ID_BYTES)
    for name in ("start", "end", "clean_start", "clean_end"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("page", DataType.INT64, nullable=True)
    schema.add_field("page_end", DataType.INT64, nullable=True)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR_BYTES)
    schema.add_field("folded", DataType.VARCHAR, max_length=MAX_VARCHAR_BYTES)
    schema.add_field("overflow", DataType.BOOL)  # text longer than a VARCHAR: read it from the document
    for side, (words, sparse) in KEYWORD_FIELDS.items():
        schema.add_field(words, DataType.VARCHAR, max_length=MAX_VARCHAR_BYTES, enable_analyzer=True,
                         analyzer_params=KEYWORD_ANALYZER)
        schema.add_field(sparse, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25" if side == "own" else f"bm25_{side}", function_type=FunctionType.BM25,
                                     input_field_names=[words], output_field_names=[sparse]))
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    return schema


def documents_schema(dim: int):
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES + 16)
    _add_identity(schema)
    schema.add_field("part", DataType.INT64)
    schema.add_field("meta", DataType.JSON)  # on part 0 (DocumentRecord.meta); {} on the others
    schema.add_field("clean", DataType.VARCHAR, max_length=MAX_VARCHAR_BYTES)
    schema.add_field("extracted", DataType.VARCHAR, max_length=MAX_VARCHAR_BYTES)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)  # Milvus requires one: the passages' mean
    return schema


def _add_identity(schema) -> None:
    schema.add_field("doc_id", DataType.VARCHAR, max_length=MAX_ID_BYTES)
    schema.add_field("folders", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_FOLDER_DEPTH,
                     max_length=MAX_ID_BYTES)


# Scalar INVERTED indexes on what filters name: scopes (language, doc_id ranges), a document's rows (doc_id),
# stored() (ordinal == 0, part == 0). Milvus Lite then filters through them instead of scanning every row
# (a scan per rewritten batch made rewrites 4× slower at 21k passages); a cluster uses them the same way.
PASSAGE_SCALAR_INDEXES = ("doc_id", "language", "ordinal")
DOCUMENT_SCALAR_INDEXES = ("doc_id", "part")


# The dense index, by measurement on e5 vectors (25k rows, k = 100; evals in the report):
# - Milvus Lite: FLAT. Its HNSW loses filtered searches (recall 0.49 for a scope of 0.4 % of the rows, 0.93 for
#   10 %: faiss walks the graph past the excluded rows), and a scope must find its passages. FLAT is exact, at
#   ~150 ms a search (Lite's per-row Python bookkeeping costs as much as the distances).
# - Milvus: HNSW, ef = max(k, 400): recall@100 0.991 unfiltered; a cluster switches a filtered search to brute
#   force when the filter is selective, and HNSW keeps a search at milliseconds as the corpus grows.
DENSE_INDEXES = {
    "FLAT": {"index_type": "FLAT", "params": {}},
    "HNSW": {"index_type": "HNSW", "params": {"M": 16, "efConstruction": 200}},
}
HNSW_MIN_EF = 400


def dense_index_for(server_version: str) -> str:
    """FLAT on Milvus Lite (its version reads "milvus_lite-…"), HNSW on Milvus."""
    return "FLAT" if "lite" in server_version.lower() else "HNSW"


def dense_search_params(index_type: str, k: int) -> dict:
    """HNSW refuses ef below the limit; ef ≥ 400 keeps k = 100 near exact."""
    params = {"ef": max(k, HNSW_MIN_EF)} if index_type.upper().startswith("HNSW") else {}
    return {"metric_type": "COSINE", "params": params}


def passages_indexes(client: MilvusClient, index_type: str) -> IndexParams:
    indexes = client.prepare_index_params()
    indexes.add_index("vector", metric_type="COSINE", **DENSE_INDEXES[index_type])
    for sparse in SPARSE_FIELDS:
        indexes.add_index(sparse, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    for name in PASSAGE_SCALAR_INDEXES:
        indexes.add_index(name, index_type="INVERTED")
    return indexes


def documents_indexes(client: MilvusClient) -> IndexParams:
    indexes = client.prepare_index_params()
    indexes.add_index("vector", index_type="FLAT", metric_type="COSINE")
    for name in DOCUMENT_SCALAR_INDEXES:
        indexes.add_index(name, index_type="INVERTED")
    return indexes
