// Run an artifact's conformance kit through this Node port: the ids of every string in conformance.jsonl, and
// the golden logits in edgebert.json. Prints a JSON report; exit code 0 when everything matches.
//
//   node conformance.mjs runs/bbc/int8

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EdgebertClassifier } from "./edgebert.mjs";
import { encodeWindows } from "./tokenizer.mjs";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node conformance.mjs ARTIFACT");
  process.exit(2);
}
const clf = await EdgebertClassifier.load(dir);
const rows = readFileSync(join(dir, "conformance.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
const mismatches = [];
rows.forEach((row, i) => {
  const got = clf.tokenizer.encode(row.text);
  if (got.length !== row.ids.length || got.some((id, k) => id !== row.ids[k])) {
    mismatches.push({ line: i + 1, text: row.text, expected: row.ids, got });
  }
});

// long texts (artifacts that chunk): the windows each is cut into, and its logits within the golden tolerance
let windowTexts = 0;
let windowMismatches = 0;
let windowMaxDiff = 0;
for (const row of rows.filter((r) => r.windows)) {
  windowTexts += 1;
  const { windows, truncated } = encodeWindows(clf.tokenizer, row.text, clf.manifest.long_text);
  if (JSON.stringify(windows) !== JSON.stringify(row.windows) || truncated !== row.truncated) windowMismatches += 1;
  if (row.logits) {
    const { logits } = await clf.textLogits(row.text);
    logits.forEach((x, k) => (windowMaxDiff = Math.max(windowMaxDiff, Math.abs(x - row.logits[k]))));
  }
}

const golden = clf.manifest.golden;
let goldenMaxDiff = 0;
let goldenIdsMatch = true;
if (golden && clf.manifest.task === "sequence") {
  for (const [i, text] of golden.texts.entries()) {
    const ids = clf.tokenizer.encode(text);
    goldenIdsMatch &&= ids.length === golden.input_ids[i].length && ids.every((id, k) => id === golden.input_ids[i][k]);
    const logits = await clf.classifyIds(golden.input_ids[i]); // the recorded ids: logits checked on their own
    logits.forEach((x, k) => (goldenMaxDiff = Math.max(goldenMaxDiff, Math.abs(x - golden.logits[i][k]))));
  }
}
const ok =
  mismatches.length === 0 &&
  goldenIdsMatch &&
  goldenMaxDiff <= (golden?.atol ?? 0) &&
  windowMismatches === 0 &&
  windowMaxDiff <= (golden?.atol ?? 0);
console.log(
  JSON.stringify({
    ok,
    strings: rows.length,
    mismatches: mismatches.length,
    first_mismatches: mismatches.slice(0, 20),
    golden_texts: golden?.texts.length ?? 0,
    golden_ids_match: goldenIdsMatch,
    golden_max_abs_diff: goldenMaxDiff,
    golden_atol: golden?.atol,
    window_texts: windowTexts,
    window_mismatches: windowMismatches,
    window_max_abs_diff: windowMaxDiff,
  }),
);
process.exit(ok ? 0 : 1);
