"""RayEngine on a real local Ray (one session for the module, 2 actors): every key back once, with the vectors
the in-process encoder gives; Ray stays unimported by the build's own modules."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.embedding import DEFAULT_MODEL, Encoder, LazyEncoder
from indexer import ray_embedding
from indexer.ray_embedding import RayEmbeddingError, RayEngine

ROOT = Path(__file__).resolve().parent.parent

CHINESE = [
    "北京是中华人民共和国的首都，也是全国的政治、文化和国际交往中心。",
    "长江是亚洲第一长河，全长约六千三百公里，流经青海、西藏、四川等十一个省级行政区。",
    "機器學習是人工智慧的一個分支，研究如何讓電腦從資料中自動學習規律。",
    "他说：“明天下雨的话，比赛就推迟到下周六。”",
    "茶",
    "量子计算利用量子叠加和纠缠来处理信息，" * 12,
    "2023年第三季度，公司营收同比增长17.5%，净利润达到4.2亿元。",
    "《红楼梦》是清代作家曹雪芹创作的章回体长篇小说，被列为中国古典四大名著之首。",
    "请问从上海虹桥火车站到浦东国际机场，乘坐地铁需要多长时间？",
]
ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Error 503: the service is temporarily unavailable; retry after 30 seconds.",
    "Rivers shape valleys over millions of years through erosion and sediment transport. " * 10,
    "OK",
    "In 1969, Apollo 11 landed on the Moon and Neil Armstrong became the first person to walk on its surface.",
    "def embed(items): return [model.encode(text) for key, text in items]",
    "Mitochondria are membrane-bound organelles that generate most of the chemical energy of the cell.",
]
MIXED = [
    "Python 是一种广泛使用的 programming language，适合 data science 和 web 开发。",
    "GPT-4 的 context window 有多大？How many tokens can it take?",
    "Transformer 模型使用 self-attention 机制。",
    "把 README.md 里的 installation steps 翻译成中文。",
]


def _passages() -> list[tuple[bytes, str]]:
    texts = [f"{text} ({n})" if n else text for n in range(2) for text in CHINESE + ENGLISH + MIXED]
    keys = [hashlib.sha256(text.encode()).digest() for text in texts]
    keys[:3] = [b"\x00", b"ends with NUL\x00\x00", b"\xff\x00\xfe"]  # bytes Arrow or numpy could mangle
    return list(zip(keys, texts))


PASSAGES = _passages()
CLOSE_TO_FP32 = {"onnx-int8": 0.99}  # cosine to fp32's vectors: int8 passages (a VNNI CPU's default) differ more


@pytest.fixture(scope="module")
def engine() -> Iterator[RayEngine]:
    engine = RayEngine("local", location=str(DEFAULT_MODEL), workers=2)
    yield engine
    engine.close()


def test_every_key_once_with_the_in_process_vectors(engine: RayEngine, embedder: Encoder) -> None:
    assert len(PASSAGES) >= 40
    results = list(engine.embed(iter(PASSAGES)))
    keys = [key for batch_keys, _ in results for key in batch_keys]
    assert sorted(keys) == sorted(key for key, _ in PASSAGES)
    assert all(isinstance(key, bytes) for key in keys)
    got = dict(zip(keys, np.concatenate([vectors for _, vectors in results])))
    expected = embedder.passages([text for _, text in PASSAGES], batch_size=32)
    for (key, text), vector in zip(PASSAGES, expected):
        assert got[key].dtype == np.float32 and got[key].shape == vector.shape
        assert float(got[key] @ vector) >= CLOSE_TO_FP32.get(engine.backend, 0.9999), text
    # the cache key an in-process build with the same settings uses (the backend this CPU picks, bf16 or fp32)
    assert engine.model_id == embedder.model_id and engine.identity == LazyEncoder(str(DEFAULT_MODEL)).identity


def test_empty_input_yields_nothing(engine: RayEngine) -> None:
    assert list(engine.embed([])) == []


def test_a_model_that_fails_to_load_is_a_clear_error(engine: RayEngine, tmp_path: Path) -> None:
    broken = RayEngine("local", location=str(tmp_path / "no-model"), workers=1)  # joins the running Ray
    with pytest.raises(RayEmbeddingError, match="does not exist"):
        list(broken.embed(PASSAGES[:2]))
    broken.close()  # not its Ray: the module's session goes on
    assert list(engine.embed([])) == []
    import ray

    assert ray.is_initialized()


def test_passages_go_to_ray_a_window_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = RayEngine.__new__(RayEngine)
    engine.window = 16
    windows: list[list[tuple[bytes, str]]] = []
    monkeypatch.setattr(engine, "_dataset", lambda window: (windows.append(window) or window) if window else None)
    monkeypatch.setattr(engine, "_run", lambda window: iter([([key for key, _ in window], np.zeros((len(window), 2)))]))
    batches = list(engine.embed(iter(PASSAGES)))
    assert [len(window) for window in windows] == [16, 16, len(PASSAGES) - 32]
    assert [key for keys, _ in batches for key in keys] == [key for key, _ in PASSAGES]


def test_the_build_does_not_import_ray() -> None:
    code = "import sys, indexer.build, indexer.embedding; print(sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


class _HangingStarts:
    """Ray's own start-up hang cannot be caused on demand; this stands in for `ray` and fails its first `fails`
    starts the way Ray does (a plain Exception after its 30 s wait)."""

    def __init__(self, fails: int) -> None:
        self.fails, self.starts, self.shutdowns = fails, 0, 0

    def init(self, **_) -> None:
        self.starts += 1
        if self.starts <= self.fails:
            raise Exception("The current node timed out during startup.")

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.mark.parametrize("fails", [0, 1, 2])
def test_a_local_ray_that_does_not_start_is_started_again(fails):
    ray = _HangingStarts(fails)
    ray_embedding._start_local(ray, {})
    assert (ray.starts, ray.shutdowns) == (fails + 1, fails)


def test_a_local_ray_that_never_starts_fails_the_build_after_the_last_try():
    ray = _HangingStarts(ray_embedding.LOCAL_STARTS)
    with pytest.raises(Exception, match="timed out during startup"):
        ray_embedding._start_local(ray, {})
    assert ray.starts == ray_embedding.LOCAL_STARTS
