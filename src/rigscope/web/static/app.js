// rigscope's page: the same API the scripts call; its state lives in the URL query, so an
// answer is a link. Served by rigscope itself; no external scripts, fonts or styles.
"use strict";

const $ = (id) => document.getElementById(id);
const GIB = 2 ** 30;
let mode = "estimate";
let chips = {};  // Apple chip id -> memory options (GB)
let asked = 0;  // the latest question: an answer to an earlier one is not shown

function token() { return sessionStorage.getItem("rigscope-token") || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (resp.status === 401) {
    $("auth").hidden = false;
    throw new Error("this server needs a token: paste it above, then Show");
  }
  const type = resp.headers.get("content-type") || "";
  const body = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) throw new Error(body.error || String(body));
  return body;
}

function gib(bytes) { return (bytes / GIB).toFixed(2) + " GiB"; }
function num(v, digits = 1) {
  return v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US",
    { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
function cell(row, text) { const td = row.insertCell(); td.textContent = text; return td; }
function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

// --- the question: form <-> URL ------------------------------------------------------------
function hardware() {
  const gpu = $("gpu").value;
  if (gpu === "cpu") return { cpu: "" };
  if (chips[gpu]) return { gpu: gpu + ":" + $("apple-memory").value + "gb" };
  const n = parseInt($("count").value || "1", 10);
  return { gpu: (n > 1 ? n + "x" : "") + gpu };
}

function state() {
  const s = { mode, model: $("model").value.trim(), context: $("context").value.trim(),
              users: $("users").value.trim() };
  if ($("quant").value) s.quant = $("quant").value;
  if (mode === "pick") s.use = $("use").value;
  if (mode === "estimate" && $("depth").value.trim() !== "0") s.depth = $("depth").value.trim();
  return Object.assign(s, hardware());
}

function writeUrl() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state())) {
    if (v !== "" || k === "cpu") q.set(k, v);
  }
  history.replaceState(null, "", "?" + q.toString());
}

function readUrl() {
  const q = new URLSearchParams(location.search);
  if (q.get("model")) $("model").value = q.get("model");
  if (q.get("quant")) $("quant").value = q.get("quant");
  if (q.get("context")) $("context").value = q.get("context");
  if (q.get("users")) $("users").value = q.get("users");
  const gpu = q.get("gpu");
  if (gpu) {
    const [spec, mem] = gpu.split(":");
    const m = /^(\d+)\s*[x*](.+)$/i.exec(spec);
    $("count").value = m ? m[1] : "1";
    $("gpu").value = m ? m[2] : spec;
    showApple();
    if (mem) $("apple-memory").value = mem.replace(/gb$/i, "");
  } else if (q.has("cpu")) {
    $("gpu").value = "cpu";
  }
  if (q.get("mode")) mode = q.get("mode");
  if (q.get("use")) $("use").value = q.get("use");
  if (q.get("depth")) $("depth").value = q.get("depth");
  return q.has("model") || mode === "runs" || mode === "pick";
}

function showApple() {
  const opts = chips[$("gpu").value];
  $("apple-memory").hidden = !opts;
  $("count").hidden = !!opts || $("gpu").value === "cpu";
  if (opts) {
    const keep = $("apple-memory").value;
    $("apple-memory").replaceChildren(...opts.map((gb) => new Option(gb + " GB", gb)));
    $("apple-memory").value = opts.includes(Number(keep)) ? keep : opts[opts.length - 1];
  }
}

