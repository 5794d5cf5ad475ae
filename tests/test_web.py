"""The web pages: served by the app (Flask test client), and used in a real headless Chromium against gunicorn
(the ask page and a document; the library page adding and deleting documents on a gunicorn over a copy of a small
corpus with a PDF).

The browser test needs Debian's `chromium` and `chromium-driver` (`make browser`, a prerequisite of `make test`);
without them it fails rather than skipping. Screenshots are saved in test-artifacts/ for people to look at.
"""
from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from indexer.build import build_index
from indexer.embedding import Embedder
from stores.contract import StoredDocument
from service import create_app
from tests.conftest import serving

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage", "--window-size=1200,1000",
]
QUESTION = "OpenAI與AWS的協議價值多少？"
EXPECTED_DOC = "002_88511f47bc2856da.txt"
WAIT_SECONDS = 60
BUILD_SECONDS = 150  # an upload or deletion: the build subprocess loads the model, then the service swaps it in
PDF_FIXTURES = ROOT / "tests" / "fixtures" / "pdf"
ADMIN_KEY = "test-admin"
NEW_PHRASE = "The lighthouse keeper Zorblax Quintavelle counted 4217 seagulls on the pier last Tuesday."
NEW_QUESTION = "How many seagulls did Zorblax Quintavelle count?"


# --- served by the app ---------------------------------------------------------------------------------------

