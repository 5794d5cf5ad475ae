"""RESULTS.md sections of the build benchmarks that also run alone (`python -m benchmarks --only`): incremental
rebuilds (benchmarks/incremental.py), PDF extraction (benchmarks/extraction.py), and the Milvus store and the
Ray build against the embedded store and an in-process build (benchmarks/stores.py), and overload
(benchmarks/soak.py), and the whole service at a million passages (benchmarks/million.py)."""
from __future__ import annotations

from indexer.cpu_features import LOWER_PRECISION_FLAGS

# The issues' targets: a rebuild's share of the cold build, the read stage's share of a PDF's build, Milvus' p50
# against the embedded store's, and the answered p99 under overload against one client's.
REBUILD_SHARE_MAX, EXTRACT_SHARE_MAX, MILVUS_P50_MAX, OVERLOAD_P99_MAX = 0.05, 0.10, 2.0, 3.0
STAGES = ("read", "plan", "embed", "encode", "store", "vectors", "seal", "publish")  # vectors: builds before seal
REBUILD_STAGES = ("read", "plan", "embed", "store", "seal")


def sections_markdown(document: dict) -> str:
    """The sections `python -m benchmarks --only` runs, alone (benchmarks/.cache/only/RESULTS.md)."""
    m = document["machine"]
    return "\n".join(["# Benchmarks: separate sections", "",
                      f"{m['date']}, {m['cpu']}, {m['cores']} cores; took {document['timings']['total'] / 60:.1f} min.",
                      "", *sections_lines(document)])


def sections_lines(document: dict) -> list[str]:
    renderers = {"incremental": incremental_section, "extraction": extraction_section, "stores": stores_section,
                 "overload": overload_section, "ceiling": ceiling_section, "million": million_section}
    return [line for name, render in renderers.items() if name in document for line in render(document[name])]


