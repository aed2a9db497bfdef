// emergelab web page: chat over /v1/chat/completions (streamed), the inspector over /api/inspect, and the
// context (disambiguation) panel over /api/disambiguate.
// Plain browser JavaScript, no build step. All model text goes into the DOM through textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, info: null, history: [], busy: false, inspect: null, inspectText: null,
                pairs: null, dis: null };

// Probability p in [0, 1] -> red (0) ... yellow ... green (1).
const probColour = (p) => `hsl(${Math.round(120 * p)}, 75%, 80%)`;

// ---------- header ----------
async function loadInfo() {
  const info = await (await fetch("/api/info")).json();
  state.info = info;
  state.model = info.model;
  const c = info.config;
  $("model-info").textContent = `${info.model} · ${(info.params / 1e6).toFixed(2)}M params · ` +
    `${c.n_layer} layers × ${c.n_head} heads · context ${c.block_size} · ${info.chat_template} chat template`;
  for (const href of info.links) {
    const a = document.createElement("a");
    a.href = href; a.target = "_blank"; a.textContent = href.replace("/run/", "");
    $("links").appendChild(a);
  }
  $("max-tokens").max = info.limits.max_tokens;
  setMode(info.mode || "chat");
  fillSelect($("layer"), c.n_layer);
  fillSelect($("head"), c.n_head);
}

function fillSelect(sel, n) {
  sel.innerHTML = "";
  for (let i = 0; i < n; i++) {
    const o = document.createElement("option");
    o.value = i; o.textContent = i;
    sel.appendChild(o);
  }
}

// ---------- tabs ----------
for (const t of document.querySelectorAll(".tab")) {
  t.addEventListener("click", () => {
    for (const u of document.querySelectorAll(".tab")) u.classList.toggle("active", u === t);
    for (const v of document.querySelectorAll(".view")) v.classList.toggle("hidden", v.id !== "view-" + t.dataset.view);
    if (t.dataset.view === "inspect" && !state.inspect) runInspect();
    if (t.dataset.view === "disambiguate" && !state.pairs) loadPairs();
  });
}

// ---------- chat or plain completion ----------
// The run's config decides (chat for chat-trained runs, completion for base models); the user may switch.
function setMode(mode) {
  $("mode").value = mode;
  $("prompt").placeholder = mode === "chat"
    ? "Ask something… (Enter sends, Shift+Enter: new line)"
    : "Text for the model to continue (base model: no chat template; Enter sends)";
  $("send").textContent = mode === "chat" ? "Send" : "Complete";
}
$("mode").addEventListener("change", () => setMode($("mode").value));

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  const r = document.createElement("span");
  r.className = "role"; r.textContent = role;
  div.appendChild(r);
  const body = document.createElement("span");
  body.className = "body";
  if (text) body.textContent = text;
  div.appendChild(body);
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}

// Renders streamed chunks; <think>…</think> opens a collapsible box that closes when thinking ends.
class AssistantView {
  constructor(div) {
    this.div = div; this.target = div.querySelector(".body"); this.main = this.target;
    this.text = ""; this.colour = $("colour").checked;
  }
  add(text, logprob) {
    this.text += text;
    const prob = logprob === undefined ? null : Math.exp(logprob);
    for (const part of text.split(/(<\/?think>|<\/?answer>)/)) {
      if (!part) continue;
      if (part === "<think>") {
        const d = document.createElement("details");
        d.className = "think"; d.open = true;
        const s = document.createElement("summary");
        s.textContent = "thinking…";
        d.appendChild(s);
        const body = document.createElement("div");
        d.appendChild(body);
        this.main.appendChild(d);
        this.details = d; this.target = body;
      } else if (part === "</think>") {
        if (this.details) { this.details.open = false; this.details.querySelector("summary").textContent = "thought (click to show)"; }
        this.target = this.main;
      } else if (part === "<answer>" || part === "</answer>") {
        const t = document.createElement("span");
        t.className = "tag"; t.textContent = part;
        this.target.appendChild(t);
      } else {
        const s = document.createElement("span");
        s.textContent = part;
        if (prob !== null) {
          s.title = `p = ${prob.toFixed(3)}`;
          if (this.colour) s.style.background = probColour(prob);
        }
        this.target.appendChild(s);
      }
    }
    $("messages").scrollTop = $("messages").scrollHeight;
  }
  finish(meta) {
    const m = document.createElement("span");
    m.className = "meta"; m.textContent = meta;
    this.div.appendChild(m);
    this.div.dataset.done = "1";
  }
}