// --- answers ------------------------------------------------------------------------------
async function showEstimate() {
  const s = state();
  const q = new URLSearchParams({ model: s.model, context: s.context, batch: s.users });
  if (s.quant) q.set("quant", s.quant);
  if (s.depth) q.set("depth", s.depth);
  if (s.gpu) q.set("gpu", s.gpu); else q.set("cpu", "");
  const me = asked;
  const doc = await api("/api/estimate?" + q.toString());
  if (me !== asked) return;
  const m = doc.memory;
  const experts = m.fit && m.fit.cpu_expert_layers.length && !m.fit.cpu_layers.length;
  const verdict = m.fits ? ["fits", "fits"]
    : m.runs && experts ? ["spills", `experts of ${m.fit.cpu_expert_layers.length} layers ` +
                          "in system RAM"]
    : m.runs ? ["spills", "spills to system RAM"] : ["cannot", "cannot run"];
  $("verdict").className = verdict[0];
  $("verdict").textContent = `${doc.model.id} ${doc.quant} on ${doc.rig}: ${verdict[1]} ` +
    `(${gib(m.total_bytes)} in all; context ${doc.context.toLocaleString("en-US")}, ` +
    `${doc.batch} sequence${doc.batch > 1 ? "s" : ""})`;
  const body = $("memory").tBodies[0];
  body.replaceChildren();
  for (const d of [...m.devices, Object.assign({ id: "host RAM" }, m.host)]) {
    const row = body.insertRow();
    for (const v of [d.id, gib(d.used_bytes), gib(d.capacity_bytes), gib(d.weights_bytes),
                     gib(d.kv_bytes), gib(d.compute_bytes), String(d.layers)]) cell(row, v);
  }
  const sp = $("speed").tBodies[0];
  sp.replaceChildren();
  const s2 = doc.speed;
  if (s2) {
    const band = (b) => ` (±${Math.round(b * 100)}%)`;
    const rows = [
      ["decode, tok/s per sequence", num(s2.decode_tokens_per_s) + band(s2.decode_band),
       "decode"],
      ["all sequences, tok/s", num(s2.aggregate_tokens_per_s), "aggregate"],
      ["prefill, tok/s", num(s2.prefill_tokens_per_s, 0) + band(s2.prefill_band), "prefill"],
      ["time to first token, s", num(s2.ttft_s, 3), "ttft"],
      ["served through " + (s2.server || "-") + ", tok/s",
       num(s2.served_decode_tokens_per_s), "served"],
    ];
    for (const [what, value, key] of rows) {
      const row = sp.insertRow();
      cell(row, what);
      cell(row, value).dataset.figure = key;
    }
  }
  $("basis").replaceChildren(...doc.basis.map((b) => {
    const li = document.createElement("li"); li.textContent = b; return li;
  }));
  $("launch").textContent = doc.launch.command;
  status("");
}

async function showPlan() {
  const s = state();
  // a plan searches every rig (1-4 of each GPU, Apple machines, CPU boxes)
  const body = { models: [s.model], context: s.context, users: s.users };
  if (s.quant) body.quant = s.quant;
  const me = asked;
  const doc = await api("/api/plan", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (me !== asked) return;
  const tb = $("plan-table").tBodies[0];
  tb.replaceChildren();
  doc.options.slice(0, 25).forEach((o, i) => {
    const row = tb.insertRow();
    for (const v of [String(i + 1), o.rig + (o.pareto ? " *" : ""), o.quant, o.engine,
                     num(o.decode_tokens_per_s), num(o.aggregate_tokens_per_s, 0),
                     num(o.ttft_s, 2), o.price_usd === null ? "-" : "$" + num(o.price_usd, 0),
                     num(o.rent_usd_per_hour, 2), num(o.watts, 0)]) cell(row, v);
  });
  drawChart(doc.options.filter((o) => o.price_usd !== null && o.price_usd > 0));
  status(`${doc.options.length} rigs fit; ${doc.rejected.length} rejected ` +
         "(* on the price/speed Pareto front)");
}

function drawChart(options) {
  const svg = $("plan-chart");
  svg.replaceChildren();
  if (!options.length) return;
  const ns = "http://www.w3.org/2000/svg";
  const xs = options.map((o) => o.price_usd), ys = options.map((o) => o.aggregate_tokens_per_s);
  const lx = Math.log10(Math.min(...xs)), hx = Math.log10(Math.max(...xs)) + 1e-9;
  const hy = Math.max(...ys) * 1.05 || 1;
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text) el.textContent = text;
    svg.appendChild(el);
    return el;
  };
  add("text", { x: 320, y: 314, "text-anchor": "middle", "font-size": 11 },
      "price, USD (log scale)");
  add("text", { x: 40, y: 304, "font-size": 10 }, "$" + num(10 ** lx, 0));
  add("text", { x: 620, y: 304, "font-size": 10, "text-anchor": "end" },
      "$" + num(10 ** hx, 0));
  add("text", { x: 22, y: 24, "font-size": 10 }, num(hy, 0));
  add("line", { x1: 40, y1: 290, x2: 620, y2: 290, stroke: "#999" });
  add("line", { x1: 40, y1: 20, x2: 40, y2: 290, stroke: "#999" });
  add("text", { x: 12, y: 160, "font-size": 11, transform: "rotate(-90 12 160)",
                "text-anchor": "middle" }, "aggregate tok/s");
  for (const o of options) {
    const x = 40 + 580 * (Math.log10(o.price_usd) - lx) / (hx - lx || 1);
    const y = 290 - 270 * o.aggregate_tokens_per_s / hy;
    const dot = add("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: o.pareto ? 5 : 3,
                                fill: o.pareto ? "#d62728" : "#1f77b4" });
    const title = document.createElementNS(ns, "title");
    title.textContent = `${o.rig} ${o.quant}: $${num(o.price_usd, 0)}, ` +
                        `${num(o.aggregate_tokens_per_s)} tok/s`;
    dot.appendChild(title);
  }
}

