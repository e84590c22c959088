"""MSRA Chinese NER: the INT8 artifact against a character CRF baseline and against its own torch checkpoint.

    python benchmarks/ner_msra.py --artifact runs/ner-int8 --checkpoint runs/ner \
        --train msra_ner:train:12000 --out benchmarks/results/msra_ner-epyc-avx2

- CRF (sklearn-crfsuite, L-BFGS, c1 = c2 = 0.1): character features in a +-2 window, bigrams, character
  classes; trained on the same training sentences as the model, scored on msra_ner:test.
- Entity-level precision/recall/F1 per type and overall, on test, for both; the F1 difference with a 95% paired
  bootstrap interval over test sentences (is the margin more than noise?).
- The torch fp32 checkpoint on the same test sentences: what INT8 cost in entity F1 points. Tags are decoded as the
  runtime decodes them (the best valid BIO sequence, edgebert.core.bio.decode_bio) for every model.
- Speed, interleaved: sentences/s over the first 1,000 test sentences at their real lengths (INT8 as the
  runtime runs it, one sentence per call; torch batched by 32), and p50 at 1x64.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edgebert.bench.run import fingerprint
from edgebert.core.artifact import TOKEN
from edgebert.core.metrics import entity_metrics
from edgebert.core.timing import measure_interleaved, median_ms, synthetic_batch
from edgebert.data.load import load_token_data
from edgebert.data.text import LabelSet
from edgebert.runtime import TokenClassifier
from edgebert.tasks import task_for

BOOTSTRAP = 2000
PUNCT = set("，。、；：？！“”‘’（）《》「」—…,.;:?!()")


def char_features(chars: list[str], i: int) -> dict[str, object]:
    def cls(c: str) -> str:
        return "digit" if c.isdigit() else "latin" if c.isascii() and c.isalpha() else "punct" if c in PUNCT else "cjk"

    features: dict[str, object] = {"bias": 1.0, "c": chars[i], "cls": cls(chars[i])}
    for offset in (-2, -1, 1, 2):
        j = i + offset
        c = chars[j] if 0 <= j < len(chars) else ("<s>" if j < 0 else "</s>")
        features[f"c{offset:+d}"] = c
        features[f"cls{offset:+d}"] = cls(c) if len(c) == 1 else c
    features["b-1"] = (chars[i - 1] if i else "<s>") + chars[i]
    features["b+1"] = chars[i] + (chars[i + 1] if i + 1 < len(chars) else "</s>")
    return features


def train_crf(train):
    import sklearn_crfsuite

    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=100, all_possible_transitions=True)
    X = [[char_features(words, i) for i in range(len(words))] for words in train.words]
    crf.fit(X, train.tags)
    return crf


def paired_bootstrap(truth, pred_a, pred_b, n: int = BOOTSTRAP, seed: int = 0) -> dict[str, float]:
    """F1(a) - F1(b) with a 95% interval, resampling sentences."""
    from edgebert.core.bio import bio_entities

    def counts(pred):
        rows = []
        for t, p in zip(truth, pred, strict=True):
            gold, found = set(bio_entities(t)), set(bio_entities(p))
            rows.append((len(gold & found), len(found), len(gold)))
        return np.asarray(rows, dtype=np.float64)

    a, b = counts(pred_a), counts(pred_b)

    def f1(c):
        tp, predicted, actual = c.sum(axis=-2).T
        return 2 * tp / np.maximum(predicted + actual, 1)

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(truth), size=(n, len(truth)))
    diffs = f1(a[idx]) - f1(b[idx])
    return {
        "difference_points": float(100 * (f1(a[None])[0] - f1(b[None])[0])),
        "ci95_low_points": float(100 * np.percentile(diffs, 2.5)),
        "ci95_high_points": float(100 * np.percentile(diffs, 97.5)),
    }


def speed(artifact: Path, checkpoint: Path | None, test, threads: int) -> dict:
    ner = TokenClassifier.load(artifact, threads=threads)
    task = task_for(TOKEN, LabelSet(tuple(ner.labels)))
    encoded = task.encode(ner.encoder, test)
    runners = {"int8": lambda: task.tags(ner.backend, ner.encoder, encoded, 32)}
    shape = synthetic_batch(1, 64, vocab_size=1000)
    shape_runners = {"int8": lambda: ner.backend.run(*shape)}
    if checkpoint is not None:
        import torch

        from edgebert.modeling.models import TorchBackend, load_checkpoint_model

        torch.set_num_threads(threads)
        torch_backend = TorchBackend(load_checkpoint_model(checkpoint))
        runners["torch_fp32"] = lambda: task.tags(torch_backend, ner.encoder, encoded, 32)
        shape_runners["torch_fp32"] = lambda: torch_backend.run(*shape)
    passes = measure_interleaved(runners, rounds=2, seconds_per_round=0.0, warmup=0)
    p50 = measure_interleaved(shape_runners, rounds=5, seconds_per_round=1.0)
    result = {
        "sentences": len(test),
        "sentences_per_s": {k: len(test) / (median_ms(v) / 1000) for k, v in passes.items()},
        "p50_ms_1x64": {k: median_ms(v) for k, v in p50.items()},
    }
    if checkpoint is not None:
        result["int8_vs_torch_sentences_per_s"] = (
            result["sentences_per_s"]["int8"] / result["sentences_per_s"]["torch_fp32"]
        )
        result["int8_vs_torch_p50_1x64"] = result["p50_ms_1x64"]["int8"] / result["p50_ms_1x64"]["torch_fp32"]
    return result


def int8_drop(checkpoint: Path, ner, task, test, truth, int8_tags) -> dict:
    """The torch fp32 checkpoint on the same test sentences (read with its own tokenizer: the artifact's may be
    trimmed), and what INT8 cost in entity F1 points, with a paired-bootstrap interval."""
    from edgebert.modeling.models import TorchBackend, load_checkpoint_model
    from edgebert.runtime import TextEncoder

    torch_backend = TorchBackend(load_checkpoint_model(checkpoint))
    encoder = TextEncoder.from_file(checkpoint / "tokenizer.json", ner.encoder.max_length)
    fp32_truth, fp32_tags = task.tags(torch_backend, encoder, task.encode(encoder, test), 32)
    if fp32_truth != truth:
        raise SystemExit("the checkpoint's tokenizer scores different words than the artifact's; compare by hand")
    fp32 = entity_metrics(truth, fp32_tags)
    return {
        "torch_fp32": {"path": str(checkpoint), **fp32},
        "int8_drop_points": 100 * (fp32["f1"] - entity_metrics(truth, int8_tags)["f1"]),
        "int8_minus_fp32_f1": paired_bootstrap(truth, int8_tags, fp32_tags),
    }


def _first(data, n: int):
    return data.subset(range(min(n, len(data))), f"{data.source}[:{n}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, help="the torch checkpoint the artifact was exported from")
    parser.add_argument("--train", default="msra_ner:train", help="the model's training sentences (same for the CRF)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    train, test = load_token_data(args.train, "train"), load_token_data("msra_ner:test")
    ner = TokenClassifier.load(args.artifact, threads=args.threads)
    task = task_for(TOKEN, LabelSet(tuple(ner.labels)))
    truth, model_tags = task.tags(ner.backend, ner.encoder, task.encode(ner.encoder, test), 32)

    started = time.perf_counter()
    crf = train_crf(train)
    crf_seconds = time.perf_counter() - started
    crf_tags = crf.predict([[char_features(words, i) for i in range(len(words))] for words in test.words])
    crf_tags = [tags[: len(t)] for tags, t in zip(crf_tags, truth, strict=True)]  # the model labels <= max_length
    report = {
        "machine": fingerprint(args.threads),
        "train": train.source,
        "train_sentences": len(train),
        "test": test.source,
        "int8_artifact": {"path": str(args.artifact), **entity_metrics(truth, model_tags)},
        "crf": {"train_seconds": crf_seconds, **entity_metrics(truth, crf_tags)},
        "int8_minus_crf_f1": paired_bootstrap(truth, model_tags, crf_tags),
        **(int8_drop(args.checkpoint, ner, task, test, truth, model_tags) if args.checkpoint else {}),
        "speed": speed(args.artifact, args.checkpoint, _first(test, 1000), args.threads),
        "published_f1_standard_split": {"BiLSTM-CRF": "88-91", "Lattice-LSTM": 93.2, "BERT-base-chinese": "94.5-95.5"},
    }
    manifest = json.loads((args.artifact / "edgebert.json").read_text())
    report["export_evaluation"] = manifest.get("evaluation")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    m, c, d = report["int8_artifact"], report["crf"], report["int8_minus_crf_f1"]
    print(f"test entity F1: INT8 {m['f1']:.4f} (P {m['precision']:.4f} R {m['recall']:.4f}), CRF {c['f1']:.4f}")
    print(f"INT8 - CRF: {d['difference_points']:+.2f} pts [{d['ci95_low_points']:+.2f}, {d['ci95_high_points']:+.2f}]")
    if "int8_drop_points" in report:
        print(f"torch fp32 {report['torch_fp32']['f1']:.4f}; INT8 drop {report['int8_drop_points']:.2f} pts")
    print(json.dumps(report["speed"], indent=1))


if __name__ == "__main__":
    main()