def million_section(section: dict) -> list[str]:
    """The whole service over ~1M passages (benchmarks/million.py): the build, its size, and asking it over HTTP."""
    m, build, served, disk, aims = (section["manifest"], section["build"], section["served"], section["on_disk_mb"],
                                    section["aims"])
    stages, phases, noise = m["work"]["stage_seconds"], served["phases_ms"], section["noise"]
    p50, rss = served["latency"]["p50_ms"], served["worker_rss_mb"]
    lines = [f"## The whole service at {m['counts']['passages']:,} passages", "", *_provenance(section),
             f"{m['counts']['documents']:,} documents ({section['corpus_mb']:.0f} MB) recombined from the datasets' "
             "sentences (benchmarks/million_corpus.py), built cold by the indexer into the embedded store "
             f"({m['vector_index']}); {noise['real']:,} passages embedded by the real encoder, every other one a "
             f"copy of one of them with noise σ = {noise['sigma']:.4f} (cosine to its source ≈ "
             f"{noise['target_cosine']:.3f}, the real vectors' median nearest-neighbour cosine; benchmarks/million.py). "
             f"Then one gunicorn worker serves it and is asked {served['requests_one_at_a_time']} real questions one "
             "at a time, then by 8 clients. Aims: ask p50 ≤ "
             f"{aims['p50_ms']:g} ms (measured **{p50:.1f} ms**, {'met' if p50 <= aims['p50_ms'] else 'not met'}), "
             f"worker RSS ≤ {aims['worker_rss_mb'] / 1024:g} GB (measured **{rss / 1024:.2f} GB**, "
             f"{'met' if rss <= aims['worker_rss_mb'] else 'not met'}).", "",
             "| build s | without encode s | read / plan / embed / encode / store / seal s | peak RSS MB "
             "| passages.sqlite / bm25 / vectors.faiss MB | index MB | caches MB |", "|---|---|---|---|---|---|---|",
             f"| {m['build_seconds']:.0f} | {build['without_encode_seconds']:.0f} | {_stages(stages)} | "
             f"{build['peak_rss_mb']:.0f} | {disk['passages.sqlite']:.0f} / {disk['bm25']:.0f} / "
             f"{disk['vectors.faiss']:.0f} | {disk['index']:.0f} | {disk['caches']:.0f} |", "",
             "| clients | requests | errors | q/s | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    for clients, load in served["load"].items():
        lines.append(f"| {clients} | {load['requests']} | {load['errors']} | {load['per_second']:.1f} | "
                     f"{load['p50_ms']:.1f} | {load['p95_ms']:.1f} | {load['p99_ms']:.1f} |")
    lines += ["", "Where one question's time goes, in the server (means over the one-client run, /metrics): "
              + ", ".join(f"{phase} {phases[phase]:.1f} ms" for phase in ("encode", "search", "fusion", "total")
                          if phase in phases) + f"; worker RSS after the runs {rss:.0f} MB.", ""]
    return lines + _million_rebuild_lines(section.get("rebuilds", []), build["process_seconds"])


def _million_rebuild_lines(rebuilds: list[dict], cold_seconds: float) -> list[str]:
    """One-document rebuilds of the million index, each a child process (benchmarks/million.py)."""
    if not rebuilds:
        return []
    lines = ["One-document rebuilds of that index, each a child process as `python -m indexer build` (the cold "
             f"build's process: {cold_seconds:.0f} s):", "", "| change | process s | share of the cold build | "
             "model load s | read / plan / embed / store / seal s |", "|---|---|---|---|---|"]
    for row in rebuilds:
        stages = " / ".join(f"{row['stage_seconds'].get(stage, 0.0):.1f}" for stage in REBUILD_STAGES)
        lines.append(f"| {row['change']} | {row['process_seconds']:.1f} | {row['share_of_cold_process']:.1%} | "
                     f"{row['model_load_seconds']:.1f} | {stages} |")
    return lines + [""]


def ceiling_section(section: dict) -> list[str]:
    """The CPU's GEMM peak, the model's FLOPs per passage, and each passage encoder's share of the peak."""
    flags = section["flags"]
    low_precision = [f for f in LOWER_PRECISION_FLAGS if flags.get(f)]
    peak = section["peak_gflops"]["fp32"]
    lines = [f"## Hardware ceiling for passage encoding ({section['corpus_name']} corpus sample)", "",
             *_provenance(section),
             f"CPU flags: {', '.join(f for f, on in flags.items() if on) or 'none of interest'}. "
             + ("No bf16 or VNNI/AMX instructions: lower precision has no faster hardware path here, so the fp32 "
                "path's share of the peak is the measure (issue 15). " if not low_precision else
                f"Lower precision can use: {', '.join(low_precision)}. ")
             + f"torch fp32 GEMM on {section['threads']} threads, the shapes one encoder layer multiplies for a "
             f"batch of {section['batch']} average passages: "
             + ", ".join(f"{shape} {rate:.0f}" for shape, rate in section["gemm_gflops"]["fp32"].items())
             + f" GFLOP/s; peak **{peak:.0f} GFLOP/s**" + _bf16_peak(section) + ". The model reads "
             f"{section['mean_tokens']:.0f} tokens per passage on average: {section['flops_per_passage'] / 1e9:.2f} "
             f"GFLOP each ({section['flops_per_passage_padded'] / 1e9:.2f} with the padding of unsorted batches of "
             f"{section['batch']}).", "",
             "| passage encoder | passages/s | useful GFLOP/s | "
             + " | ".join(f"share of {precision} peak" for precision in section["share_of_peak"]) + " |",
             "|---|---|---|" + "---|" * len(section["share_of_peak"])]
    for name, rate in section["passages_per_second"].items():
        lines.append(f"| {name} | {rate:.1f} | {rate * section['flops_per_passage'] / 1e9:.0f} | "
                     + " | ".join(f"{shares[name]:.0%}" for shares in section["share_of_peak"].values()) + " |")
    if "bf16_cosine_to_fp32" in section:
        agreement = section["bf16_cosine_to_fp32"]
        lines += ["", f"bf16 autocast's passage vectors against fp32's on the same sample: cosine mean "
                      f"{agreement['mean']:.5f}, lowest {agreement['lowest']:.5f}."]
    return [*lines, ""]


def _bf16_peak(section: dict) -> str:
    """The bf16 GEMM rates and peak, where the CPU has bf16 instructions (benchmarks/ceiling.py measured them)."""
    if "bf16" not in section["gemm_gflops"]:
        return ""
    rates, peak = section["gemm_gflops"]["bf16"], section["peak_gflops"]["bf16"]
    return (f"; torch bf16 GEMM, the same shapes: " + ", ".join(f"{shape} {rate:.0f}" for shape, rate in rates.items())
            + f" GFLOP/s, peak **{peak:.0f} GFLOP/s** ({peak / section['peak_gflops']['fp32']:.2f}× fp32)")


def overload_section(section: dict) -> list[str]:
    """One client, then 64 against one worker with the encoder queue bounded as configured, at 8, and off."""
    reference, *loaded = section["runs"]
    configured = next(run for run in loaded if run["bound"] == section["configured_bound"])
    ratio = configured["answered_p99_ms"] / reference["answered_p99_ms"]
    lines = [f"## Overload: {configured['clients']} clients against one worker (seed index)", "",
             *_provenance(section),
             "Each client asks in a loop over one keep-alive connection; a refused one (503 `overloaded`) waits "
             "Retry-After × uniform(0.5, 1.5) and asks again. The bound is `QA_MAX_WAITING`, the questions that may "
             "wait for the encoder; the deepest queue is sampled from `/metrics` every 50 ms. Aim: answered p99 ≤ "
             f"{OVERLOAD_P99_MAX:g}× one client's, no error but the deliberate 503; measured **{ratio:.1f}×** at the "
             f"configured bound {section['configured_bound']} "
             f"({'met' if ratio <= OVERLOAD_P99_MAX and configured['errors'] == 0 else 'not met'}).", "",
             "| clients | bound | seconds | answered | refused (503) | answered/s | p50 ms | p95 ms | p99 ms | max ms "
             "| deepest queue | errors | worker RSS MB start → end |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in section["runs"]:
        lines.append(f"| {run['clients']} | {run['bound'] or 'none'} | {run['seconds']:.0f} | "
                     f"{run['answered'] / run['requests']:.1%} | {run['refused'] / run['requests']:.1%} | "
                     f"{run['answered_per_second']:.1f} | {run['answered_p50_ms']:.0f} | {run['answered_p95_ms']:.0f} | "
                     f"{run['answered_p99_ms']:.0f} | {run['answered_max_ms']:.0f} | {run['deepest_queue']:.0f} | "
                     f"{run['errors']} | {run['rss_start_mb']:.0f} → {run['rss_end_mb']:.0f} |")
    return [*lines, ""]


def stores_section(section: dict) -> list[str]:
    """Milvus (a milvus-lite server on loopback) against the embedded store; Ray local against in process."""
    embedded, milvus, build = section["embedded"], section["milvus"], section["milvus_build"]
    ratio = milvus["latency"]["p50_ms"] / embedded["latency"]["p50_ms"]
    lines = [f"## Stores: Milvus against embedded ({section['corpus_name']} corpus, {section['passages']:,} passages)",
             "", *_provenance(section),
             "The corpus built into the embedded store is built into a collection of a fresh Milvus Lite server on "
             "loopback (`python -m indexer build --milvus-uri`, every vector from the embedding cache, so this is "
             f"the write path: {build['build_seconds']:.1f} s for {build['documents_written']:,} documents; stages "
             f"{_stages(build['stage_seconds'])} s), then one gunicorn worker serves each store in turn and is "
             f"asked the same questions. Aim: Milvus p50 ≤ {MILVUS_P50_MAX:g}× embedded; measured "
             f"**{ratio:.2f}×** ({'met' if ratio <= MILVUS_P50_MAX else 'not met'}).", "",
             "| store | p50 ms | p95 ms | p99 ms | 8 clients q/s | 8 clients p50 ms | worker RSS MB | server RSS MB "
             "| on disk MB |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in (("embedded", embedded), ("milvus", milvus)):
        eight = row["load"].get(8) or row["load"].get("8")
        lines.append(f"| {name} | {row['latency']['p50_ms']:.1f} | {row['latency']['p95_ms']:.1f} | "
                     f"{row['latency']['p99_ms']:.1f} | {eight['per_second']:.1f} | {eight['p50_ms']:.1f} | "
                     f"{row['worker_rss_mb']:.0f} | {row.get('server_rss_mb', 0):.0f} | {row['disk_mb']:.0f} |")
    ray = section["ray"]
    local, alone = ray["ray_local"], ray["in_process"]
    lines += ["", f"Ray: {alone['passages_embedded']:,} passages embedded with --force, in a child process each. "
              f"`--ray local` (2 actors, one model each) against in process: encode stage "
              f"{local['encode_per_second']:.1f} vs {alone['encode_per_second']:.1f} passages/s "
              f"(**{local['encode_per_second'] / alone['encode_per_second']:.2f}×**), whole process "
              f"{local['process_seconds']:.0f} vs {alone['process_seconds']:.0f} s (Ray's start-up and the actors' "
              "model loads included).", ""]
    return lines


def _provenance(section: dict) -> list[str]:
    run = section.get("separate_run")
    if run is None:
        return []
    m = run.get("machine") or {}
    where = f" on {m['cpu']}, {m['cores']} cores," if m else ""
    return [f"*From a separate run, {section['date']}{where} `{run['command']}` ({run['seconds'] / 60:.1f} min, "
            "no other part of the benchmarks running); its ratios divide numbers of that run only.*", ""]


def incremental_section(inc: dict) -> list[str]:
    cold = inc["cold"]
    lines = [f"## Incremental rebuilds ({inc['corpus_name']} corpus: {cold['documents']:,} documents, "
             f"{cold['passages']:,} passages)", "", *_provenance(inc),
             "A cold build (`python -m indexer build --force`, child process), then on copies of the corpus and "
             "index (benchmarks/incremental.py): one document added, one changed (a sentence inserted in its "
             "middle), one deleted, nothing changed. Each rebuild is a fresh process calling `build_index` with "
             "the CLI's `LazyEncoder`, which loads the model only if some passage must be embedded; *process s* "
             "is that child's wall time (interpreter start-up, imports, model load), *build s* the manifest's "
             "`build_seconds` (from the build lock to the switch; includes the lazy model load, which falls in "
             "embed/encode). Shares divide by the cold build's process and build seconds "
             f"({cold['process_seconds']:.1f} s and {cold['build_seconds']:.1f} s). Target: ≤ {REBUILD_SHARE_MAX:.0%}.",
             "", f"Documents: added `{inc['documents']['added from']}` rewritten (sentences reversed), changed "
             f"`{inc['documents']['changed']}`, deleted `{inc['documents']['deleted']}`.", "",
             "| change | process s | share of cold (process) | build s | share of cold (build) | met | model load s | "
             "files processed | passages embedded / cached | " + " / ".join(STAGES) + " s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    work = cold["work"]
    lines.append(f"| cold build (--force) | {cold['process_seconds']:.1f} | 100% | {cold['build_seconds']:.1f} | 100% "
                 f"| – | (in process s) | {work['files_processed']:,} | {work['passages_embedded']:,} / "
                 f"{work['passages_cached']:,} | {_stages(work['stage_seconds'])} |")
    for row in inc["rebuilds"]:
        share = row["share_of_cold_process"]
        build = "–" if row.get("build_seconds") is None else f"{row['build_seconds']:.2f}"
        build_share = "–" if row.get("share_of_cold_build") is None else f"{row['share_of_cold_build']:.1%}"
        lines.append(
            f"| {row['change']} | {row['process_seconds']:.1f} | {share:.1%} | {build} | {build_share} | "
            f"{'yes' if share <= REBUILD_SHARE_MAX else '**no**'} | {row['model_load_seconds']:.1f} | "
            f"{row['files_processed']} | {row['passages_embedded']} / {row['passages_cached']:,} | "
            f"{_stages(row['stage_seconds']) if row['stage_seconds'] else 'up to date: no build'} |")
    for row in inc.get("rerun", {}).get("rows", []):
        lines.append(
            f"| {row['change']} (rerun†) | {row['process_seconds']:.1f} | "
            f"{row['process_seconds'] / cold['process_seconds']:.1%} | {row['build_seconds']:.2f} | "
            f"{row['build_seconds'] / cold['build_seconds']:.1%} | – | {row['model_load_seconds']:.1f} | "
            f"{row['files_processed']} | {row['passages_embedded']} / {row['passages_cached']:,} | "
            f"{_stages(row['stage_seconds'])} |")
    lines += ["", "Stages are the manifest's `stage_seconds`: `encode` is the part of `embed` inside the model (with "
              "the lazy model load); the manifest is written before `publish`, so that stage has no figure. The "
              "child's start-up and imports (process s − `build_index`'s own seconds): " + ", ".join(
                  f"{row['process_seconds'] - row['build_index_seconds']:.1f} s" for row in inc["rebuilds"]
                  if "build_index_seconds" in row) + ".", ""]
    if inc.get("note"):
        lines += [inc["note"], ""]
    lines += ["| cache (INDEX/cache/) | after | entries | on disk MB (db + -wal + -shm) | KB per entry | "
              "MB per 10k passages of the index |", "|---|---|---|---|---|---|"]
    for when, caches in (("cold build", inc["caches_after_cold"]), ("the rebuilds", inc["caches_after"])):
        for name in ("embeddings", "documents"):
            c = caches[name]
            files = " + ".join(f"{b / 2**20:.1f}" for b in c["files"].values())
            per_entry = c["bytes"] / 1024 / c["entries"] if c["entries"] else 0.0
            lines.append(f"| {name}.sqlite | {when} | {c['entries']:,} | {c['bytes'] / 2**20:.1f} ({files}) | "
                         f"{per_entry:.1f} | {c['mb_per_10k_passages']:.1f} |")
    return lines + [""]


def _stages(seconds: dict) -> str:
    return " / ".join(f"{seconds[s]:.2f}" if s in seconds else "–" for s in STAGES)


def extraction_section(ex: dict) -> list[str]:
    b = ex["build"]
    stages = b["work"]["stage_seconds"]
    ok = ex["read_share"] <= EXTRACT_SHARE_MAX
    return [f"## PDF extraction ({ex['pages']}-page Chinese PDF)", "", *_provenance(ex),
            f"`{ex['pdf']}` ({ex['bytes'] / 2**20:.1f} MB, {ex['characters']:,} characters extracted), printed by "
            "headless Chromium from distinct dataset paragraphs (benchmarks/extraction.py). `extract.extract(data, "
            f"\"pdf\")` in this process, median of {len(ex['extract_seconds'])}; then a cold build of a folder holding "
            "only that PDF (`python -m indexer build --force`, child process): the `read` stage is extraction, "
            "cleaning, chunking and tokenizing in a worker process. Target: read ≤ "
            f"{EXTRACT_SHARE_MAX:.0%} of the build.", "",
            "| pages | extract s (median) | pages/s | passages | build s | read s | read share | met | encode share | "
            "outside encode | " + " / ".join(STAGES) + " s |", "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {ex['pages']} | {ex['extract_median_seconds']:.2f} | {ex['pages_per_second']:.0f} | {b['passages']:,} | "
            f"{b['build_seconds']:.1f} | {stages.get('read', 0):.2f} | {ex['read_share']:.1%} | "
            f"{'yes' if ok else '**no**'} | {ex['encode_share']:.1%} | {ex['outside_encode_share']:.1%} | "
            f"{_stages(stages)} |", "", *([ex["note"], ""] if ex.get("note") else [])]