// POST and read a server-sent-event stream; calls onEvent(obj) for each `data:` JSON line.
async function postStream(url, body, onEvent) {
  const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!resp.ok) {
    let msg = resp.statusText;
    try { msg = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
    throw new Error(`${resp.status}: ${msg}`);
  }
  const reader = resp.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let k;
    while ((k = buf.indexOf("\n\n")) >= 0) {
      const line = buf.slice(0, k).trim(); buf = buf.slice(k + 2);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") return;
      onEvent(JSON.parse(data));
    }
  }
}

async function send(ev) {
  ev.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || state.busy) return;
  state.busy = true; $("send").disabled = true;
  addMessage("user", text);
  state.history.push({ role: "user", content: text });
  $("prompt").value = "";
  const view = new AssistantView(addMessage("assistant", ""));
  const t0 = performance.now();
  let n = 0, finish = "";
  try {
    const sampling = { model: state.model, stream: true, temperature: parseFloat($("temperature").value),
                       max_tokens: parseInt($("max-tokens").value, 10) };
    const onChunk = (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      const c = chunk.choices[0];
      if (!c) return;
      if (c.logprobs && c.logprobs.content) {  // chat
        for (const t of c.logprobs.content) { n++; if (t.token) view.add(t.token, t.logprob); }
      } else if (c.logprobs && c.logprobs.tokens) {  // completion
        c.logprobs.tokens.forEach((t, i) => { n++; if (t) view.add(t, c.logprobs.token_logprobs[i]); });
      } else if (c.delta && c.delta.content) view.add(c.delta.content);
      if (c.finish_reason) finish = c.finish_reason;
    };
    if ($("mode").value === "chat") {
      await postStream("/v1/chat/completions", { ...sampling, messages: state.history, logprobs: true }, onChunk);
    } else {  // the text as the model continues it; earlier turns are not sent
      await postStream("/v1/completions", { ...sampling, prompt: text, logprobs: 0 }, onChunk);
    }
    const s = (performance.now() - t0) / 1000;
    view.finish(`${n} tokens · ${s.toFixed(1)} s · ${(n / s).toFixed(1)} tok/s · finish: ${finish}`);
    state.history.push({ role: "assistant", content: view.text });
  } catch (e) {
    view.finish("error: " + e.message);
    view.div.classList.add("error");
    state.history.pop();
  } finally {
    state.busy = false; $("send").disabled = false;
  }
}

$("chat-form").addEventListener("submit", send);
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("chat-form").requestSubmit(); }
});
$("clear").addEventListener("click", () => { state.history = []; $("messages").innerHTML = ""; });

// ---------- inspector ----------
async function runInspect(ev) {
  if (ev) ev.preventDefault();
  $("inspect-error").textContent = "";
  const text = $("inspect-text").value;
  const layer = parseInt($("layer").value || "0", 10);
  try {
    const resp = await fetch("/api/inspect", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text, top_k: 5, layers: [layer] }) });
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error.message);
    state.inspect = data; state.inspectText = text;
    drawTokens(); drawHeatmap(); drawLens();
  } catch (e) {
    $("inspect-error").textContent = e.message;
  }
}

function drawTokens() {
  const d = state.inspect, box = $("tokens");
  box.innerHTML = "";
  d.tokens.forEach((tok, t) => {
    const s = document.createElement("span");
    s.textContent = tok;
    const p = t > 0 ? d.target_prob[t - 1] : null;
    s.style.background = p === null ? "#eee" : probColour(p);
    s.title = p === null ? "first token" : `p(${JSON.stringify(tok)}) = ${p.toFixed(3)}`;
    s.addEventListener("mouseenter", () => {
      for (const o of box.children) o.classList.remove("sel");
      s.classList.add("sel");
      $("topk").textContent = `after ${JSON.stringify(tok)}: ` +
        d.top_k[t].map((c) => `${JSON.stringify(c.token)} ${c.prob.toFixed(3)}`).join(" · ");
    });
    box.appendChild(s);
  });
}

