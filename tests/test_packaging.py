"""pyproject.toml: `pip install .` gives a working package and the console scripts docqa-index, docqa-serve, docqa-ask.

What is checked, and the one trade-off that keeps it fast:

* A wheel is built from a copy of the source (the top-level files and the packages text, extract, indexer and
  service, as a clean checkout has them) with the project venv's setuptools (`pip wheel --no-deps
  --no-build-isolation`), so no build writes build/ or *.egg-info into the work tree. The wheel must hold every
  module and the web page's templates and static files (the vendored opencc-js too).
* The wheel is installed with `--no-deps` into a FRESH venv (`python -m venv --without-pip`, filled by the project's
  pip through `--python`). A venv made from a venv inherits nothing, so the third-party dependencies are borrowed
  from the project venv: a .pth file in the fresh venv adds the project venv's site-packages AFTER its own (like
  --system-site-packages would). Installing torch, transformers, faiss… into every test venv would take minutes and
  gigabytes; what is proved is that the package installs and its console scripts run from the installed copy (the
  modules must be imported from the fresh venv, and every script runs from a directory outside the repo), with the
  pinned dependencies of requirements.txt. What borrowing cannot show, a dependency missing from pyproject.toml, the
  static checks below do.
* The console scripts: `--help` of each exits 0; exit statuses pass through (the entry points call
  sys.exit(main()): indexer's and service.cli's main return an int, service's returns None); `docqa-index build`
  builds a real index of a two-document corpus with the converted model (QA_MODEL, as `make model` makes it) and
  `docqa-ask ask … --json` answers from it with the right document; `docqa-serve` serves the page, its static files
  and the API.
* The dependencies, statically: every third-party module the packages import is a declared dependency; every
  dependency is pinned in requirements.txt within its range; every pin there is a dependency or test-only.
* The dependency ranges: `pip install --dry-run .` in the project venv must want to install docqa and nothing else
  (the pins of requirements.txt satisfy every range, no network needed), and a resolution from scratch
  (`--ignore-installed`, against the configured indexes) must succeed and keep torch at 2.13 (the machine's CPU
  wheel where one is on the indexes or find-links), not a newer CUDA build.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conftest import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "multilingual-e5-small"
PACKAGES = ("text", "extract", "indexer", "stores", "service")
# in requirements.txt for the tests and benchmarks only: not dependencies of the package
TEST_ONLY = {"pytest", "hypothesis", "schemathesis", "selenium", "psutil", "matplotlib", "python-docx", "pypdf",
             "milvus-lite"}  # milvus-lite: the server the tests, evals and benchmarks start (stores/milvus_server.py)
TIMEOUT = 300
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")

DOCS = {
    "lighthouse.txt": "The Harbour Lighthouse\n\nThe old harbour lighthouse was painted green in 1987 by the engineer "
                      "Maret Kask, who also replaced its lamp with a rotating lens.\n",
    "茶.txt": "龙井茶\n\n龙井茶产于杭州西湖一带,是中国著名的绿茶。春天采摘的嫩芽经过炒制,形状扁平光滑。\n",
}
QUESTION = "Who painted the lighthouse green?"


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `pip install .` reads: the repo's top-level files and its packages, copied outside the work tree."""
    src = tmp_path_factory.mktemp("packaging") / "src"
    src.mkdir()
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, src / path.name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=_SKIP)
    return src


@pytest.fixture(scope="module")
def wheel(source: Path) -> Path:
    dist = source.parent / "dist"
    result = _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(dist), str(source),
                  cwd=source.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = dist.glob("docqa-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Path:
    """A fresh venv with the wheel installed (no dependencies) and the project venv's packages visible after its own."""
    home = wheel.parent.parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True, timeout=TIMEOUT)
    python = home / "bin" / "python"
    result = _pip("--python", str(python), "install", "--no-deps", "--no-index", str(wheel), cwd=home)
    assert result.returncode == 0, result.stdout + result.stderr
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_project_venv.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in sorted(borrowed)))
    return home


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", "QA_INDEX")}
    env.update(QA_MODEL=str(MODEL), NO_COLOR="1", **extra)
    return env


