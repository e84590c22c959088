// The page's logic: load the artifact's manifest, tokenizer and ONNX model from the server, classify in the browser
// with onnxruntime-web (WASM, SIMD; threads when the page is cross-origin isolated), draw the scores as bars.
// window.edgebert is what the browser test drives: ready (a promise), ids(text), logits(text), logitsOfIds(ids),
// classify(text).
import * as ort from "/ort/ort.wasm.min.mjs";
import { tokenizerFromJson } from "/tokenizer.mjs";

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
  logits: async (text) => {
    const model = await loaded;
    return logitsOf(model, model.tokenizer.encode(text));
  },
  classify: async (text) => {
    const model = await loaded;
    const started = performance.now();
    const scores = softmax(await logitsOf(model, model.tokenizer.encode(text)));
    const ms = performance.now() - started;
    const labels = model.manifest.labels;
    const best = scores.indexOf(Math.max(...scores));
    return { label: labels[best], scores: Object.fromEntries(labels.map((l, i) => [l, scores[i]])), ms };
  },
};

function draw({ label, scores, ms }) {
  const rows = Object.entries(scores).sort((a, b) => b[1] - a[1]);
  document.getElementById("result").innerHTML = rows
    .map(([name, p]) => `<div class="row${name === label ? " best" : ""}"><span class="name">${name}</span>` +
      `<span class="bar" style="width:${Math.round(p * 300)}px"></span><span>${p.toFixed(3)}</span></div>`)
    .join("");
  document.getElementById("latency").textContent = `${ms.toFixed(1)} ms in this browser (tokenize + run)`;
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
