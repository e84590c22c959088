"""The `edgebert` command. The only place that turns exceptions into messages and exit codes.

Stage modules are imported inside each command, so `edgebert predict` never loads torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import EdgebertError, InputError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except EdgebertError as exc:
        print(f"edgebert: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgebert: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgebert", description="Fine-tune, export and run BERT text classifiers on CPUs."
    )
    parser.add_argument("--version", action="version", version=f"edgebert {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_adapt(commands)
    _add_train(commands)
    _add_export(commands)
    _add_predict(commands)
    _add_bench(commands)
    return parser


def _columns(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", default="text", help="column holding the text (JSONL/CSV/TSV)")
    parser.add_argument("--label-column", default="label", help="column holding the label")


# ---------------------------------------------------------------- adapt
def _add_adapt(commands) -> None:
    p = commands.add_parser(
        "adapt",
        help="continue pre-training an encoder on your texts (before train)",
        description="Domain-adaptive pre-training: masked-language modelling on the training texts (labels unused). "
        "Writes an encoder directory for `edgebert train --model DIR`. Most useful with --extend-vocab "
        "(or --model minilm-l6-zh), whose new characters start untrained.",
    )
    p.add_argument("--data", required=True, help="texts: JSONL/CSV/TSV file, or a bundled dataset's train split")
    p.add_argument(
        "--eval",
        help="texts to measure masked-token accuracy on (default: a bundled dataset's dev split, or 5%% of --data)",
    )
    p.add_argument("--model", default="minilm-l6", help="bundled encoder or local checkpoint dir (default: minilm-l6)")
    p.add_argument("--out", required=True, type=Path, help="encoder directory to write")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default: 2e-4)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--mask-probability", type=float, default=0.15)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--extend-vocab", action="store_true", help="add the texts' unknown characters to the vocabulary")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--text-column", default="text", help="column holding the text (JSONL/CSV/TSV)")
    p.set_defaults(run=_run_adapt)


def _run_adapt(args) -> int:
    from .adapt import adapt
    from .config import AdaptConfig
    from .data import BUNDLED, load_dataset

    config = AdaptConfig(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=args.max_length,
        mask_probability=args.mask_probability,
        precision=args.precision,
        extend_vocab=args.extend_vocab,
        seed=args.seed,
    )
    texts = load_dataset(args.data, split="train", text_column=args.text_column, label_column=None).texts
    name = args.data.partition(":")[0]
    if args.eval is not None:
        eval_texts = load_dataset(args.eval, split="dev", text_column=args.text_column, label_column=None).texts
    elif name in BUNDLED and not Path(args.data).exists():
        eval_texts = load_dataset(f"{name}:dev", split="dev", label_column=None).texts
    else:
        import random

        order = list(range(len(texts)))
        random.Random(args.seed).shuffle(order)
        held = set(order[: max(1, min(2000, len(texts) // 20))])
        eval_texts = [t for i, t in enumerate(texts) if i in held]
        texts = [t for i, t in enumerate(texts) if i not in held]
    report = adapt(texts, eval_texts, config, args.out, force=args.force, progress=not args.quiet, source=args.data)
    before, after = report["history"][0], report["history"][-1]
    print(
        f"saved {args.out}: dev masked-token accuracy {before['mlm_accuracy']:.4f} -> {after['mlm_accuracy']:.4f} "
        f"(loss {before['mlm_loss']:.3f} -> {after['mlm_loss']:.3f}); fine-tune it with "
        f"`edgebert train --model {args.out} ...`"
    )
    return 0


# ---------------------------------------------------------------- train
def _add_train(commands) -> None:
    p = commands.add_parser(
        "train",
        help="fine-tune a classifier",
        description="Fine-tune a BERT-family encoder for text (or text-pair) classification or token tagging.",
    )
    p.add_argument(
        "--data", required=True, help="training data: JSONL/CSV/TSV file, or a bundled dataset (bbc_news, zh_reviews)"
    )
    p.add_argument(
        "--eval",
        help="dev data for model selection (default: a bundled dataset's dev split, or a stratified 10%% of --data)",
    )
    p.add_argument(
        "--model",
        default="minilm-l6",
        help="bundled encoder (minilm-l6, minilm-l6-zh) or local checkpoint dir (default: minilm-l6)",
    )
    p.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    p.add_argument(
        "--task", choices=["sequence", "token"], default="sequence", help="one label per text, or per word (BIO tags)"
    )
    p.add_argument("--pooling", choices=["cls", "mean"], default="cls", help="sentence vector: [CLS] or mean of tokens")
    p.add_argument(
        "--max-length", default="128", help="truncate to N tokens, or 'auto' (99th percentile of the data; default 128)"
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=1, help="optimizer step every N batches (default: 1)")
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (default: 5e-5)")
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--patience", type=int, help="early stopping: stop after N epochs without a better dev score")
    p.add_argument(
        "--class-weights", choices=["none", "auto"], default="none", help="'auto' reweights classes for imbalanced data"
    )
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="'auto': bf16 autocast only on CPUs with native bf16 (default: auto)",
    )
    p.add_argument(
        "--extend-vocab", action="store_true", help="add the training texts' unknown characters to the vocabulary"
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same options")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _columns(p)
    p.add_argument("--text-pair-column", default="text_pair", help="second text of a pair, used when present")
    p.set_defaults(run=_run_train)


def _run_train(args) -> int:
    from .config import TrainConfig
    from .train import train

    config = TrainConfig(
        model=args.model,
        task=args.task,
        pooling=args.pooling,
        max_length=args.max_length,
        epochs=args.epochs,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio,
        patience=args.patience,
        class_weights=args.class_weights,
        precision=args.precision,
        extend_vocab=args.extend_vocab,
        seed=args.seed,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
    )
    train_data, eval_data = _training_data(args, config)
    best = train(train_data, eval_data, config, args.out, force=args.force, resume=args.resume, progress=not args.quiet)
    if config.task == "token":
        scores = ", ".join(f"entity {k} {best[k]:.4f}" for k in ("precision", "recall", "f1"))
    else:
        scores = f"accuracy {best['accuracy']:.4f}, macro-F1 {best['macro_f1']:.4f}"
    print(f"saved {args.out} (best epoch {best['epoch']}: dev {scores})")
    return 0


def _training_data(args, config):
    """(train, dev) datasets: a bundled dataset's splits, --data + --eval, or a stratified split of --data."""
    from .data import BUNDLED, load_dataset, stratified_split

    if config.task == "token":
        from .token_task import load_token_file

        if args.eval is None:
            raise InputError("--task token needs --eval FILE (JSONL with tokens and tags) for model selection.")
        return load_token_file(Path(args.data)), load_token_file(Path(args.eval))
    columns = {
        "text_column": args.text_column,
        "label_column": args.label_column,
        "text_pair_column": args.text_pair_column,
    }
    train_data = load_dataset(args.data, split="train", **columns)
    if args.eval is not None:
        return train_data, load_dataset(args.eval, split="dev", **columns)
    name = args.data.partition(":")[0]
    if name in BUNDLED and not Path(args.data).exists():
        return train_data, load_dataset(f"{name}:dev", split="dev", **columns)
    train_part, dev_part = stratified_split(train_data, 0.1, config.seed)
    if not args.quiet:
        print(
            f"no --eval given: holding out a stratified 10% of {args.data} ({len(dev_part)} texts) as dev",
            file=sys.stderr,
        )
    return train_part, dev_part