def test_page_is_served_with_its_assets(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for needed in ('id="question"', 'id="script-toggle"', QUESTION, "微软自研的AI芯片叫什么？",
                   "How much will OpenAI spend on servers by 2030?", 'src="/static/vendor/opencc-js/full.js"'):
        assert needed in html
    assert "<script>" not in html and " on" + "click=" not in html  # no inline scripts or handlers (CSP)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("web.css", "script.js", "ask.js", "document.js", "vendor/opencc-js/full.js"):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        response.close()
    vendor = ROOT / "service" / "static" / "vendor" / "opencc-js"
    assert (vendor / "LICENSE").is_file() and "1.4.2" in (vendor / "README.md").read_text()


def test_document_page_shows_the_api_document(client: FlaskClient) -> None:
    api = client.get(f"/api/documents/{EXPECTED_DOC}").json
    page = client.get(f"/documents/{EXPECTED_DOC}", query_string={"q": QUESTION})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert api["title"] in html and api["text"].splitlines()[1] in html
    assert 'id="doc-text"' in html and 'lang="zh-Hant"' in html
    assert "/?q=OpenAI" in html  # the way back to the results


def test_document_page_errors_are_pages(client: FlaskClient) -> None:
    missing = client.get("/documents/no-such.txt")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "no-such.txt" in missing.get_data(as_text=True)
    assert client.get("/documents/../etc/passwd").status_code == 400
    assert client.get("/api/documents/no-such.txt").mimetype == "application/json"  # the API stays JSON
    unavailable = create_app({"LOAD_INDEX": False}).test_client().get(f"/documents/{EXPECTED_DOC}")
    assert unavailable.status_code == 503 and unavailable.mimetype == "text/html"


def test_library_page_without_admin_key(client: FlaskClient) -> None:
    page = client.get("/library")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'src="/static/library.js"' in html and "<script>" not in html
    assert '<p class="notice" id="writes-off">' in html  # shown: the app has no QA_ADMIN_KEY
    assert '<fieldset id="write-controls" disabled>' in html and 'type="file"' in html
    assert client.get("/static/library.js").status_code == 200
    assert 'href="/library"' in client.get("/").get_data(as_text=True)  # linked from the header


def test_ask_page_keeps_its_filters(client: FlaskClient) -> None:
    filters = {"q": "x", "folder": "reports/2024", "language": "zh-Hant"}
    html = client.get("/", query_string=filters).get_data(as_text=True)
    assert 'id="folder" name="folder" type="text" value="reports/2024"' in html
    assert '<option value="zh-Hant" selected>' in html
    html = client.get("/", query_string={"language": "<b>"}).get_data(as_text=True)
    assert "<b>" not in html and '<option value="" selected>' in html


class _HostileRetriever:
    """A retriever whose one document tries to inject markup through every field the page shows."""

    build_id, passage_count = "hostile", 1

    def document(self, doc_id: str) -> StoredDocument:
        return StoredDocument(
            doc_id=doc_id, title='<script>alert("title")</script>', language="en", sha256="0" * 64,
            url="javascript:alert(1)", date='<b onmouseover="x">2025</b>',
            clean_text='</div><img src=x onerror="alert(1)"> & more', original_length=42,
            format="pdf", page_starts=[0, 6], passage_count=1, extracted_text="<b>extracted</b>",
        )


def test_document_text_is_escaped() -> None:
    app: Flask = create_app({"LOAD_INDEX": False})
    app.extensions["qa_state"].swap(_HostileRetriever())
    html = app.test_client().get("/documents/x.txt").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in html and "<script>alert" not in html
    # the text is cut at its page starts (a PDF): both pieces escaped, a page mark between them
    assert "&lt;/div&gt;" in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; more" in html
    assert html.count('class="page-mark"') == 2 and 'data-page="2"' in html
    assert "<img" not in html and "<b " not in html
    assert 'href="javascript:' not in html  # only http(s) sources become links


# --- in a real browser ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: `make browser` installs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_SECONDS)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def api_top_passage(server: str, question: str) -> dict:
    request = urllib.request.Request(
        f"{server}/api/ask", data=json.dumps({"question": question}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["passages"][0]


def test_ask_convert_and_open_the_cited_document(server: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    browser.get(f"{server}/")
    browser.save_screenshot(str(ARTIFACTS / "web-1-empty.png"))

    # ask with Enter: cards appear, the right document first, its best sentence highlighted
    box = browser.find_element(By.ID, "question")
    box.send_keys(QUESTION + Keys.ENTER)
    cards = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#results li.card"))
    top = cards[0]
    assert top.get_attribute("data-doc-id") == EXPECTED_DOC
    assert "繁體中文" in browser.find_element(By.ID, "status").text  # the question's language
    assert top.find_element(By.CSS_SELECTOR, ".lang-badge").text == "繁體中文"  # the passage's
    highlight = top.find_element(By.CSS_SELECTOR, ".passage mark.hl")
    assert highlight.text.strip()
    passage = top.find_element(By.CSS_SELECTOR, ".passage")
    original = passage.get_attribute("textContent")
    expected = api_top_passage(server, QUESTION)
    assert original == expected["text"] and "協議" in original
    assert "?q=" in browser.current_url  # the question is in the address: reload and back work
    browser.save_screenshot(str(ARTIFACTS / "web-2-results.png"))

    # 简体: converted in the browser, no request to the server
    browser.find_element(By.CSS_SELECTOR, "#script-toggle input[value=hans]").find_element(By.XPATH, "..").click()
    wait.until(lambda driver: passage.get_attribute("textContent") != original)
    simplified = passage.get_attribute("textContent")
    assert "协议" in simplified and "協議" not in simplified
    assert top.find_element(By.CSS_SELECTOR, ".passage mark.hl").text.strip()  # the highlight survives
    browser.save_screenshot(str(ARTIFACTS / "web-3-results-simplified.png"))

    # the document page: the cited passage marked and scrolled into view, in the chosen script
    top.find_element(By.CSS_SELECTOR, "a.open-doc").click()
    cited = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#doc-text mark#cited"))[0]
    assert f"/documents/{EXPECTED_DOC}" in browser.current_url
    assert "协议" in cited.get_attribute("textContent")
    assert browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top < window.innerHeight && r.bottom > 0;", cited)
    assert browser.find_element(By.ID, "cite-status").is_displayed()
    browser.save_screenshot(str(ARTIFACTS / "web-4-document-simplified.png"))
    browser.find_element(By.CSS_SELECTOR, "#script-toggle input[value=original]").find_element(By.XPATH, "..").click()
    assert cited.get_attribute("textContent") == expected["text"]  # exactly the cited passage
    browser.save_screenshot(str(ARTIFACTS / "web-5-document.png"))

    # back to the results, then an example chip
    browser.execute_script("window.scrollTo(0, 0);")  # the link may be under the sticky bar otherwise
    browser.find_element(By.CSS_SELECTOR, "nav.back a").click()
    cards = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#results li.card"))
    assert cards[0].get_attribute("data-doc-id") == EXPECTED_DOC
    browser.find_element(By.CSS_SELECTOR, ".chip[lang=en]").click()
    wait.until(lambda driver: "English" in driver.find_element(By.ID, "status").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#results li.card")
    browser.set_window_size(390, 844)  # a phone
    browser.save_screenshot(str(ARTIFACTS / "web-6-results-narrow.png"))
    browser.set_window_size(1200, 1000)

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors  # no script error, no CSP violation, nothing failed to load


# --- the library and a PDF, in a real browser, on a gunicorn that may change its corpus -----------------------

def _pdf_fixture() -> Path:
    """A PDF with a text layer from tests/fixtures/pdf (zh_hans.pdf: 3 pages, when it is there)."""
    pdfs = sorted(path for path in PDF_FIXTURES.glob("*.pdf") if not path.name.startswith("scanned"))
    if not pdfs:
        pytest.fail(f"no PDF in {PDF_FIXTURES}: `python tests/fixtures/make_pdf_fixtures.py` makes them")
    return next((path for path in pdfs if path.name == "zh_hans.pdf"), pdfs[0])


@pytest.fixture(scope="module")
def library_server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    """gunicorn over a temporary corpus (two corpus files and a PDF in reports/) that accepts writes."""
    base = tmp_path_factory.mktemp("library")
    corpus, index = base / "corpus", base / "index"
    (corpus / "reports").mkdir(parents=True)
    for name in (EXPECTED_DOC, "004_e0dd1fc4cceb475f.txt"):
        shutil.copy(ROOT / "corpus" / name, corpus / name)
    shutil.copy(_pdf_fixture(), corpus / "reports" / _pdf_fixture().name)
    build_index(corpus, index, embedder, progress=False)
    env = {"QA_ADMIN_KEY": ADMIN_KEY, "QA_CORPUS": str(corpus), "QA_RELOAD_SECONDS": "1"}
    with serving(index, base / "gunicorn.log", **env) as url:
        yield url


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def _browser_errors(browser) -> list[dict]:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_pdf_passage_shows_its_page(library_server: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    doc_id = f"reports/{_pdf_fixture().name}"
    stored = _get_json(f"{library_server}/api/documents/{urllib.parse.quote(doc_id)}")
    assert stored["format"] == "pdf" and stored["pages"], stored["pages"]
    page = stored["pages"][min(1, len(stored["pages"]) - 1)]  # page 2 when there is one
    question = stored["text"][page["start"]:page["end"]].strip().splitlines()[0][:60]
    expected = api_top_passage(library_server, question)
    assert expected["doc_id"] == doc_id and expected["page"] is not None

    # the folder filter, from the address: only reports/ is searched
    browser.get(f"{library_server}/?" + urllib.parse.urlencode({"q": question, "folder": "reports"}))
    cards = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#results li.card"))
    assert browser.find_element(By.ID, "folder").get_attribute("value") == "reports"
    assert {card.get_attribute("data-doc-id") for card in cards} == {doc_id}
    top = cards[0]
    label = (f"pp. {expected['page']}–{expected['page_end']}" if expected["page_end"] not in (None, expected["page"])
             else f"p. {expected['page']}")
    assert top.find_element(By.CSS_SELECTOR, ".page-ref").text == label
    browser.save_screenshot(str(ARTIFACTS / "web-11-pdf-results.png"))

    # the document page: a mark at each page start (no text of their own), the cited passage marked
    top.find_element(By.CSS_SELECTOR, "a.open-doc").click()
    cited = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#doc-text mark#cited"))[0]
    marks = browser.find_elements(By.CSS_SELECTOR, "#doc-text .page-mark")
    assert [mark.get_attribute("data-page") for mark in marks] == [str(p["page"]) for p in stored["pages"]]
    assert browser.find_element(By.ID, "doc-text").get_attribute("textContent") == stored["text"]
    cited_text = "".join(m.get_attribute("textContent") for m in browser.find_elements(By.CSS_SELECTOR, "mark.cited"))
    assert cited_text == expected["text"]
    assert browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top < window.innerHeight && r.bottom > 0;", cited)
    assert browser.find_element(By.CSS_SELECTOR, ".doc-format").text == "PDF"
    assert browser.find_element(By.ID, "offsets-note").is_displayed()
    label = browser.execute_script(
        "return getComputedStyle(arguments[0], '::before').content;", marks[-1])
    assert f"p. {stored['pages'][-1]['page']}" in label
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", marks[-1])
    browser.save_screenshot(str(ARTIFACTS / "web-12-pdf-document.png"))

    # back to the results keeps the filter; then the language filter: English only
    browser.execute_script("window.scrollTo(0, 0);")  # the link is under the sticky bar otherwise
    browser.find_element(By.CSS_SELECTOR, "nav.back a").click()
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#results li.card"))
    assert "folder=reports" in browser.current_url
    browser.find_element(By.ID, "folder").clear()
    Select(browser.find_element(By.ID, "language")).select_by_value("en")
    wait.until(lambda driver: "language=en" in driver.current_url
               and driver.find_element(By.ID, "status").get_attribute("class") in ("status done", "status empty"))
    badges = {badge.text for badge in browser.find_elements(By.CSS_SELECTOR, "#results .lang-badge")}
    assert badges <= {"English"}, badges
    assert "folder=" not in browser.current_url
    assert not _browser_errors(browser)


def test_library_upload_ask_and_delete(library_server: str, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    build_wait = WebDriverWait(browser, BUILD_SECONDS, poll_frequency=0.5)
    new_file = tmp_path / "lighthouse.txt"
    new_file.write_text("Lighthouse notes\n\n" + NEW_PHRASE + "\n", encoding="utf-8")
    new_id = "uploads/lighthouse.txt"

    browser.get(f"{library_server}/")
    browser.find_element(By.ID, "nav-library").click()
    rows = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#doc-rows tr[data-doc-id]"))
    assert {row.get_attribute("data-status") for row in rows} == {"indexed"} and len(rows) == 3
    assert browser.find_element(By.ID, "writes-off").get_attribute("hidden") is not None  # writes are on
    browser.save_screenshot(str(ARTIFACTS / "web-7-library.png"))

    # files dropped on the drop area are chosen (a synthetic drop: WebDriver cannot drag files in)
    browser.execute_script("""
        const files = new DataTransfer();
        files.items.add(new File(["x"], "dropped.txt", {type: "text/plain"}));
        const zone = document.getElementById("drop-zone");
        for (const type of ["dragenter", "dragover", "drop"]) {
          zone.dispatchEvent(new DragEvent(type, {dataTransfer: files, bubbles: true, cancelable: true}));
        }""")
    assert "dropped.txt" in browser.find_element(By.ID, "chosen-files").text

    # a wrong key: the service's message is shown, nothing is added
    browser.find_element(By.ID, "admin-key").send_keys("wrong-key")
    browser.find_element(By.ID, "file-input").send_keys(str(new_file))
    chosen = browser.find_element(By.ID, "chosen-files").text
    assert "lighthouse.txt" in chosen and "dropped.txt" not in chosen  # the picker's choice replaces the drop
    browser.find_element(By.ID, "upload-button").click()
    error = wait.until(lambda driver: driver.find_element(By.ID, "lib-error").text)
    assert "admin key" in error

    # the right key (kept in sessionStorage), a folder: the job runs, then the document is listed as indexed
    key = browser.find_element(By.ID, "admin-key")
    key.clear()
    key.send_keys(ADMIN_KEY)
    assert browser.execute_script("return sessionStorage.getItem('qa.adminKey')") == ADMIN_KEY
    browser.find_element(By.ID, "upload-folder").send_keys("uploads")
    browser.find_element(By.ID, "upload-button").click()
    job = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#jobs li.job"))[0]
    assert not browser.find_element(By.ID, "lib-error").is_displayed()
    progress_seen = set()

    def finished(driver) -> bool:
        progress_seen.add(job.find_element(By.CSS_SELECTOR, ".job-state").text)
        return job.get_attribute("data-state") in ("done", "failed", "error")

    build_wait.until(finished)
    assert job.get_attribute("data-state") == "done", job.text
    outcome = job.find_element(By.CSS_SELECTOR, f'.outcomes li[data-doc-id="{new_id}"]')
    assert outcome.get_attribute("data-status") == "indexed"
    row = wait.until(lambda driver: driver.find_elements(
        By.CSS_SELECTOR, f'#doc-rows tr[data-doc-id="{new_id}"][data-status="indexed"] a.doc-link'))[0]
    assert row.text == "Lighthouse notes"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#doc-rows tr[data-doc-id]")) == 4
    browser.save_screenshot(str(ARTIFACTS / "web-8-uploaded.png"))
    print("progress shown:", sorted(progress_seen))

    # the new document answers
    browser.get(f"{library_server}/?" + urllib.parse.urlencode({"q": NEW_QUESTION}))
    cards = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#results li.card"))
    assert cards[0].get_attribute("data-doc-id") == new_id
    assert "4217" in cards[0].find_element(By.CSS_SELECTOR, ".passage").text
    browser.save_screenshot(str(ARTIFACTS / "web-9-new-answer.png"))

    # delete a document: confirm, a job, and it is gone from the list
    browser.get(f"{library_server}/library")
    gone = "004_e0dd1fc4cceb475f.txt"
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, f'#doc-rows tr[data-doc-id="{gone}"]'))
    browser.find_element(By.CSS_SELECTOR, f'#doc-rows tr[data-doc-id="{gone}"] button.danger').click()
    alert = wait.until(lambda driver: driver.switch_to.alert)
    assert gone in alert.text
    alert.accept()
    job = wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#jobs li.job"))[0]
    build_wait.until(lambda driver: job.get_attribute("data-state") in ("done", "failed", "error"))
    assert job.get_attribute("data-state") == "done", job.text
    assert job.find_element(By.CSS_SELECTOR, f'.outcomes li[data-doc-id="{gone}"]').get_attribute(
        "data-status") == "deleted"
    wait.until(lambda driver: not driver.find_elements(By.CSS_SELECTOR, f'#doc-rows tr[data-doc-id="{gone}"]'))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#doc-rows tr[data-doc-id]")) == 3
    browser.save_screenshot(str(ARTIFACTS / "web-10-deleted.png"))
    listed = _get_json(f"{library_server}/api/documents")
    assert gone not in {doc["doc_id"] for doc in listed["documents"]} and listed["total"] == 3
    errors = [e for e in _browser_errors(browser) if "/api/documents" not in e["message"]]
    assert not errors, errors  # (the 401 of the wrong key is logged by the browser as a failed request)