async function showPick() {
  const s = state();
  const q = new URLSearchParams({ use: s.use, context: s.context, users: s.users });
  if (s.gpu) q.set("gpu", s.gpu); else q.set("cpu", "");
  const me = asked;
  const doc = await api("/api/pick?" + q.toString());
  if (me !== asked) return;
  const tb = $("pick-table").tBodies[0];
  tb.replaceChildren();
  doc.rows.slice(0, 25).forEach((r) => {
    const row = tb.insertRow();
    const e = r.evidence;
    for (const v of [String(r.rank), r.model, r.quant, r.fits, num(r.decode_tokens_per_s),
                     num(r.ttft_s, 2), e ? e.label : "no evidence", e ? String(e.score) : "-"]) {
      cell(row, v);
    }
    const code = document.createElement("code");
    code.textContent = r.launch;
    row.insertCell().appendChild(code);
  });
  const d = doc.evidence_dates;
  $("pick-note").textContent = `${doc.use} on ${doc.rig}: evidence dated ${d.oldest} to ` +
    `${d.newest} (Artificial Analysis, LiveBench, LMArena, Aider; model-card numbers ` +
    `marked); ${doc.skipped.length} models do not run here`;
  status("");
}

async function showRuns() {
  const me = asked;
  const doc = await api("/api/runs");
  if (me !== asked) return;
  const tb = $("runs-table").tBodies[0];
  tb.replaceChildren();
  for (const r of [...doc.runs].reverse()) {
    const row = tb.insertRow();
    for (const v of [r.label || r.run_id, r.started_at, r.model, String(r.requests ?? "-"),
                     r.status]) cell(row, v);
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = "report";
    open.addEventListener("click", async () => {
      const html = await api(`/api/runs/${encodeURIComponent(r.run_id)}/report`);
      window.open(URL.createObjectURL(new Blob([html], { type: "text/html" })), "_blank");
    });
    row.insertCell().appendChild(open);
  }
  status(`${doc.runs.length} stored runs`);
}

async function answer() {
  asked += 1;
  for (const m of ["estimate", "plan", "pick", "runs"]) {
    $(m + "-view").hidden = m !== mode;
    $("mode-" + m).classList.toggle("on", m === mode);
  }
  $("use-label").hidden = mode !== "pick";
  $("depth-label").hidden = mode !== "estimate";
  writeUrl();
  if (!["runs", "pick"].includes(mode) && !$("model").value.trim()) {
    status("name a model");
    return;
  }
  status("working…");
  try {
    await { estimate: showEstimate, plan: showPlan, pick: showPick, runs: showRuns }[mode]();
  } catch (e) {
    status(e.message, true);
  }
}

// --- start: fill the choices, then answer what the URL asks --------------------------------
async function start() {
  if ($("token").value) sessionStorage.setItem("rigscope-token", $("token").value);
  try {
    const [gpus, quants, models] = await Promise.all(
      [api("/api/gpus"), api("/api/quants"), api("/api/models")]);
    for (const g of gpus.gpus) {
      if (g.memory_options_gb) chips[g.id] = g.memory_options_gb;
      $("gpu").appendChild(new Option(g.name + (g.memory_bytes ? ` (${Math.round(
        g.memory_bytes / GIB)} GB)` : ""), g.id));
    }
    for (const q of quants.quants) $("quant").appendChild(new Option(q.name, q.name));
    $("model-list").replaceChildren(...models.models.map((m) => new Option(m.id)));
  } catch (e) {
    status(e.message, true);
    return false;
  }
  return true;
}

$("gpu").addEventListener("change", () => { showApple(); answer(); });
for (const id of ["quant", "apple-memory", "use"]) $(id).addEventListener("change", answer);
for (const id of ["context", "users", "count", "model", "depth"]) {
  $(id).addEventListener("change", answer);
}
$("question").addEventListener("submit", async (e) => {
  e.preventDefault();
  if ($("token").value) {
    sessionStorage.setItem("rigscope-token", $("token").value);
    if ($("gpu").options.length < 2) await start();
  }
  answer();
});
for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => { mode = b.dataset.mode; answer(); });
}

start().then((ok) => {
  const asked = readUrl();
  if (ok && asked) answer();
  else writeUrl();
});
