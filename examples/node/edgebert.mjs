// Classify with an edgebert artifact from Node.js. Needs only onnxruntime-node and the artifact directory.
//
//   import { EdgebertClassifier } from "./edgebert.mjs";
//   const clf = await EdgebertClassifier.load("runs/bbc/int8");
//   await clf.classify("Stocks fell sharply");  // { label: "business", score: 0.93, scores: {...}, windows: 1, truncated: false }
//   await clf.classifyIds([101, 2023, 102]);     // ids-in/logits-out, for apps with their own tokenizer
//
// The contract (README "Port the runtime to another language"): inputs input_ids, attention_mask, token_type_ids,
// int64 [batch, tokens]; ids = [CLS] pieces [SEP] cut to max_length; no padding needed for one text per call;
// output logits float32 [batch, labels] in the order of edgebert.json "labels". A longer text is read as the
// manifest's "long_text" says: truncated, or in windows whose logits are averaged (encodeWindows in tokenizer.mjs).

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import { aggregate, encodeWindows, tokenizerFromJson } from "./tokenizer.mjs";

export class EdgebertClassifier {
  static async load(dir, { threads = 1, verify = true } = {}) {
    const manifest = JSON.parse(readFileSync(join(dir, "edgebert.json"), "utf8"));
    if (manifest.format_version !== 2) throw new Error(`${dir}: format_version ${manifest.format_version}; this reads 2`);
    if (manifest.backend !== "onnxruntime") throw new Error(`${dir}: backend ${manifest.backend}; this reads onnxruntime`);
    if (verify) {
      for (const [name, sha] of Object.entries(manifest.files)) {
        if (name.includes("/") || name.includes("\\") || name.startsWith(".")) throw new Error(`bad file name ${name}`);
        const actual = createHash("sha256").update(readFileSync(join(dir, name))).digest("hex");
        if (actual !== sha) throw new Error(`${join(dir, name)} does not match its checksum; re-copy the artifact`);
      }
    }
    const session = await ort.InferenceSession.create(join(dir, manifest.model_files[0]), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      extra: { session: { intra_op: { allow_spinning: "0" } } }, // no busy-waiting between calls
    });
    const tokenizer = tokenizerFromJson(JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")), manifest.max_length);
    return new EdgebertClassifier(manifest, session, tokenizer);
  }

  constructor(manifest, session, tokenizer) {
    this.manifest = manifest;
    this.labels = manifest.labels;
    this.session = session;
    this.tokenizer = tokenizer;
  }

  /** Logits (Float32Array, one per label) for token ids; one text per call, as edgebert's runtime runs INT8. */
  async classifyIds(ids) {
    const n = ids.length;
    const tensor = (values) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), [1, n]);
    const feeds = { input_ids: tensor(ids), attention_mask: tensor(ids.map(() => 1)) };
    if (this.session.inputNames.includes("token_type_ids")) feeds.token_type_ids = tensor(ids.map(() => 0));
    const out = await this.session.run(feeds);
    const logits = out[this.session.outputNames[0]].data;
    if (logits.length !== this.labels.length || !logits.every(Number.isFinite)) {
      throw new Error("the model gave non-finite logits or the wrong number of them; re-export the artifact");
    }
    return logits;
  }

  /** A text's logits, read as the artifact says (longText: "truncate" or "chunk" overrides the policy). */
  async textLogits(text, { longText } = {}) {
    const policy = { ...(this.manifest.long_text ?? { policy: "truncate" }), ...(longText ? { policy: longText } : {}) };
    const { windows, truncated } = encodeWindows(this.tokenizer, text, policy);
    const rows = [];
    for (const ids of windows) rows.push(await this.classifyIds(ids)); // one window per call, as INT8 runs
    return { logits: aggregate(rows, policy.aggregate), windows: windows.length, truncated };
  }

  async classify(text, options = {}) {
    const { logits, windows, truncated } = await this.textLogits(text, options);
    const multiLabel = this.manifest.task === "multi_label";
    const probabilities = multiLabel ? logits.map((x) => 1 / (1 + Math.exp(-x))) : softmax(logits);
    const scores = Object.fromEntries(this.labels.map((label, i) => [label, probabilities[i]]));
    const best = probabilities.indexOf(Math.max(...probabilities));
    const given = multiLabel
      ? this.labels.filter((_, i) => probabilities[i] >= this.manifest.thresholds[i])
      : [this.labels[best]];
    return { label: this.labels[best], score: probabilities[best], scores, labels: given, windows, truncated };
  }
}

function softmax(logits) {
  const max = Math.max(...logits);
  const exp = logits.map((x) => Math.exp(x - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp.map((x) => x / sum);
}

// `node edgebert.mjs ARTIFACT "some text" ...` prints one JSON line per text.
if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, ...texts] = process.argv.slice(2);
  const clf = await EdgebertClassifier.load(dir);
  for (const text of texts) console.log(JSON.stringify({ text, ...(await clf.classify(text)) }));
}
