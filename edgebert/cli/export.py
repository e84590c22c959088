"""`edgebert export`: checkpoint -> verified artifact. The flags map to export/recipes.export_config_from_flags."""

from __future__ import annotations

from pathlib import Path

from ..core.artifact import BACKENDS, OPENVINO_PRECISIONS
from ..core.errors import InputError
from ..export.config import CALIB_METHODS, TUNE_ENGINES, ExportConfig, TuneConfig
from ..modeling.vocabulary import TRIM_SCRIPTS
from .options import (
    add_columns,
    add_long_text,
    add_output,
    add_signing,
    check_signing,
    columns,
    config_option,
    long_text_from_args,
    sign_output,
)


def add_export(commands) -> None:
    p = commands.add_parser(
        "export",
        help="export a checkpoint to a verified artifact",
        description="Export a trained checkpoint to an ONNX (or OpenVINO) artifact, checked against torch.",
    )
    p.add_argument(
        "checkpoint",
        type=Path,
        help="checkpoint directory from `edgebert train`, or any Hugging Face classifier directory (save_pretrained)",
    )
    add_output(p, "artifact directory")
    _quantization_options(p)
    _accuracy_options(p)
    _tune_options(p)
    _graph_options(p)
    add_long_text(p, shape=True)
    p.add_argument("--no-optimize", action="store_true", help="skip ORT transformer fusions")
    p.add_argument("--allow-unfused", action="store_true", help="export even when attention fusion fails")
    add_signing(p)
    add_columns(p)
    p.set_defaults(run=run_export)


def _quantization_options(p) -> None:
    g = p.add_argument_group("quantization")
    g.add_argument(
        "--int8", action="store_true", help="dynamic INT8 quantization with the recipe for this CPU (or --target)"
    )
    g.add_argument("--recipe", help="named export recipe from export/ (e.g. avx2, avx512-vnni, arm64) or a .toml path")
    g.add_argument(
        "--target",
        help="CPU family to export for, instead of this machine's (avx512-vnni, avx-vnni, avx512, avx2, arm64)",
    )
    g.add_argument("--backend", choices=BACKENDS, help="runtime engine (default: the recipe's, else onnxruntime)")
    g.add_argument("--static", action="store_true", help="static INT8: calibrated activation scales (needs --calib)")
    g.add_argument("--calib", help="calibration texts for --static / OpenVINO INT8 (JSONL/CSV/TSV or plain lines)")
    g.add_argument("--calib-size", type=int, help="calibration texts to use (default: the recipe's, 200)")
    g.add_argument("--calib-method", choices=CALIB_METHODS, help="calibration (default: the recipe's, minmax)")


def _accuracy_options(p) -> None:
    g = p.add_argument_group("accuracy")
    g.add_argument("--eval", help="labelled data to measure accuracy and INT8 drift at export, and to select on")
    g.add_argument(
        "--test",
        metavar="DATA",
        help="held-out labelled data to report on after every choice was made on --eval (e.g. bbc_news:test)",
    )
    g.add_argument(
        "--max-drop",
        type=float,
        metavar="POINTS",
        help="accuracy budget in points on --eval: return the most sensitive layers to fp32 until the drop fits",
    )
    g.add_argument(
        "--agreement",
        metavar="DATA",
        help="with --max-drop: confirm the budget on these unlabelled texts (labels, if any, unread) by how many "
        "labels INT8 changes against fp32, instead of on --eval's bootstrap: a large pool resolves a fraction of a "
        "point, e.g. --agreement zh_reviews:train",
    )


def _tune_options(p) -> None:
    g = p.add_argument_group("--tune")
    g.add_argument(
        "--tune",
        action="store_true",
        help="build every INT8 candidate (engines x light last layer x --student), time each on this CPU and keep "
        "the fastest within --max-drop (default 0.5 pts vs the teacher's fp32) on --eval",
    )
    g.add_argument("--student", type=Path, action="append", default=[], help="with --tune: a distilled student too")
    config_option(
        g,
        "--tune-batch",
        TuneConfig,
        "call_size",
        "with --tune: texts per call when timing real texts; 1 chooses for an app that classifies one text at a time",
        type=int,
    )
    g.add_argument(
        "--tune-engines",
        default=",".join(TUNE_ENGINES),
        help="with --tune: INT8 engines to try (default: all; static and openvino need --calib)",
    )


