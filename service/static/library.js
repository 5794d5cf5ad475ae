/* The library page: list the indexed documents, add documents (upload) and delete them, follow the jobs.
 *
 * GET /api/documents lists a page of documents with their status, the changes not indexed yet and the
 * skipped files; POST /api/documents (multipart, field "files") and DELETE /api/documents/<doc_id> answer
 * 202 with a job, followed here with GET /api/jobs/<id> every second until it is done or failed. Writes
 * carry the admin key (X-Admin-Key), kept in this tab's sessionStorage only. Everything from the service
 * goes into the page as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  var LANGUAGES = { "zh-Hans": "简体中文", "zh-Hant": "繁體中文", "en": "English", "mixed": "中英混合 mixed" };
  var FORMATS = { text: "Text", markdown: "Markdown", html: "HTML", pdf: "PDF", docx: "Word" };
  var STATUS = {
    indexed: "已索引 indexed", queued: "排队中 queued", indexing: "索引中 indexing", deleting: "删除中 deleting",
  };
  var STAGES = {
    waiting: "等待构建 waiting for the build", read: "读取 reading", store: "保存 storing",
    embed: "向量化 embedding", vectors: "建立向量索引 building the vector index", publish: "发布 publishing",
    done: "完成 done",
  };
  var KEY_STORAGE = "qa.adminKey";
  var PAGE_SIZE = 50;
  var POLL_MS = 1000;

  var root = document.getElementById("library");
  var writable = root.dataset.writable === "true";
  var keyInput = document.getElementById("admin-key");
  var fileInput = document.getElementById("file-input");
  var dropZone = document.getElementById("drop-zone");
  var chosenList = document.getElementById("chosen-files");
  var folderInput = document.getElementById("upload-folder");
  var replaceBox = document.getElementById("replace");
  var uploadForm = document.getElementById("upload-form");
  var uploadButton = document.getElementById("upload-button");
  var errorLine = document.getElementById("lib-error");
  var jobsPanel = document.getElementById("jobs-panel");
  var jobsList = document.getElementById("jobs");
  var rows = document.getElementById("doc-rows");
  var summary = document.getElementById("lib-summary");
  var pager = document.getElementById("pager");
  var pageInfo = document.getElementById("page-info");
  var prevButton = document.getElementById("prev-page");
  var nextButton = document.getElementById("next-page");
  var skippedPanel = document.getElementById("skipped-panel");
  var skippedList = document.getElementById("skipped");

  var offset = 0;
  var chosen = [];

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function showError(message) {
    errorLine.textContent = message ? "出错了 · Error: " + message : "";
    errorLine.hidden = !message;
  }

  /* fetch + JSON; a non-2xx answer throws an Error with the service's error message. */
  function request(url, options) {
    return fetch(url, Object.assign({ headers: { Accept: "application/json" } }, options || {}))
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          if (!response.ok) {
            var error = new Error(body && body.error ? body.error.message : "HTTP " + response.status);
            error.code = body && body.error ? body.error.code : null;
            error.status = response.status;
            throw error;
          }
          return body;
        });
      });
  }

  function adminHeaders() {
    return { Accept: "application/json", "X-Admin-Key": keyInput.value.trim() };
  }

  function needKey() {
    if (keyInput.value.trim()) return false;
    showError("请先输入管理密钥 · Enter the admin key first.");
    keyInput.focus();
    return true;
  }

  // --- the admin key ------------------------------------------------------------------------------------

  try {
    keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";
  } catch (error) { /* storage off: type it each time */ }
  keyInput.addEventListener("input", function () {
    try {
      sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim());
    } catch (error) { /* storage off */ }
  });

  // --- the document list ----------------------------------------------------------------------------------

  function documentLink(docId) {
    return root.dataset.documents + docId.split("/").map(encodeURIComponent).join("/");
  }

  function statusBadge(status) {
    var node = element("span", "status-badge", STATUS[status] || status);
    node.dataset.status = status;
    return node;
  }

  function deleteButton(docId, status) {
    var button = element("button", "danger small", "删除 Delete");
    button.type = "button";
    button.dataset.docId = docId;
    button.disabled = !writable || status === "deleting";
    button.title = "删除 " + docId + " · delete it from the corpus and the index";
    button.addEventListener("click", function () { remove(docId); });
    return button;
  }

  function documentRow(doc) {
    var row = element("tr");
    row.dataset.docId = doc.doc_id;
    row.dataset.status = doc.status;
    var name = element("td", "doc-name");
    if (doc.title !== undefined) {
      var link = element("a", "doc-link");
      link.href = documentLink(doc.doc_id);
      QAScript.setText(link, doc.title || doc.doc_id, QAScript.htmlLang(doc.language));
      name.appendChild(link);
    }
    name.appendChild(element("span", "doc-id", doc.doc_id));
    row.appendChild(name);
    var language = element("td");
    if (doc.language) {
      var badge = element("span", "badge", LANGUAGES[doc.language] || doc.language);
      badge.dataset.lang = doc.language;
      language.appendChild(badge);
    }
    row.appendChild(language);
    row.appendChild(element("td", "format", doc.format ? FORMATS[doc.format] || doc.format : "—"));
    row.appendChild(element("td", "num", doc.passages === undefined ? "—" : String(doc.passages)));
    var status = element("td");
    status.appendChild(statusBadge(doc.status));
    row.appendChild(status);
    var actions = element("td", "actions");
    if (doc.title !== undefined || doc.status !== "deleting") actions.appendChild(deleteButton(doc.doc_id, doc.status));
    row.appendChild(actions);
    return row;
  }

  function render(body) {
    var list = [];
    if (offset === 0) {
      (body.pending || []).forEach(function (change) { list.push(change); }); // not in this build yet
    }
    body.documents.forEach(function (doc) { list.push(doc); });
    if (!list.length) {
      var empty = element("tr");
      var cell = element("td", "empty", "没有文档 · No documents.");
      cell.colSpan = 6;
      empty.appendChild(cell);
      list = null;
      rows.replaceChildren(empty);
    } else {
      rows.replaceChildren.apply(rows, list.map(documentRow));
    }
    var pending = (body.pending || []).length;
    summary.textContent = body.total + (body.total === 1 ? " document" : " documents")
      + (pending ? " · " + pending + " pending" : "") + " · index " + body.build;
    summary.dataset.build = body.build;
    var last = Math.min(body.offset + body.documents.length, body.total);
    pager.hidden = body.total <= body.limit && body.offset === 0;
    pageInfo.textContent = (body.total ? body.offset + 1 : 0) + "–" + last + " / " + body.total;
    prevButton.disabled = body.offset === 0;
    nextButton.disabled = body.offset + body.limit >= body.total;
    skippedPanel.hidden = !body.skipped.length;
    skippedList.replaceChildren.apply(skippedList, body.skipped.map(function (skip) {
      var item = element("li");
      item.dataset.docId = skip.doc_id;
      item.appendChild(element("span", "doc-id", skip.doc_id));
      item.appendChild(element("span", "reason", skip.reason));
      return item;
    }));
    if (body.writable !== writable) setWritable(body.writable);
  }

  function setWritable(value) {
    writable = value;
    root.dataset.writable = value ? "true" : "false";
    document.getElementById("write-controls").disabled = !value;
    document.getElementById("writes-off").hidden = value;
    rows.querySelectorAll("button.danger").forEach(function (button) { button.disabled = !value; });
  }

  /* Load the current page of the list; resolves with the answer (or null after showing an error). */
  function load() {
    var query = new URLSearchParams({ offset: String(offset), limit: String(PAGE_SIZE) });
    var promise = request(root.dataset.list + "?" + query.toString()).then(function (body) {
      if (body.total && offset >= body.total) { // the last page emptied: show the one before
        offset = Math.max(0, Math.floor((body.total - 1) / PAGE_SIZE) * PAGE_SIZE);
        return load();
      }
      render(body);
      return body;
    }).catch(function (error) {
      showError(error.message);
      return null;
    });

    return promise;
  }

  /* After a job is done, the service swaps the new build in within seconds: reload until it serves it. */
  function loadBuild(buildId, triesLeft) {
    return load().then(function (body) {
      if (!buildId || !body || body.build === buildId || triesLeft <= 0) return body;
      return new Promise(function (resolve) { setTimeout(resolve, POLL_MS); }).then(function () {
        return loadBuild(buildId, triesLeft - 1);
      });
    });
  }

  prevButton.addEventListener("click", function () {
    offset = Math.max(0, offset - PAGE_SIZE);
    load();
  });
  nextButton.addEventListener("click", function () {
    offset += PAGE_SIZE;
    load();
  });
  document.getElementById("refresh").addEventListener("click", function () { load(); });

  // --- jobs -------------------------------------------------------------------------------------------

  function progressText(job) {
    if (job.state === "queued") return "排队中 · queued, the build starts soon";
    if (job.state === "failed") return "失败 · failed: " + (job.error || "");
    if (job.state === "done") return "完成 · done";
    var p = job.progress;
    if (!p) return "开始构建 · starting the build";
    if (p.stage === "read") {
      return p.files_total ? "读取文件 · reading " + p.files_done + "/" + p.files_total + " files"
        : "读取文件 · reading the files";
    }
    if (p.stage === "embed") {
      return "向量化 · embedding " + (p.passages_embedded + p.passages_cached) + "/" + p.passages_total
        + " passages" + (p.passages_cached ? " (" + p.passages_cached + " from the cache)" : "");
    }
    return STAGES[p.stage] || p.stage;
  }

  function outcomes(job) {
    var list = element("ul", "outcomes");
    var files = job.result && job.result.files ? job.result.files : {};
    Object.keys(files).forEach(function (docId) {
      var outcome = files[docId];
      var item = element("li");
      item.dataset.docId = docId;
      item.dataset.status = outcome.status;
      item.appendChild(element("span", "doc-id", docId));
      item.appendChild(statusBadge(outcome.status));
      if (outcome.reason) item.appendChild(element("span", "reason", outcome.reason));
      list.appendChild(item);
    });
    return list;
  }

  function track(job, label) {
    jobsPanel.hidden = false;
    var item = element("li", "job");
    item.dataset.job = job.id;
    var head = element("div", "job-head");
    head.appendChild(element("span", "job-kind", label));
    var state = element("span", "job-state");
    head.appendChild(state);
    item.appendChild(head);
    var bar = element("progress", "job-bar");
    item.appendChild(bar);
    jobsList.insertBefore(item, jobsList.firstChild);

    function update(current) {
      item.dataset.state = current.state;
      state.textContent = progressText(current);
      var p = current.progress;
      if (current.state === "done" || current.state === "failed") {
        bar.remove();
      } else if (p && p.stage === "embed" && p.passages_total) {
        bar.max = p.passages_total;
        bar.value = p.passages_embedded + p.passages_cached;
      } else if (p && p.stage === "read" && p.files_total) {
        bar.max = p.files_total;
        bar.value = p.files_done;
      } else {
        bar.removeAttribute("value"); // indeterminate
      }
    }

    function poll() {
      request(root.dataset.jobs + encodeURIComponent(job.id)).then(function (current) {
        update(current);
        if (current.state === "done") {
          item.appendChild(outcomes(current));
          loadBuild(current.result && current.result.build_id, 15);
        } else if (current.state === "failed") {
          load();
        } else {
          setTimeout(poll, POLL_MS);
        }
      }).catch(function (error) {
        state.textContent = "出错了 · " + error.message;
        item.dataset.state = "error";
      });
    }

    update(job);
    setTimeout(poll, POLL_MS);
  }

  // --- upload -----------------------------------------------------------------------------------------

  function choose(files) {
    chosen = Array.prototype.slice.call(files || []);
    chosenList.replaceChildren.apply(chosenList, chosen.map(function (file) {
      var item = element("li", null, file.name);
      item.appendChild(element("span", "size", " " + Math.max(1, Math.round(file.size / 1024)) + " KB"));
      return item;
    }));
    dropZone.classList.toggle("has-files", chosen.length > 0);
  }

  fileInput.addEventListener("change", function () { choose(fileInput.files); });
  ["dragenter", "dragover"].forEach(function (type) {
    dropZone.addEventListener(type, function (event) {
      event.preventDefault();
      if (!writable) return;
      event.dataTransfer.dropEffect = "copy";
      dropZone.classList.add("dragging");
    });
  });
  ["dragleave", "dragend"].forEach(function (type) {
    dropZone.addEventListener(type, function () { dropZone.classList.remove("dragging"); });
  });
  dropZone.addEventListener("drop", function (event) {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    if (writable && event.dataTransfer && event.dataTransfer.files.length) choose(event.dataTransfer.files);
  });

  uploadForm.addEventListener("submit", function (event) {
    event.preventDefault();
    showError("");
    if (!writable || needKey()) return;
    if (!chosen.length) {
      showError("请选择文件 · Choose or drop one or more files first.");
      return;
    }
    var data = new FormData();
    chosen.forEach(function (file) { data.append("files", file, file.name); });
    var folder = folderInput.value.trim();
    if (folder) data.append("folder", folder);
    if (replaceBox.checked) data.append("replace", "true");
    uploadButton.disabled = true;
    uploadForm.setAttribute("aria-busy", "true");
    request(root.dataset.upload, { method: "POST", headers: adminHeaders(), body: data }).then(function (body) {
      var names = body.documents.map(function (doc) { return doc.doc_id; });
      track(body.job, "上传 Upload: " + names.join(", "));
      choose([]);
      fileInput.value = "";
      load();
    }).catch(function (error) {
      showError(error.message);
    }).finally(function () {
      uploadButton.disabled = false;
      uploadForm.removeAttribute("aria-busy");
    });
  });

  // --- delete -----------------------------------------------------------------------------------------

  function remove(docId) {
    showError("");
    if (!writable || needKey()) return;
    if (!window.confirm("删除 " + docId + "？\nDelete " + docId + " from the corpus and the index?")) return;
    var path = docId.split("/").map(encodeURIComponent).join("/");
    request(root.dataset.delete + path, { method: "DELETE", headers: adminHeaders() }).then(function (body) {
      track(body.job, "删除 Delete: " + docId);
      load();
    }).catch(function (error) {
      showError(error.message);
    });
  }

  load();
})();
