/* The question page: ask /api/ask, show the passages as cards.
 *
 * All text from the service goes into the page with textContent (never as HTML). The question is kept in
 * the address (?q=, with the filters ?folder= and ?language=), so reloading, going back from a document or
 * sharing the link shows the same answer. A passage of a PDF shows the page(s) it is on ("p. 3", "pp. 3–4").
 */
(function () {
  "use strict";

  var LANGUAGES = { "zh-Hans": "简体中文", "zh-Hant": "繁體中文", "en": "English", "mixed": "中英混合 mixed", "zh": "中文" };
  var form = document.getElementById("ask-form");
  var input = document.getElementById("question");
  var folderInput = document.getElementById("folder");
  var languageSelect = document.getElementById("language");
  var folderList = document.getElementById("folder-list");
  var statusLine = document.getElementById("status");
  var results = document.getElementById("results");
  var template = document.getElementById("card-template");
  var topK = Number(form.dataset.topK) || 5;
  var inFlight = null;

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function badge(language) {
    var node = element("span", "badge", LANGUAGES[language] || language);
    node.dataset.lang = language;
    return node;
  }

  function setStatus(kind, parts) {
    statusLine.className = "status " + kind;
    statusLine.replaceChildren.apply(statusLine, parts);
  }

  /* The filters as sent: {folder, language}, without the empty ones (the API refuses an empty folder). */
  function filters() {
    var chosen = {};
    var folder = folderInput.value.trim().replace(/^\/+|\/+$/g, "");
    if (folder) chosen.folder = folder;
    if (languageSelect.value) chosen.language = languageSelect.value;
    return chosen;
  }

  function documentUrl(passage, question, chosen) {
    var path = passage.doc_id.split("/").map(encodeURIComponent).join("/");
    var query = new URLSearchParams({ q: question });
    Object.keys(chosen).forEach(function (key) { query.set(key, chosen[key]); }); // for the way back
    // the passage text is a verbatim slice of the document's cleaned text: the document page finds and
    // marks it. It travels in the fragment, which is never sent to the server (no URL length limit).
    return form.dataset.documents + path + "?" + query.toString()
      + "#passage=" + encodeURIComponent(passage.text);
  }

  /* "p. 3" or "pp. 3–4" for a passage of a paginated document (PDF); "" otherwise. */
  function pageLabel(passage) {
    if (passage.page === null || passage.page === undefined) return "";
    if (passage.page_end !== null && passage.page_end !== undefined && passage.page_end !== passage.page) {
      return "pp. " + passage.page + "–" + passage.page_end;
    }
    return "p. " + passage.page;
  }

  /* The passage as text nodes around a <mark> of the highlighted sentence. The API's highlight offsets
   * count Unicode code points (Python), so the text is sliced as code points, not UTF-16 units. */
  function fillPassage(container, passage, lang) {
    var spans = [];
    var chars = Array.from(passage.text);
    var highlight = passage.highlight;
    if (highlight && highlight.start < highlight.end && highlight.end <= chars.length) {
      spans.push([element("span"), chars.slice(0, highlight.start).join("")]);
      spans.push([element("mark", "hl"), chars.slice(highlight.start, highlight.end).join("")]);
      spans.push([element("span"), chars.slice(highlight.end).join("")]);
    } else {
      spans.push([element("span"), passage.text]);
    }
    spans.forEach(function (pair) {
      QAScript.setText(pair[0], pair[1], lang);
      container.appendChild(pair[0]);
    });
  }

  function card(passage, question, chosen) {
    var node = template.content.firstElementChild.cloneNode(true);
    var language = passage.language;
    node.dataset.docId = passage.doc_id;
    node.dataset.rank = passage.rank;
    node.querySelector(".rank").textContent = passage.rank;
    QAScript.setText(node.querySelector(".card-title"), passage.title,
      QAScript.htmlLang(language));
    var languageBadge = node.querySelector(".lang-badge");
    languageBadge.textContent = LANGUAGES[language] || language;
    languageBadge.dataset.lang = language;
    fillPassage(node.querySelector(".passage"), passage, QAScript.htmlLang(language));
    node.querySelector(".doc-id").textContent = passage.doc_id;
    node.querySelector(".cite").textContent = "chars " + passage.start + "–" + passage.end;
    node.querySelector(".cite").title = "offsets of the passage in the original file"
      + " (PDF, Word: in the text extracted from it)";
    var pages = pageLabel(passage);
    if (pages) {
      var pageRef = node.querySelector(".page-ref");
      pageRef.textContent = pages;
      pageRef.title = "第 " + (passage.page_end && passage.page_end !== passage.page
        ? passage.page + "–" + passage.page_end : passage.page) + " 页 · page(s) of the document";
      pageRef.hidden = false;
    }
    node.querySelector(".score").textContent = "relevance " + passage.relevance.toFixed(2) + " · score "
      + passage.score.toFixed(3);
    node.querySelector(".score").title = "相关度 · how likely this passage answers the question (0–1)";
    node.querySelector(".open-doc").href = documentUrl(passage, question, chosen);
    return node;
  }

  function show(answer, chosen) {
    results.replaceChildren();
    var count = answer.passages.length;
    if (count === 0) {
      setStatus("empty", [badge(answer.query_language), document.createTextNode(
        answer.abstained ? " 没有段落能回答这个问题 · No passage answers this (none is relevant enough)."
          : " 没有找到相关段落 · No passage answers this question.")]);
      return;
    }
    setStatus("done", [
      badge(answer.query_language),
      document.createTextNode(" question · " + count + (count === 1 ? " passage" : " passages")
        + " · " + Math.round(answer.took_ms) + " ms"),
    ]);
    answer.passages.forEach(function (passage) {
      results.appendChild(card(passage, answer.question, chosen));
    });
  }

  /* POST the question; a busy service (503 overloaded, 429 rate_limited) is asked once more after its
   * Retry-After (seconds, at most 30) stretched by up to half at random, so pages refused together do not all
   * come back in the same instant. A newer question aborts `signal`, which also ends the wait's fetch. */
  function post(body, signal, retried) {
    return fetch(form.dataset.api, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: body,
      signal: signal,
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (response.ok) return answer;
        var code = answer && answer.error ? answer.error.code : "";
        if (!retried && (code === "overloaded" || code === "rate_limited")) {
          var seconds = Math.min(Number(response.headers.get("Retry-After")) || 1, 30);
          setStatus("busy", [document.createTextNode("繁忙，正在重试 · Busy, retrying…")]);
          return new Promise(function (resolve) { setTimeout(resolve, seconds * (1 + Math.random() / 2) * 1000); })
            .then(function () { return post(body, signal, true); });
        }
        throw new Error(answer && answer.error ? answer.error.message : "HTTP " + response.status);
      });
    });
  }

  function ask(question) {
    question = question.trim();
    if (!question) {
      input.focus();
      return;
    }
    var chosen = filters();
    var address = new URL(window.location.href);
    address.searchParams.set("q", question);
    ["folder", "language"].forEach(function (key) {
      if (chosen[key]) address.searchParams.set(key, chosen[key]);
      else address.searchParams.delete(key);
    });
    address.hash = "";
    history.replaceState(null, "", address);
    document.getElementById("intro").hidden = true;
    if (inFlight) inFlight.abort();
    var controller = new AbortController();
    inFlight = controller;
    form.setAttribute("aria-busy", "true");
    setStatus("busy", [document.createTextNode("正在检索… Searching…")]);
    var body = JSON.stringify(Object.assign({ question: question, top_k: topK }, chosen));
    post(body, controller.signal, false).then(function (answer) {
      show(answer, chosen);
    }).catch(function (error) {
      if (error.name === "AbortError") return;
      results.replaceChildren();
      setStatus("error", [document.createTextNode("出错了 · " + error.message)]);
    }).finally(function () {
      if (inFlight === controller) {
        inFlight = null;
        form.removeAttribute("aria-busy");
      }
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault(); // Enter in the box submits the form: ask without reloading the page
    ask(input.value);
  });
  document.querySelectorAll(".chip").forEach(function (chip) {
    chip.addEventListener("click", function () {
      input.value = chip.dataset.question;
      ask(input.value);
    });
  });
  languageSelect.addEventListener("change", function () {
    if (input.value.trim()) ask(input.value); // the same question in the chosen language
  });

  /* Suggest the corpus folders seen in the document list (a failure just leaves no suggestions). */
  function suggestFolders() {
    fetch(form.dataset.list + "?limit=1000", { headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) return;
        var folders = {};
        body.documents.concat(body.pending || []).forEach(function (doc) {
          var parts = doc.doc_id.split("/");
          for (var i = 1; i < parts.length; i++) folders[parts.slice(0, i).join("/")] = true;
        });
        folderList.replaceChildren.apply(folderList, Object.keys(folders).sort().map(function (folder) {
          var option = document.createElement("option");
          option.value = folder;
          return option;
        }));
      })
      .catch(function () { /* no suggestions */ });
  }

  suggestFolders();
  if (input.value.trim()) ask(input.value); // opened as /?q=…
})();
