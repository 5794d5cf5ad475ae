"""Milvus as the passage store: a collection updated in place, a document at a time (stores/contract.py).

    <collection>             one row per passage: stable id, offsets, texts, our keyword tokens (BM25 Function
                             into a sparse field) and the dense vector; the published manifest is its
                             collection property "docqa.manifest"
    <collection>_documents   one row per part of a document: its texts in VARCHAR-sized parts, metadata on part 0

Layout and encodings: stores/milvus_schema.py; reading: stores/milvus_store.py; writing:
stores/milvus_writer.py; bounded calls and recovery: stores/milvus_connection.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from stores.contract import FORMAT_VERSION, IndexUnusable
from stores.milvus_connection import Connection
from stores.milvus_schema import MANIFEST_PROPERTY, Names
from stores.milvus_store import MilvusStore
from stores.milvus_writer import MilvusWriter

WRITE_TIMEOUT = 120.0  # a batch upsert, a flush or a collection's creation takes longer than a search


@dataclass
class MilvusLocation:
    """Builds published into the Milvus collection `collection` at `uri` (e.g. http://127.0.0.1:19530)."""
    uri: str
    collection: str
    token: str = ""
    timeout: float = 5.0
    dense_index: str | None = None  # "FLAT" / "HNSW" for new collections; None: by server (milvus_schema.py)
    write_timeout: float = WRITE_TIMEOUT
    _connection: Connection = field(init=False, repr=False, compare=False)  # shared by the stores it opens

    def __post_init__(self) -> None:
        self._connection = Connection(self.uri, self.token, self.timeout)

    @property
    def names(self) -> Names:
        return Names(self.collection)

    def __str__(self) -> str:
        return f"milvus {self.uri.rstrip('/')}/{self.collection}"

    def published(self) -> str | None:
        manifest = self.manifest()
        return None if manifest is None else manifest.get("build_id")

    def manifest(self) -> dict | None:
        """The published manifest; None when nothing is published (StoreUnavailable if Milvus is unreachable)."""
        properties = self._properties()
        if properties is None or MANIFEST_PROPERTY not in properties:
            return None
        try:
            manifest = json.loads(properties[MANIFEST_PROPERTY])
        except ValueError as error:
            raise IndexUnusable(f"{self} has an unreadable manifest ({error}); rebuild it with `make index`") from None
        if not isinstance(manifest, dict):
            raise IndexUnusable(f"{self} has an unreadable manifest; rebuild it with `make index`")
        return manifest

    def _properties(self) -> dict | None:
        name = self.names.passages
        call = self._connection.call
        if not call("look for the collection", lambda client, seconds: client.has_collection(name, timeout=seconds)):
            return None
        description = call("describe the collection",
                           lambda client, seconds: client.describe_collection(name, timeout=seconds))
        return description.get("properties") or {}

    def open(self, model_id: str, dim: int) -> MilvusStore:
        """The published build, checked to be whole and made with this model; else IndexUnusable."""
        manifest = self._checked_manifest(model_id, dim)
        names, connection = self.names, self._connection
        for name in (names.passages, names.documents):
            self._check_loaded(name, dim)
        rows = connection.call("count passages", lambda client, seconds: client.query(
            names.passages, filter="", output_fields=["count(*)"], timeout=seconds), names.passages)
        index = connection.call("describe the vector index", lambda client, seconds: client.describe_index(
            names.passages, "vector", timeout=seconds))
        return MilvusStore(connection, names, manifest, int(rows[0]["count(*)"]), str(index.get("index_type", "")))

    def _checked_manifest(self, model_id: str, dim: int) -> dict:
        manifest = self.manifest()
        if manifest is None:
            raise IndexUnusable(f"no published build in {self}; build one with `make index` (python -m indexer build)")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexUnusable(f"index format {manifest.get('format_version')} in {self}, this code reads "
                                f"{FORMAT_VERSION}; rebuild it with `make index`")
        built_with = manifest.get("model") or {}
        if (built_with.get("id"), built_with.get("dim")) != (model_id, dim):
            built_id = str(built_with.get("id"))
            same_weights = built_id.partition("+")[0] == model_id.partition("+")[0]
            setting = "QA_BACKEND to the backend it names" if same_weights else f"QA_MODEL={built_id}"
            raise IndexUnusable(
                f"{self} (build {manifest.get('build_id')}) was built with model {built_id} ({built_with.get('dim')}-d) "
                f"but the service runs {model_id} ({dim}-d); rebuild the index with this model or set {setting}"
            )
        return manifest

    def _check_loaded(self, name: str, dim: int) -> None:
        """The collection exists, holds `dim`-d vectors and is loaded for search (a cluster may have released it)."""
        call = self._connection.call
        if not call("look for a collection", lambda client, seconds: client.has_collection(name, timeout=seconds)):
            raise IndexUnusable(f"{self} is incomplete: collection {name} is missing; rebuild it with `make index`")
        description = call("describe a collection",
                           lambda client, seconds: client.describe_collection(name, timeout=seconds))
        held = next((f.get("params", {}).get("dim") for f in description["fields"] if f["name"] == "vector"), None)
        if held != dim:
            raise IndexUnusable(f"{self}: collection {name} holds {held}-d vectors, the manifest says {dim}-d; "
                                "rebuild it with `make index`")
        state = call("check a collection is loaded",
                     lambda client, seconds: client.get_load_state(name, timeout=seconds))
        if "Loaded" not in str(state.get("state")):  # loading builds indexes: it gets the write timeout
            loader = Connection(self.uri, self.token, self.write_timeout)
            try:
                loader.call("load a collection", lambda client, seconds: client.load_collection(name, timeout=seconds))
            finally:
                loader.close()

    def writer(self, build_id: str, model_id: str) -> MilvusWriter:
        connection = Connection(self.uri, self.token, self.write_timeout)
        return MilvusWriter(connection, self.names, build_id, model_id, self.dense_index)