def _graph_options(p) -> None:
    g = p.add_argument_group("graph")
    config_option(g, "--opset", ExportConfig, "opset", "ONNX opset", type=int)
    config_option(
        g,
        "--openvino-precision",
        ExportConfig,
        "openvino_precision",
        "OpenVINO artifacts: what the float layers compute in; 'bf16' (faster on CPUs with native bf16: AMX, "
        "avx512_bf16) is evaluated and recorded on this CPU, and the runtime follows the manifest",
        choices=list(OPENVINO_PRECISIONS),
    )
    g.add_argument(
        "--light-last-layer",
        action="store_true",
        help="[CLS] models: the last layer computes the query, attention output and feed-forward for [CLS] only",
    )
    g.add_argument(
        "--trim-vocab",
        metavar="DATA",
        action="append",
        default=[],
        help="keep only the vocabulary pieces DATA needs (repeatable; --eval and --calib texts are added), plus "
        "special tokens and single characters: e.g. --trim-vocab zh_reviews:train",
    )
    g.add_argument(
        "--trim-keep",
        metavar="SCRIPT",
        action="append",
        choices=TRIM_SCRIPTS,
        default=[],
        help="with --trim-vocab: also keep every piece of this script (cjk)",
    )


def run_export(args) -> int:
    check_signing(args)
    if args.tune:
        return run_tune(args)
    if args.student:
        raise InputError("--student is a --tune candidate; add --tune, or export the student on its own.")
    from ..export.pipeline import export_artifact
    from ..export.recipes import export_config_from_flags
    from ..export.summary import format_export_summary

    config = export_config_from_flags(
        int8=args.int8,
        recipe=args.recipe,
        target=args.target,
        static=args.static,
        backend=args.backend,
        calibration_size=args.calib_size,
        calibration_method=args.calib_method,
        max_drop=args.max_drop,
        opset=args.opset,
        optimize=False if args.no_optimize else None,
        require_attention_fusion=False if args.allow_unfused else None,
        light_last_layer=args.light_last_layer or None,
        trim_vocabulary=bool(args.trim_vocab) or None,
        trim_keep_scripts=tuple(args.trim_keep) or None,
        long_text=long_text_from_args(args),
        openvino_precision=args.openvino_precision,
    )
    report = export_artifact(
        args.checkpoint,
        args.out,
        config,
        **_data(args),
        force=args.force,
        progress=not args.quiet,
    )
    print(format_export_summary(report))
    sign_output(args)
    return 0


def run_tune(args) -> int:
    from ..export.tune import tune_artifact
    from ..export.tune_report import format_table

    chosen_elsewhere = {"--recipe": args.recipe, "--static": args.static, "--backend": args.backend}
    for flag, value in chosen_elsewhere.items():
        if value:
            raise InputError(f"--tune chooses the engine itself; drop {flag} (or drop --tune).")
    if args.no_optimize or args.allow_unfused or args.calib_size or args.calib_method:
        raise InputError("--tune builds each candidate with its recipe's settings; drop the other export flags.")
    config = TuneConfig(
        engines=tuple(e.strip() for e in args.tune_engines.split(",") if e.strip()),
        **({"call_size": args.call_size} if args.call_size is not None else {}),
        light_last_layer=True if args.light_last_layer else None,
        target=args.target,
        trim_vocabulary=bool(args.trim_vocab),
        trim_keep_scripts=tuple(args.trim_keep),
        **({"max_drop_points": args.max_drop} if args.max_drop is not None else {}),
        **({"long_text": long_text} if (long_text := long_text_from_args(args)) else {}),
    )
    tuning = tune_artifact(
        args.checkpoint,
        args.student,
        args.out,
        config,
        **_data(args),
        force=args.force,
        progress=not args.quiet,
    )
    print(format_table(tuning))
    sign_output(args)
    return 0


def _data(args) -> dict:
    """--eval, --calib, --trim-vocab, --test and --agreement as datasets, each read as the checkpoint's task reads data
    (the checkpoint's meta read once; labels of --calib, --trim-vocab and --agreement, if any, are not read)."""
    from ..data.load import load_dataset
    from ..modeling.checkpoint import read_checkpoint_meta
    from ..tasks import task_class

    task = None
    if args.eval or args.test or args.trim_vocab or args.agreement:
        task = task_class(read_checkpoint_meta(args.checkpoint).task)

    def unlabelled(source: str):
        return task.load_unlabelled(source, text_column=args.text_column)

    calibration = None
    if args.calib:
        calibration = load_dataset(args.calib, split="train", text_column=args.text_column, label_column=None)
    return {
        "eval_data": task.load_data(args.eval, "dev", **columns(args)) if args.eval else None,
        "calibration_data": calibration,
        "coverage_data": [unlabelled(source) for source in args.trim_vocab],
        "test_data": task.load_data(args.test, "test", **columns(args)) if args.test else None,
        "agreement_data": unlabelled(args.agreement) if args.agreement else None,
    }