def run(venv: Path, script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([venv / "bin" / script, *args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)


def test_the_wheel_holds_the_packages_the_page_and_the_scripts(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for package in PACKAGES:
        sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")}
        assert sources and sources <= names, sorted(sources - names)
    for folder in ("service/templates", "service/static"):
        files = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file()
                 and "__pycache__" not in p.parts}
        assert files and files <= names, sorted(files - names)
    assert "service/static/vendor/opencc-js/full.js" in names and "service/templates/index.html" in names
    assert not {n for n in names if n.split("/")[0] not in PACKAGES and ".dist-info/" not in n}  # nothing else
    for line in ("docqa-index = indexer.__main__:main", "docqa-serve = service.__main__:main",
                 "docqa-ask = service.cli:main"):
        assert line in entry_points
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    named = {r.split("<")[0].split(">")[0].split("=")[0].split(";")[0].strip().lower() for r in requires}
    assert "torch" in named and "sentence-transformers" in named and "flask" in named
    assert not named & TEST_ONLY


def _name(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _dependencies() -> dict[str, Requirement]:
    """The dependencies and every extra's (Ray is an extra: only `--ray` imports it)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [r for group in project.get("optional-dependencies", {}).values() for r in group]
    return {_name(r.name): r for r in map(Requirement, [*project["dependencies"], *extras])}


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            pins[_name(name.partition("[")[0])] = version.strip()  # ray[data]: the distribution is ray
    return pins


def test_every_imported_library_is_a_declared_dependency() -> None:
    """A module that imports a new library needs it in pyproject.toml too, not only in requirements.txt."""
    imported: dict[str, str] = {}
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_bytes(), str(file))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in (*PACKAGES, "__future__"):
                        imported.setdefault(top, file.relative_to(ROOT).as_posix())
    distributions = packages_distributions()
    declared = set(_dependencies())
    for module, file in sorted(imported.items()):
        names = {_name(d) for d in distributions.get(module, [])}
        assert names, f"{file} imports {module}, which no installed distribution provides"
        assert names & declared, f"{file} imports {module} ({', '.join(sorted(names))}): add it to pyproject.toml"


def test_requirements_pins_and_dependency_ranges_agree() -> None:
    dependencies, pins = _dependencies(), _pins()
    for name, requirement in dependencies.items():
        assert name in pins, f"pyproject.toml depends on {name}: pin it in requirements.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}"
    unclassified = set(pins) - set(dependencies) - TEST_ONLY
    assert not unclassified, f"requirements.txt pins {sorted(unclassified)}: a dependency (pyproject.toml) or " \
                             "test-only (TEST_ONLY here)?"


def test_the_installed_package_is_the_one_that_runs(venv: Path, tmp_path: Path) -> None:
    probe = "import json, text, extract, indexer, service, service.cli; print(json.dumps([m.__file__ for m in " \
            "(text, extract, indexer, service, service.cli)]))"
    result = subprocess.run([venv / "bin" / "python", "-c", probe], cwd=tmp_path, env=_env(), capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    for file in json.loads(result.stdout):
        assert Path(file).is_relative_to(venv), file


@pytest.mark.parametrize("script, mentions", [
    ("docqa-index", "--corpus"), ("docqa-serve", "--port"), ("docqa-ask", "ask"),
])
def test_help_of_each_script(venv: Path, tmp_path: Path, script: str, mentions: str) -> None:
    result = run(venv, script, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert mentions in result.stdout


def test_exit_statuses_pass_through(venv: Path, tmp_path: Path) -> None:
    result = run(venv, "docqa-index", "build", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "--corpus" in result.stdout and "--index" in result.stdout
    result = run(venv, "docqa-index", "build", "--corpus", str(tmp_path / "missing"), "--index", str(tmp_path / "i"),
                 cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr  # main's return value
    result = run(venv, "docqa-ask", "ask", "   ", cwd=tmp_path)
    assert result.returncode == 2 and "question is empty" in result.stderr
    result = run(venv, "docqa-ask", "ask", QUESTION, "--index", str(tmp_path / "no-index"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    result = run(venv, "docqa-serve", "--port", "not-a-number", cwd=tmp_path)
    assert result.returncode == 2 and "--port" in result.stderr


@pytest.fixture(scope="module")
def built_index(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (MODEL / "config.json").is_file():
        pytest.fail(f"no converted model at {MODEL}: run `make model`")
    work = tmp_path_factory.mktemp("packaging-run")
    corpus = work / "corpus"
    corpus.mkdir()
    for name, content in DOCS.items():
        (corpus / name).write_text(content, encoding="utf-8")
    result = run(venv, "docqa-index", "build", "--corpus", "corpus", "--index", "index", "--quiet", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": 2 documents," in result.stdout and "0 skipped" in result.stdout, result.stdout
    return work / "index"


def test_docqa_index_builds_and_docqa_ask_answers(venv: Path, built_index: Path, tmp_path: Path) -> None:
    result = run(venv, "docqa-index", "build", "--corpus", str(built_index.parent / "corpus"), "--index",
                 str(built_index), cwd=tmp_path)
    assert result.returncode == 0 and "up to date" in result.stdout, result.stdout + result.stderr
    result = run(venv, "docqa-ask", "ask", QUESTION, "--index", str(built_index), "--top-k", "2", "--json",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["query_language"] == "en"
    top = body["passages"][0]
    assert top["doc_id"] == "lighthouse.txt"
    original = (built_index.parent / "corpus" / "lighthouse.txt").read_text(encoding="utf-8")
    assert "Maret Kask" in original[top["start"]:top["end"]]


def test_docqa_serve_serves_the_page_and_the_api(venv: Path, built_index: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([venv / "bin" / "docqa-serve", "--index", str(built_index), "--port", str(port)],
                                  cwd=tmp_path, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"docqa-serve exited with {server.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"docqa-serve not ready within 120 s:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=10) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        for path, expect in (("/", "<html"), ("/static/ask.js", ""), ("/static/vendor/opencc-js/full.js", "")):
            with urllib.request.urlopen(base + path, timeout=30) as response:
                assert response.status == 200, path
                assert expect in response.read().decode("utf-8").lower()
        request = urllib.request.Request(f"{base}/api/ask", data=json.dumps({"question": QUESTION}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.load(response)["passages"][0]["doc_id"] == "lighthouse.txt"
    finally:
        stop(server)


def test_the_pinned_requirements_satisfy_the_dependency_ranges(source: Path) -> None:
    """In the project venv (requirements.txt installed), installing the package needs nothing else."""
    report = source.parent / "installed-report.json"
    result = _pip("install", "--dry-run", "--no-build-isolation", "--report", str(report), str(source),
                  cwd=source.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    wanted = {item["metadata"]["name"] for item in json.loads(report.read_text())["install"]}
    assert wanted == {"docqa"}, wanted


def test_a_fresh_resolution_keeps_torch_at_the_pinned_minor(source: Path) -> None:
    """What `pip install .` resolves in an empty venv (metadata only, nothing installed): it succeeds, and torch
    stays at 2.13, whose CPU wheel the machine has; on such a machine, no CUDA packages at all."""
    report = source.parent / "fresh-report.json"
    result = _pip("install", "--dry-run", "--ignore-installed", "--no-build-isolation", "--quiet", "--report",
                  str(report), str(source), cwd=source.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    versions = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert versions["torch"].startswith("2.13."), versions["torch"]
    assert "flask" in versions and "sentence-transformers" in versions
    assert not {name for name in versions if name in ("pytest", "selenium", "matplotlib")}
    if versions["torch"].endswith("+cpu"):
        assert not {name for name in versions if name.startswith(("nvidia-", "cuda-", "triton"))}, versions
