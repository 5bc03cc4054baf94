// The question page: ask, show the answer with its citations, open a cited document with the
// answer span highlighted. Every piece of server text is inserted with textContent (never HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "rag-api-key";

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = localStorage.getItem(KEY) || "";
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function call(method, path, body) {
  const res = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  let data = null;
  try { data = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const msg = data && data.error ? data.error.message : res.statusText;
    const err = new Error(res.status === 401 ? "This service needs an API key: enter it under \u201cAPI key\u201d. (" + msg + ")" : msg);
    err.status = res.status;
    throw err;
  }
  return data;
}

// Append `text` to `parent`: every occurrence of `needle` (the answer) in <mark class="answer">, and the
// question's terms (`terms`: [start, end] ranges into `text`) in <mark class="term">.
function appendHighlighted(parent, text, needle, terms) {
  const kind = new Uint8Array(text.length);
  (terms || []).forEach(([a, b]) => kind.fill(1, a, b));
  if (needle) {
    for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) {
      kind.fill(2, i, i + needle.length);
    }
  }
  let i = 0;
  while (i < text.length) {
    let j = i;
    while (j < text.length && kind[j] === kind[i]) j++;
    const piece = text.slice(i, j);
    if (kind[i] === 0) {
      parent.append(piece);
    } else {
      const m = document.createElement("mark");
      m.className = kind[i] === 1 ? "term" : "answer";
      m.textContent = piece;
      parent.append(m);
    }
    i = j;
  }
}

function isChinese(text) {
  const cjk = (text.match(/[\u4e00-\u9fff]/g) || []).length;
  return cjk >= Math.max(1, text.replace(/\s/g, "").length * 0.3);
}

function showStatus(text, error) {
  $("result").hidden = false;
  $("status").textContent = text;
  $("status").className = error ? "status error" : "status";
}

function render(question, data) {
  const zh = isChinese(question);
  $("status").textContent = "";
  $("status").className = "status";
  const answer = $("answer");
  const list = $("citations");
  list.replaceChildren();
  if (data.answer === null) {
    answer.textContent = zh
      ? "没有找到确切的答案" + (data.citations.length ? "；以下是最接近的证据。" : "。")
      : "No definite answer in the corpus" + (data.citations.length ? "; the closest evidence is below." : ".");
    answer.className = "answer none";
    $("meta").textContent = "confidence " + Math.round(data.confidence * 100) + "% that it could be answered";
  } else {
    answer.textContent = data.answer;
    answer.className = "answer";
    $("meta").textContent = "confidence " + Math.round(data.confidence * 100) + "% \u00b7 " + data.question_type;
  }
  $("sources-title").hidden = data.citations.length === 0;
  data.citations.forEach((c, i) => {
    const li = document.createElement("li");
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "cite";
    btn.dataset.doc = c.doc_id;
    btn.dataset.start = c.start;
    btn.dataset.end = c.end;
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = (c.title || c.doc_id) + " (" + c.doc_id + ")";
    const snip = document.createElement("span");
    snip.className = "snippet";
    appendHighlighted(snip, c.snippet, data.answer && c.snippet.includes(data.answer) ? data.answer : "", c.highlights);
    btn.append(title, snip);
    btn.setAttribute("aria-label", "Open " + (c.title || c.doc_id) + " at the cited passage");
    btn.addEventListener("click", () => openDocument(c.doc_id, c.start, c.end, btn));
    li.append(btn);
    list.append(li);
  });
  $("result").hidden = false;
}

let returnFocus = null;

async function openDocument(docId, start, end, opener) {
  returnFocus = opener;
  try {
    const doc = await call("GET", "/v1/documents/" + encodeURIComponent(docId));
    $("doc-title").textContent = (doc.title || doc.doc_id) + " (" + doc.doc_id + ")";
    const box = $("doc-text");
    box.replaceChildren();
    const mark = document.createElement("mark");
    mark.id = "highlight";
    mark.textContent = doc.text.slice(start, end);
    box.append(doc.text.slice(0, start), mark, doc.text.slice(end));
    const panel = $("document");
    panel.hidden = false;
    panel.focus();
    mark.scrollIntoView({ block: "center" });
  } catch (err) {
    showStatus(err.message, true);
  }
}

function closeDocument() {
  $("document").hidden = true;
  if (returnFocus) returnFocus.focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").value = localStorage.getItem(KEY) || "";
  $("key").addEventListener("input", () => localStorage.setItem(KEY, $("key").value.trim()));
  $("close-doc").addEventListener("click", closeDocument);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("document").hidden) closeDocument();
  });
  $("ask").addEventListener("submit", async (e) => {
    e.preventDefault();
    const question = $("question").value.trim();
    if (!question) return;
    $("submit").disabled = true;
    $("document").hidden = true;
    showStatus("Searching\u2026", false);
    $("answer").textContent = "";
    $("meta").textContent = "";
    $("citations").replaceChildren();
    $("sources-title").hidden = true;
    try {
      render(question, await call("POST", "/v1/ask", { question, top_k: 5 }));
    } catch (err) {
      showStatus(err.message, true);
    } finally {
      $("submit").disabled = false;
    }
  });
});