function drawHeatmap() {
  const d = state.inspect, head = parseInt($("head").value || "0", 10);
  const att = d.attention[0][head], T = d.tokens.length;
  const cell = Math.max(6, Math.min(28, Math.floor(640 / T)));
  const label = (s) => JSON.stringify(s).slice(1, -1).slice(0, 12);
  const cv = $("heatmap"), ctx = cv.getContext("2d");
  ctx.font = "11px monospace";
  const pad = Math.min(110, 8 + Math.max(...d.tokens.map((s) => ctx.measureText(label(s)).width)));
  cv.width = pad + T * cell + 4; cv.height = pad + T * cell + 4;
  ctx.font = "11px monospace";
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, cv.width, cv.height);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      const a = att[i][j];
      ctx.fillStyle = j > i ? "#f3f4f6" : `rgba(47, 111, 219, ${Math.sqrt(a)})`;  // sqrt: small weights stay visible
      ctx.fillRect(pad + j * cell, pad + i * cell, cell - 1, cell - 1);
    }
  }
  ctx.fillStyle = "#1d2330"; ctx.textBaseline = "middle";
  if (cell >= 8) {
    for (let i = 0; i < T; i++) {
      ctx.textAlign = "right";
      ctx.fillText(label(d.tokens[i]), pad - 4, pad + i * cell + cell / 2);
      ctx.save();
      ctx.translate(pad + i * cell + cell / 2, pad - 4);
      ctx.rotate(-Math.PI / 2); ctx.textAlign = "left";
      ctx.fillText(label(d.tokens[i]), 0, 0);
      ctx.restore();
    }
  }
  cv.dataset.layer = d.attention_layers[0]; cv.dataset.head = head; cv.dataset.drawn = "1";
  cv.onmousemove = (e) => {
    const r = cv.getBoundingClientRect();
    const j = Math.floor((e.clientX - r.left - pad) / cell), i = Math.floor((e.clientY - r.top - pad) / cell);
    const tip = $("heat-tip");
    if (i < 0 || j < 0 || i >= T || j >= T) { tip.style.display = "none"; return; }
    tip.style.display = "block";
    tip.style.left = (e.clientX - r.left + 12) + "px"; tip.style.top = (e.clientY - r.top + 12) + "px";
    tip.textContent = `${JSON.stringify(d.tokens[i])} → ${JSON.stringify(d.tokens[j])}: ${att[i][j].toFixed(3)}`;
  };
  cv.onmouseleave = () => { $("heat-tip").style.display = "none"; };
}

function drawLens() {
  const d = state.inspect, T = d.tokens.length;
  const table = document.createElement("table");
  const hr = document.createElement("tr");
  hr.appendChild(document.createElement("th"));
  for (const tok of d.tokens) {
    const th = document.createElement("th");
    th.textContent = tok; hr.appendChild(th);
  }
  table.appendChild(hr);
  // Last layer first, as the model's own prediction is what readers compare against.
  for (let l = d.lens_top_tokens.length - 1; l >= 0; l--) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = l === 0 ? "embed" : `layer ${l - 1}`;
    tr.appendChild(th);
    for (let t = 0; t < T; t++) {
      const td = document.createElement("td");
      td.textContent = d.lens_top_tokens[l][t];
      const p = t < T - 1 ? d.lens_target_probs[l][t] : null;
      td.title = `top ${d.lens_top_probs[l][t].toFixed(3)}` + (p === null ? "" : ` · p(next=${JSON.stringify(d.tokens[t + 1])}) = ${p.toFixed(3)}`);
      if (p !== null) td.style.background = probColour(p);
      tr.appendChild(td);
    }
    table.appendChild(tr);
  }
  $("lens").innerHTML = "";
  $("lens").appendChild(table);
}

$("inspect-form").addEventListener("submit", runInspect);
$("layer").addEventListener("change", () => runInspect());
$("head").addEventListener("change", () => { if (state.inspect) drawHeatmap(); });

// ---------- context: does attention disambiguate a word? ----------
async function loadPairs() {
  try {
    const data = await (await fetch("/api/disambiguate/pairs")).json();
    state.pairs = data.pairs;
    const sel = $("dis-pair");
    sel.innerHTML = "";
    data.pairs.forEach((p, i) => {
      const o = document.createElement("option");
      o.value = i; o.textContent = `${p.word} / ${p.control}: ${p.sentence_a} | ${p.sentence_b}`;
      sel.appendChild(o);
    });
    fillPair(0);
    await runDisambiguate();
  } catch (e) {
    $("dis-error").textContent = "could not load the shipped pairs: " + e.message;
  }
}

