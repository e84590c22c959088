// The page's logic: load the artifact's manifest, tokenizer and ONNX model from the server, classify in the browser
// with onnxruntime-web (WASM, SIMD; threads when the page is cross-origin isolated), draw the scores as bars.
// window.edgebert is what the browser test drives: ready (a promise), ids(text), read(text) (logits, windows,
// truncated), logits(text), logitsOfIds(ids), classify(text). Long texts are read as the manifest's "long_text" says.
import * as ort from "/ort/ort.wasm.min.mjs";
import { aggregate, encodeWindows, tokenizerFromJson } from "/tokenizer.mjs";

ort.env.wasm.wasmPaths = "/ort/";
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

// An artifact file's bytes, refused unless their sha256 is the manifest's: what answers is what was exported.
async function verified(manifest, name) {
  const bytes = new Uint8Array(await (await fetch(`/artifact/${name}`)).arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== manifest.files[name]) throw new Error(`${name} does not match its checksum; re-copy the artifact`);
  return bytes;
}

async function load() {
  const manifest = await (await fetch("/artifact/edgebert.json")).json();
  if (manifest.backend !== "onnxruntime") throw new Error(`backend ${manifest.backend}: the page runs ONNX artifacts`);
  const tokenizerJson = JSON.parse(new TextDecoder().decode(await verified(manifest, "tokenizer.json")));
  const tokenizer = tokenizerFromJson(tokenizerJson, manifest.max_length);
  const model = await verified(manifest, manifest.model_files[0]);
  const session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
  return { manifest, tokenizer, session };
}

async function logitsOf({ session }, ids) {
  // one text per call, unpadded, as edgebert runs INT8 (activation scales depend on what shares a batch)
  const tensor = (values) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), [1, ids.length]);
  const feeds = { input_ids: tensor(ids), attention_mask: tensor(ids.map(() => 1)) };
  if (session.inputNames.includes("token_type_ids")) feeds.token_type_ids = tensor(ids.map(() => 0));
  const out = await session.run(feeds);
  return Array.from(out[session.outputNames[0]].data);
}

// a text's logits: one window (truncate), or its windows' aggregated (chunk), one window per call
async function read(model, text) {
  const policy = model.manifest.long_text;
  const { windows, truncated } = encodeWindows(model.tokenizer, text, policy);
  const rows = [];
  for (const ids of windows) rows.push(await logitsOf(model, ids));
  return { logits: aggregate(rows, policy?.aggregate), windows, truncated };
}

// the task's scores: softmax over the labels, or a sigmoid per label (multi-label, given at its threshold)
function scoresOf(manifest, logits) {
  if (manifest.task === "multi_label") return logits.map((x) => 1 / (1 + Math.exp(-x)));
  return softmax(logits);
}

function softmax(logits) {
  const max = Math.max(...logits);
  const exp = logits.map((x) => Math.exp(x - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp.map((x) => x / sum);
}

const loaded = load();
window.edgebert = {
  ready: loaded.then(() => ({ threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated })),
  ids: async (text) => (await loaded).tokenizer.encode(text),
  logitsOfIds: async (ids) => logitsOf(await loaded, ids),
  read: async (text) => read(await loaded, text),
  logits: async (text) => (await read(await loaded, text)).logits,
  classify: async (text) => {
    const model = await loaded;
    const started = performance.now();
    const { logits, windows, truncated } = await read(model, text);
    const scores = scoresOf(model.manifest, logits);
    const ms = performance.now() - started;
    const { labels, thresholds } = model.manifest;
    const best = scores.indexOf(Math.max(...scores));
    const given = thresholds ? labels.filter((_, i) => scores[i] >= thresholds[i]) : [labels[best]];
    const named = Object.fromEntries(labels.map((l, i) => [l, scores[i]]));
    return { label: labels[best], labels: given, scores: named, ms, windows: windows.length, truncated };
  },
};

function draw({ label, scores, ms, windows, truncated }) {
  const rows = Object.entries(scores).sort((a, b) => b[1] - a[1]);
  document.getElementById("result").innerHTML = rows
    .map(([name, p]) => `<div class="row${name === label ? " best" : ""}"><span class="name">${name}</span>` +
      `<span class="bar" style="width:${Math.round(p * 300)}px"></span><span>${p.toFixed(3)}</span></div>`)
    .join("");
  const read = windows > 1 ? `, ${windows} windows` : "";
  const cut = truncated ? " (text cut: longer than the model reads)" : "";
  document.getElementById("latency").textContent = `${ms.toFixed(1)} ms in this browser (tokenize + run${read})${cut}`;
}

const button = document.getElementById("go");
button.addEventListener("click", async () => draw(await window.edgebert.classify(document.getElementById("text").value)));
window.edgebert.ready.then(
  ({ threads }) => {
    document.getElementById("status").textContent = `model loaded (onnxruntime-web WASM, ${threads} thread(s))`;
    button.disabled = false;
  },
  (error) => { document.getElementById("status").textContent = `could not load the model: ${error.message}`; },
);
