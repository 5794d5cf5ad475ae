/* The document page: mark the cited passage and scroll to it.
 *
 * A result card links here with the passage text in the fragment (#passage=…). That text is a verbatim
 * slice of the cleaned text shown here, so the first place it occurs is the passage.
 */
(function () {
  "use strict";

  var container = document.getElementById("doc-text");
  var statusLine = document.getElementById("cite-status");
  var lang = container.getAttribute("lang");
  var text = container.textContent;

  function wantedPassage() {
    var hash = window.location.hash;
    if (hash.indexOf("#passage=") !== 0) return null;
    try {
      // the HTML parser turns CR LF into LF in the shown text; do the same to the passage
      return decodeURIComponent(hash.slice("#passage=".length)).replace(/\r\n?/g, "\n");
    } catch (error) {
      return null;
    }
  }

  function span(tag, content) {
    var node = document.createElement(tag);
    QAScript.setText(node, content, lang);
    return node;
  }

  function say(message, kind) {
    statusLine.textContent = message;
    statusLine.className = "cite-status " + kind;
    statusLine.hidden = false;
  }

  var passage = wantedPassage();
  var at = passage ? text.indexOf(passage) : -1;
  if (passage && at >= 0) {
    var mark = span("mark", passage);
    mark.id = "cited";
    mark.className = "cited";
    container.replaceChildren(span("span", text.slice(0, at)), mark, span("span", text.slice(at + passage.length)));
    say("引用的段落已标出 · The cited passage is marked below.", "found");
    mark.scrollIntoView({ block: "center" });
  } else {
    container.replaceChildren(span("span", text));
    if (passage) say("这一版文档中找不到引用的段落 · The cited passage is not in this version of the document "
      + "(the index was rebuilt?).", "missing");
  }
})();
