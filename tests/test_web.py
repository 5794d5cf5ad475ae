"""The web page: served by the app (Flask test client), and used in a real headless Chromium against gunicorn.

The browser test needs Debian's `chromium` and `chromium-driver` (`make browser`, a prerequisite of `make test`);
without them it fails rather than skipping. Screenshots are saved in test-artifacts/ for people to look at.
"""
from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from indexer.store import StoredDocument
from service import create_app

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


class _HostileRetriever:
    """A retriever whose one document tries to inject markup through every field the page shows."""

    build_id, passage_count = "hostile", 1

    def document(self, doc_id: str) -> StoredDocument:
        return StoredDocument(
            doc_id=doc_id, title='<script>alert("title")</script>', language="en", sha256="0" * 64,
            url="javascript:alert(1)", date='<b onmouseover="x">2025</b>',
            clean_text='</div><img src=x onerror="alert(1)"> & more', original_length=42,
        )


def test_document_text_is_escaped() -> None:
    app: Flask = create_app({"LOAD_INDEX": False})
    app.extensions["qa_state"].swap(_HostileRetriever())
    html = app.test_client().get("/documents/x.txt").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "&lt;/div&gt;&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; more" in html
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
