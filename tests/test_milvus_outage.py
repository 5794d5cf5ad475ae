"""The Milvus store when its server goes away: every read is StoreUnavailable within the timeout (stopped or
hung), the same store answers again once the server is back, and a second server cannot take a held folder."""
from __future__ import annotations

import signal
import time

import pytest

from milvus_fixtures import DIM, MODEL, built, server  # noqa: F401 (fixtures)
from stores.contract import Scope, StoreUnavailable
from stores.milvus import MilvusLocation
from stores.milvus_schema import passage_id
from stores.milvus_server import MilvusServer, MilvusServerError


def test_an_outage_is_store_unavailable_and_the_store_recovers(built, server):
    location, _, vectors = built
    location = MilvusLocation(location.uri, location.collection, timeout=2.0)
    store = location.open(MODEL, DIM)
    query = vectors["notes/en.txt"][0]
    reads = {
        "ping": store.ping, "dense": lambda: store.dense(query, 5, Scope()),
        "keyword": lambda: store.keyword(["openai"], 5, Scope()),
        "passages": lambda: store.passages([passage_id("notes/en.txt", 0)]),
        "document": lambda: store.document("notes/en.txt"), "published": location.published,
        "open": lambda: location.open(MODEL, DIM),
    }
    server.stop()
    try:
        for name, read in reads.items():
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="Milvus http://127.0.0.1"):
                read()
            assert time.monotonic() - started < 4, name
    finally:
        server.start()
    assert store.dense(query, 5, Scope()) and store.keyword(["openai"], 5, Scope())
    store.ping()
    assert store.document("notes/en.txt") is not None and location.published() == "b1"


def test_a_hung_server_is_store_unavailable_within_the_timeout(built, server):
    location, _, _ = built
    store = MilvusLocation(location.uri, location.collection, timeout=1.5).open(MODEL, DIM)
    server.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.keyword(["openai"], 5, Scope())
        assert time.monotonic() - started < 3
    finally:
        server.signal(signal.SIGCONT)
    assert store.keyword(["openai"], 5, Scope())


def test_a_server_that_cannot_start_says_why(server, tmp_path):
    with pytest.raises(MilvusServerError, match="lock"):
        MilvusServer(server.data_dir, ready_within=20).start()  # the running server holds the folder
