// dtc console: progressive enhancement only; every page works without it.
// (No inline scripts: the Content-Security-Policy allows scripts from this file alone.)
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The language switch submits itself.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
  // Deleting asks first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // The deliveries list refreshes itself while the box is ticked (remembered per browser).
  const auto = document.querySelector("input[data-auto-refresh]");
  if (auto) {
    auto.checked = window.localStorage.getItem("dtc-auto-refresh") !== "off";
    auto.addEventListener("change", () =>
      window.localStorage.setItem("dtc-auto-refresh", auto.checked ? "on" : "off"));
    window.setInterval(() => { if (auto.checked && !document.hidden) window.location.reload(); }, 5000);
  }
  // The New Connection dialog shows the fields of the chosen kind only; the other kind's
  // fieldset is disabled, so its required fields do not block the form.
  const kind = document.querySelector("select[data-kind-switch]");
  if (kind) {
    const show = () => {
      for (const set of document.querySelectorAll("fieldset[data-kind]")) {
        const on = set.dataset.kind === kind.value;
        set.disabled = !on;
        set.hidden = !on;
      }
    };
    kind.addEventListener("change", show);
    show();
  }
  // The Send page's live preview: the form as DingTalk would show it, asked of the server
  // (the same validation and renderer as a real send) a moment after the user stops typing.
  // A picked file is named, not uploaded, until Send.
  const sendForm = document.querySelector("form[data-preview]");
  const pane = document.getElementById("preview");
  if (sendForm && pane) {
    let timer = 0, asked = 0;
    const ask = async () => {
      const mine = ++asked;
      const data = new FormData(sendForm);
      for (const input of sendForm.querySelectorAll("input[type=file]")) {
        data.delete(input.name);
        if (input.files.length) data.set("__picked_" + input.name, input.files[0].name);
      }
      try {
        const r = await fetch(sendForm.dataset.preview, { method: "POST", body: data, credentials: "same-origin" });
        if (mine !== asked) return;
        pane.innerHTML = await r.text();
        wordsForBrokenImages(pane);
      } catch (e) {
        if (mine === asked) pane.textContent = String(e);
      }
    };
    const later = () => { window.clearTimeout(timer); timer = window.setTimeout(ask, 250); };
    sendForm.addEventListener("input", later);
    sendForm.addEventListener("change", later);
    ask();
  }
  // Images a preview cannot load (outside addresses are not fetched) are named in words.
  function wordsForBrokenImages(root) {
    for (const img of root.querySelectorAll("img")) {
      const swap = () => {
        const note = document.createElement("span");
        note.className = "broken-image";
        note.textContent = (img.alt || "Image") + " (" + img.title + ")";
        img.replaceWith(note);
      };
      if (img.complete && img.naturalWidth === 0) swap(); else img.addEventListener("error", swap);
    }
  }
  // The flow editor: a problem's line number jumps to that line.
  const editor = document.querySelector("textarea[data-editor]");
  if (editor) {
    for (const link of document.querySelectorAll("a[data-line]")) {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        const line = Number(link.dataset.line);
        const lines = editor.value.split("\n");
        const start = lines.slice(0, line - 1).join("\n").length + (line > 1 ? 1 : 0);
        const end = start + (lines[line - 1] || "").length;
        editor.focus();
        editor.setSelectionRange(start, end);
        const lineHeight = parseFloat(window.getComputedStyle(editor).lineHeight) || 20;
        editor.scrollTop = Math.max(0, (line - 3) * lineHeight);
      });
    }
    // Tab indents (two spaces) instead of leaving the editor; Escape then Tab leaves it.
    let escaped = false;
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { escaped = true; return; }
      if (event.key === "Tab" && !event.shiftKey && !escaped) {
        event.preventDefault();
        editor.setRangeText("  ", editor.selectionStart, editor.selectionEnd, "end");
      }
      escaped = false;
    });
  }
  // Copy buttons (conversation ids): the id to the clipboard, and a word that it happened.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        const was = button.textContent;
        button.textContent = "✓";
        window.setTimeout(() => { button.textContent = was; }, 1500);
      } catch (e) {
        window.prompt("", button.dataset.copy);
      }
    });
  }
});