# ---------------------------------------------------------------- export
def _add_export(commands) -> None:
    p = commands.add_parser(
        "export",
        help="export a checkpoint to a verified artifact",
        description="Export a trained checkpoint to an ONNX artifact bundle, checked against torch.",
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint directory from `edgebert train`")
    p.add_argument("--out", required=True, type=Path, help="artifact directory to write")
    p.add_argument(
        "--int8", action="store_true", help="dynamic INT8 quantization with the recipe for this CPU (or --target)"
    )
    p.add_argument("--recipe", help="named export recipe from export/ (e.g. avx2, avx512-vnni, arm64) or a .toml path")
    p.add_argument(
        "--target",
        help="CPU family to export for, instead of this machine's (avx512-vnni, avx-vnni, avx512, avx2, arm64)",
    )
    p.add_argument(
        "--backend",
        choices=["onnxruntime", "openvino"],
        help="runtime engine: ONNX Runtime (default) or OpenVINO IR (default: the recipe's, else onnxruntime)",
    )
    p.add_argument("--static", action="store_true", help="static INT8: calibrated activation scales (needs --calib)")
    p.add_argument("--calib", help="calibration texts for --static / OpenVINO INT8 (JSONL/CSV/TSV or plain lines)")
    p.add_argument("--calib-size", type=int, help="calibration texts to use (default: the recipe's, 200)")
    p.add_argument("--calib-method", choices=["minmax", "entropy", "percentile"], help="calibration (default: minmax)")
    p.add_argument("--eval", help="labelled data to measure accuracy and INT8 drift at export")
    p.add_argument(
        "--max-drop",
        type=float,
        metavar="POINTS",
        help="accuracy budget in points on --eval: return the most sensitive layers to fp32 until the drop fits",
    )
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-optimize", action="store_true", help="skip ORT transformer fusions")
    p.add_argument("--allow-unfused", action="store_true", help="export even when attention fusion fails")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--quiet", action="store_true")
    _columns(p)
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from .config import ExportConfig, QuantizationConfig, recipe_backend
    from .data import load_dataset
    from .export import export_artifact

    if args.recipe and args.target:
        raise InputError("--recipe and --target both choose the quantization recipe; pass one.")
    quantization = None
    if args.recipe:
        quantization = QuantizationConfig.from_recipe(args.recipe)
    elif args.int8 or args.target or args.static:
        quantization = QuantizationConfig.for_cpu(args.target)
    if quantization:
        quantization = quantization.with_options(
            mode="static" if args.static else None,
            calibration_size=args.calib_size,
            calibration_method=args.calib_method,
        )
    elif args.calib_size or args.calib_method:
        raise InputError("--calib-size/--calib-method apply to INT8 exports: add --int8 --static.")
    config = ExportConfig(
        opset=args.opset,
        optimize=not args.no_optimize,
        require_attention_fusion=not args.allow_unfused,
        quantization=quantization,
        backend=args.backend or (recipe_backend(args.recipe) if args.recipe else "onnxruntime"),
        max_drop_points=args.max_drop,
    )
    from .checkpoint import read_checkpoint_meta

    token_task = read_checkpoint_meta(args.checkpoint).task == "token"
    eval_data = None
    if args.eval and token_task:
        from .token_task import load_token_file

        eval_data = load_token_file(Path(args.eval))
    elif args.eval:
        eval_data = load_dataset(args.eval, split="dev", text_column=args.text_column, label_column=args.label_column)
    calibration = None
    if args.calib:
        if token_task:
            raise InputError("Static INT8 calibration is not supported for token classification yet; use --int8.")
        calibration = load_dataset(args.calib, split="train", text_column=args.text_column, label_column=None)
    report = export_artifact(
        args.checkpoint,
        args.out,
        config,
        eval_data=eval_data,
        calibration_data=calibration,
        force=args.force,
        progress=not args.quiet,
    )
    print(format_export_summary(report))
    return 0


def format_export_summary(report) -> str:
    m = report.manifest
    q = m.quantization
    rows = [
        ("artifact", str(report.out)),
        ("backend", m.backend),
        ("precision", m.precision + (f" ({q['mode']}, recipe {q['recipe'] or 'custom'})" if q else "")),
        ("model size", f"{report.size_bytes / 1e6:.1f} MB"),
        ("fusions", ", ".join(f"{k} {v}" for k, v in m.optimization.get("fusions", {}).items()) or "none"),
        ("parity vs torch", f"max |Δlogit| {report.parity['max_abs_logit_diff']:.2e} on {report.parity['n']} texts"),
    ]
    if m.evaluation and m.task == "token-classification":
        e = m.evaluation
        if "reference_f1" in e:
            rows.append(("entity F1 fp32 / int8", f"{e['reference_f1']:.4f} / {e['candidate_f1']:.4f}"))
            rows.append(("int8 drift", f"entity F1 drop {e['f1_drop_points']:.2f} pts"))
        else:
            rows.append(("entity P / R / F1", "{precision:.4f} / {recall:.4f} / {f1:.4f}".format(**e["metrics"])))
    elif m.evaluation:
        e = m.evaluation
        if m.precision == "int8":
            rows += [
                ("fp32 accuracy / F1", f"{e['reference_accuracy']:.4f} / {e['reference_macro_f1']:.4f}"),
                ("int8 accuracy / F1", f"{e['candidate_accuracy']:.4f} / {e['candidate_macro_f1']:.4f}"),
                (
                    "int8 drift",
                    f"accuracy drop {e['accuracy_drop_points']:.2f} pts, agreement {e['agreement']:.2%}, "
                    f"{e['flips']} flips, max |Δlogit| {e['max_abs_logit_diff']:.3f}",
                ),
            ]
        else:
            rows.append(("accuracy / F1", f"{e['candidate_accuracy']:.4f} / {e['candidate_macro_f1']:.4f}"))
    if report.budget is not None:
        b = report.budget
        kept = ", ".join(b.fp32_units) or "none"
        rows.append(
            ("accuracy budget", f"drop {b.drop_points:.2f} ≤ {b.max_drop_points} pts; layers kept fp32: {kept}")
        )
        if b.latency_cost:
            c = b.latency_cost
            cost = f"{c['shape']} p50 {c['final_p50_ms']:.1f} ms vs {c['all_int8_p50_ms']:.1f} ms all-INT8 ({c['ratio']:.2f}x)"
            rows.append(("budget latency cost", cost))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


# ---------------------------------------------------------------- predict
def _add_predict(commands) -> None:
    p = commands.add_parser(
        "predict",
        help="classify texts with an artifact (no torch needed)",
        description="Classify texts with an exported artifact. Reads stdin (one text per line) when no TEXT or --file is given.",
    )
    p.add_argument("artifact", type=Path)
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", help="JSONL/CSV/TSV (uses --text-column) or plain text, one text per line")
    p.add_argument("--text-column", default="text")
    p.add_argument("--json", action="store_true", help="one JSON object per line, with every label's score")
    p.add_argument("--threads", type=int, help="inference threads (default: CPUs this process may use)")
    p.set_defaults(run=_run_predict)


def _run_predict(args) -> int:
    from .data import load_file
    from .runtime import Classifier

    texts = list(args.texts)
    if args.file:
        texts += load_file(Path(args.file), text_column=args.text_column, label_column=None).texts
    if not texts and not args.file:
        if sys.stdin.isatty():
            raise InputError("No texts given: pass TEXT arguments, --file FILE, or pipe lines on stdin.")
        texts = [line.rstrip("\n") for line in sys.stdin]
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1.")
    from .artifact import read_manifest

    if read_manifest(Path(args.artifact)).task == "token-classification":
        return _predict_tokens(args, texts)
    classifier = Classifier.load(args.artifact, threads=args.threads)
    for text, prediction in zip(texts, classifier.predict(texts), strict=True):
        if args.json:
            print(
                json.dumps(
                    {"text": text, "label": prediction.label, "score": prediction.score, "scores": prediction.scores},
                    ensure_ascii=False,
                )
            )
        else:
            preview = text.replace("\n", " ")
            print(f"{prediction.label}\t{prediction.score:.4f}\t{preview[:80]}")
    return 0


def _predict_tokens(args, texts: list[str]) -> int:
    """Token artifacts: entities per text (JSON: every word's label and offsets too)."""
    from dataclasses import asdict

    from .runtime import TokenClassifier

    tagger = TokenClassifier.load(args.artifact, threads=args.threads)
    for text in texts:
        entities = tagger.entities(text)
        if args.json:
            words = [asdict(w) for w in tagger.predict(text)]
            print(
                json.dumps(
                    {"text": text, "entities": [asdict(e) for e in entities], "words": words}, ensure_ascii=False
                )
            )
        else:
            found = "  ".join(f"{e.text}/{e.label}[{e.start}:{e.end}]" for e in entities) or "(no entities)"
            print(f"{found}\t{text.replace(chr(10), ' ')[:80]}")
    return 0


# ---------------------------------------------------------------- bench
def _add_bench(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="latency and accuracy drift, side by side",
        description="Benchmark artifacts on this CPU: interleaved latency per shape, real-text latency, cold start, "
        "memory, and accuracy drift against a reference. Needs torch only when --reference is a training checkpoint.",
    )
    p.add_argument("artifacts", nargs="*", type=Path, metavar="ARTIFACT")
    p.add_argument("--reference", type=Path, help="checkpoint or fp32 artifact to compare against (drift, speed-up)")
    p.add_argument("--data", help="labelled data for real-text latency and accuracy drift (file or bundled name)")
    p.add_argument("--shapes", default="1x16,1x128,32x128", help="BATCHxTOKENS list (default: 1x16,1x128,32x128)")
    p.add_argument("--threads", type=int, help="threads for every variant (default: CPUs this process may use)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default: 5)")
    p.add_argument("--seconds", type=float, default=1.0, help="time per variant per round (default: 1.0)")
    p.add_argument("--out", type=Path, help="write report.json, report.md, flips.jsonl and plots here")
    p.add_argument("--history", type=Path, help="append this run's summary to a JSONL history file")
    p.add_argument(
        "--compare",
        type=Path,
        metavar="HISTORY",
        help="compare the latest run in HISTORY to earlier ones; exit 1 on regression",
    )
    p.add_argument(
        "--max-slowdown", type=float, default=0.10, help="with --compare: allowed p50 increase (default: 0.10)"
    )
    p.add_argument(
        "--max-drop", type=float, default=0.5, help="with --compare: allowed accuracy drop in points (default: 0.5)"
    )
    p.add_argument("--no-cold-start", action="store_true", help="skip the fresh-process cold-start probe")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.add_argument("--quiet", action="store_true")
    _columns(p)
    p.set_defaults(run=_run_bench)


def _run_bench(args) -> int:
    from .bench import BenchConfig, parse_shapes, run_bench
    from .bench_report import append_history, compare_history, markdown, read_history, write_report

    if args.compare:
        table, regressions = compare_history(
            read_history(args.compare), max_slowdown=args.max_slowdown, max_accuracy_drop=args.max_drop
        )
        print(table)
        for line in regressions:
            print(f"REGRESSION: {line}", file=sys.stderr)
        return 1 if regressions else 0
    if not args.artifacts:
        raise InputError("Name at least one ARTIFACT to benchmark (or pass --compare HISTORY).")
    if args.out:
        from .artifact import check_writable

        check_writable(args.out, args.force)
    if args.rounds < 1 or args.seconds <= 0:
        raise InputError("--rounds must be at least 1 and --seconds positive.")
    data = None
    if args.data:
        from .data import load_dataset

        data = load_dataset(args.data, split="dev", text_column=args.text_column, label_column=args.label_column)
    config = BenchConfig(
        shapes=parse_shapes(args.shapes),
        threads=args.threads,
        rounds=args.rounds,
        seconds_per_round=args.seconds,
        cold_start=not args.no_cold_start,
    )
    report = run_bench(args.artifacts, config, reference=args.reference, data=data, progress=not args.quiet)
    print(markdown(report))
    if args.out:
        write_report(report, args.out, force=args.force)
        print(f"report written to {args.out}")
    if args.history:
        append_history(args.history, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