function fillPair(i) {
  const p = state.pairs[i];
  $("dis-a").value = p.sentence_a; $("dis-b").value = p.sentence_b;
  $("dis-word").value = p.word; $("dis-control").value = p.control;
}

async function runDisambiguate(ev) {
  if (ev) ev.preventDefault();
  $("dis-error").textContent = "";
  const body = { sentence_a: $("dis-a").value, sentence_b: $("dis-b").value,
                 word: $("dis-word").value, control: $("dis-control").value };
  try {
    const resp = await fetch("/api/disambiguate", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error.message);
    state.dis = data;
    drawMoves(); drawHeads();
  } catch (e) {
    $("dis-error").textContent = e.message;
  }
}

// A line chart per layer, as inline SVG: the word's move (red) and the control's (blue).
function drawMoves() {
  const d = state.dis, NS = "http://www.w3.org/2000/svg";
  const series = [["move_word", "#dc2626", `word "${d.word}"`], ["move_control", "#2563eb", `control "${d.control}"`]];
  const n = d.move_word.length, W = 560, H = 260, L = 50, R = 150, T = 12, B = 36;
  const top = Math.max(1e-6, ...d.move_word, ...d.move_control) * 1.1;
  const x = (i) => L + (n === 1 ? 0 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
  svg.appendChild(el("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: "#9ca3af" }));
  svg.appendChild(el("line", { x1: L, y1: T, x2: L, y2: y(0), stroke: "#9ca3af" }));
  for (const v of [0, top / 2, top]) {
    svg.appendChild(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", fill: "#6b7280" }, v.toPrecision(2)));
  }
  for (let i = 0; i < n; i++) {
    svg.appendChild(el("text", { x: x(i), y: H - B + 16, "text-anchor": "middle", fill: "#6b7280" },
      i === 0 ? "embed" : String(i - 1)));
  }
  svg.appendChild(el("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", fill: "#6b7280" },
    "after layer (embed: before layer 0)"));
  series.forEach(([key, colour, label], k) => {
    const pts = d[key].map((v, i) => `${x(i)},${y(v)}`).join(" ");
    svg.appendChild(el("polyline", { points: pts, fill: "none", stroke: colour, "stroke-width": 2, class: "series" }));
    d[key].forEach((v, i) => {
      const c = el("circle", { cx: x(i), cy: y(v), r: 3.5, fill: colour });
      c.appendChild(el("title", {}, `${label}, ${i === 0 ? "embedding" : "after layer " + (i - 1)}: ${v.toFixed(4)}`));
      svg.appendChild(c);
    });
    svg.appendChild(el("line", { x1: W - R + 12, y1: T + 10 + 18 * k, x2: W - R + 30, y2: T + 10 + 18 * k,
      stroke: colour, "stroke-width": 2 }));
    svg.appendChild(el("text", { x: W - R + 34, y: T + 14 + 18 * k }, label));
  });
  const box = $("dis-chart");
  box.innerHTML = "";
  box.appendChild(svg);
  box.dataset.drawn = "1"; box.dataset.layers = String(n);
}

function drawHeads() {
  const d = state.dis, box = $("dis-heads");
  box.innerHTML = "";
  const p = document.createElement("p");
  p.textContent = `cues: ${JSON.stringify(d.cues[0])} / ${JSON.stringify(d.cues[1])} · heads named L<layer>H<head>`;
  box.appendChild(p);
  const ol = document.createElement("ol");
  for (const h of d.top_heads) {
    const li = document.createElement("li");
    li.textContent = `${h.head}: ${h.extra_attention_to_cue >= 0 ? "+" : ""}${h.extra_attention_to_cue.toFixed(4)}`;
    ol.appendChild(li);
  }
  box.appendChild(ol);
}

$("dis-form").addEventListener("submit", runDisambiguate);
$("dis-pair").addEventListener("change", () => { fillPair(parseInt($("dis-pair").value, 10)); runDisambiguate(); });

loadInfo().catch((e) => { $("model-info").textContent = "could not load model info: " + e.message; });
