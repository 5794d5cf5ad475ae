/* The document page: mark the cited passage and scroll to it.
 *
 * A result card links here with the passage text in the fragment (#passage=…). That text is a verbatim
 * slice of the cleaned text shown here, so the first place it occurs is the passage.
 *
 * A paginated document (PDF) comes with page marks between its text: empty elements (.page-mark, the
 * label "p. N" is drawn by CSS), so the text of #doc-text is exactly the document's text. The text is
 * rebuilt as pieces cut at the page marks and at the passage's ends; a passage running over a page break
 * becomes one <mark> per page (the first is #cited).
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

  /* The container's content as pieces: {text} runs and {node} page marks, in order. */
  function pieces() {
    var list = [];
    var run = "";
    container.childNodes.forEach(function (node) {
      if (node.nodeType === Node.ELEMENT_NODE && node.classList.contains("page-mark")) {
        if (run) list.push({ text: run });
        run = "";
        list.push({ node: node });
      } else {
        run += node.textContent;
      }
    });
    if (run) list.push({ text: run });
    return list;
  }

  /* Rebuild the container: text runs as spans, [from, to) of the text as <mark class=cited>. */
  function rebuild(from, to) {
    var nodes = [];
    var offset = 0;
    var first = null;
    pieces().forEach(function (piece) {
      if (piece.node) {
        nodes.push(piece.node);
        return;
      }
      var start = offset;
      var end = offset + piece.text.length;
      offset = end;
      var cuts = [start];
      if (from > start && from < end) cuts.push(from);
      if (to > start && to < end) cuts.push(to);
      cuts.push(end);
      for (var i = 0; i + 1 < cuts.length; i++) {
        var a = cuts[i];
        var b = cuts[i + 1];
        var cited = a >= from && b <= to && from < to;
        var node = span(cited ? "mark" : "span", piece.text.slice(a - start, b - start));
        if (cited) {
          node.className = "cited";
          if (!first) {
            first = node;
            node.id = "cited";
          }
        }
        nodes.push(node);
      }
    });
    container.replaceChildren.apply(container, nodes);
    return first;
  }

  var passage = wantedPassage();
  var at = passage ? text.indexOf(passage) : -1;
  if (passage && at >= 0) {
    var mark = rebuild(at, at + passage.length);
    say("引用的段落已标出 · The cited passage is marked below.", "found");
    mark.scrollIntoView({ block: "center" });
  } else {
    rebuild(-1, -1);
    if (passage) say("这一版文档中找不到引用的段落 · The cited passage is not in this version of the document "
      + "(the index was rebuilt?).", "missing");
  }
})();
