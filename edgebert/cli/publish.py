"""`edgebert publish`: an artifact in the layout Hugging Face Hub readers expect (transformers.js, optimum-intel)."""

from __future__ import annotations

from pathlib import Path

from .options import add_output


def add_publish(commands) -> None:
    p = commands.add_parser(
        "publish",
        help="lay an artifact out for the Hugging Face Hub's readers (transformers.js, optimum-intel)",
        description="Copy ARTIFACT into a folder that edgebert, transformers.js (default options) and optimum-intel "
        "all open: onnx/model.onnx (and onnx/model_quantized.onnx for INT8), or openvino_model.xml/.bin, beside the "
        "artifact's own files and its README.md model card. Upload the folder as a model repository.",
    )
    p.add_argument("artifact", type=Path, metavar="ARTIFACT")
    add_output(p, "published folder")
    p.set_defaults(run=run_publish)


def run_publish(args) -> int:
    from ..export.publish import publish

    added = publish(args.artifact, args.out, force=args.force)
    print(f"published  {args.out} (added {', '.join(added)})")
    return 0
