// Classify texts with an edgebert artifact through transformers.js, from local files only.
//
//   node classify.mjs ARTIFACT_DIR "a text" ["another text" ...]   -> one JSON line: every label's score per text
//
// An edgebert artifact carries config.json (labels), tokenizer.json and tokenizer_config.json beside model.onnx, so
// transformers.js opens it as a local model: the ONNX file is at the directory's top (subfolder ''), named model.onnx
// (model_file_name 'model', dtype 'fp32': INT8 artifacts keep their quantization inside that one file). A folder
// from `edgebert publish` has the Hub's layout (onnx/model.onnx) and opens with transformers.js's default options.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { env, pipeline } from '@huggingface/transformers';

const [artifact, ...texts] = process.argv.slice(2);
if (!artifact || texts.length === 0) {
  console.error('usage: node classify.mjs ARTIFACT_DIR TEXT [TEXT ...]');
  process.exit(2);
}
env.allowRemoteModels = false; // never the Hub
env.localModelPath = path.dirname(path.resolve(artifact));
const published = existsSync(path.join(artifact, 'onnx', 'model.onnx'));
const options = published
  ? { local_files_only: true } // the defaults: onnx/model.onnx
  : { local_files_only: true, subfolder: '', model_file_name: 'model', dtype: 'fp32', device: 'cpu' };
const classify = await pipeline('text-classification', path.basename(path.resolve(artifact)), options);
// one text per call, as edgebert runs dynamic INT8 (its activation scales depend on what shares a batch)
const results = [];
for (const text of texts) results.push(await classify(text, { top_k: null }));
console.log(JSON.stringify(results));
