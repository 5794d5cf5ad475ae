/* The 原文 / 简体 / 繁體 toggle, shared by both pages.
 *
 * Text that may be converted is set with QAScript.setText(element, text): the original is kept, and the
 * element shows it in the chosen script. Switching converts every such element again from its original,
 * in the browser (opencc-js, vendored in static/vendor), without asking the server. The choice is kept in
 * localStorage, so the document page opens in the script the results were read in.
 */
(function () {
  "use strict";

  var STORAGE_KEY = "qa.script";
  var originals = new WeakMap(); // element -> {text, lang}
  var converters = {};
  var mode = "original";

  function converter(which) {
    if (which === "original" || typeof OpenCC === "undefined") {
      return null;
    }
    if (!converters[which]) {
      // characters only (tw, not twp): the page must not rewrite vocabulary
      converters[which] = which === "hans"
        ? OpenCC.Converter({ from: "tw", to: "cn" })
        : OpenCC.Converter({ from: "cn", to: "tw" });
    }
    return converters[which];
  }

  /* A valid HTML lang for a passage's language as the API reports it ("mixed" is not one). */
  function htmlLang(language) {
    return language === "mixed" ? "zh" : language;
  }

  function render(element) {
    var original = originals.get(element);
    var convert = converter(mode);
    element.textContent = convert ? convert(original.text) : original.text;
    if (original.lang && original.lang.indexOf("zh") === 0) {
      // so that the browser picks Simplified or Traditional glyph forms for what is shown
      element.lang = mode === "hans" ? "zh-Hans" : mode === "hant" ? "zh-Hant" : original.lang;
    }
  }

  function setText(element, text, lang) {
    if (lang) element.lang = lang;
    originals.set(element, { text: text, lang: element.getAttribute("lang") });
    element.setAttribute("data-convert", "");
    render(element);
  }

  function setMode(next) {
    mode = next === "hans" || next === "hant" ? next : "original";
    try {
      localStorage.setItem(STORAGE_KEY, mode);
    } catch (error) { /* storage off: the toggle still works for this page */ }
    document.documentElement.setAttribute("data-script", mode);
    document.querySelectorAll("[data-convert]").forEach(function (element) {
      if (originals.has(element)) render(element);
    });
  }

  function init() {
    var saved = null;
    try {
      saved = localStorage.getItem(STORAGE_KEY);
    } catch (error) { /* storage off */ }
    mode = saved === "hans" || saved === "hant" ? saved : "original";
    document.documentElement.setAttribute("data-script", mode);
    var toggle = document.getElementById("script-toggle");
    if (toggle) {
      toggle.querySelectorAll("input[name=script]").forEach(function (radio) {
        radio.checked = radio.value === mode;
        radio.addEventListener("change", function () {
          if (radio.checked) setMode(radio.value);
        });
      });
      if (typeof OpenCC === "undefined") toggle.disabled = true; // the converter failed to load
    }
    // server-rendered convertible text (the document's title)
    document.querySelectorAll("[data-convert]").forEach(function (element) {
      if (!originals.has(element)) setText(element, element.textContent);
    });
  }

  window.QAScript = { setText: setText, htmlLang: htmlLang };
  init(); // scripts are deferred: the document is parsed
})();
