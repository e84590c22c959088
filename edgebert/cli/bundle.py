"""`edgebert bundle`: several artifacts of one model -> one fleet bundle the runtime picks from per CPU."""

from __future__ import annotations

from pathlib import Path

from .options import add_output, add_signing, check_signing, sign_output


def add_bundle(commands) -> None:
    p = commands.add_parser(
        "bundle",
        help="combine artifacts of one model into a fleet bundle chosen per CPU at load",
        description="Copy ARTIFACT directories (variants of one model, e.g. `--target avx2`, `--recipe avx512-vnni` "
        "and `--backend openvino --int8` exports) into one bundle. At load the runtime takes the best variant that "
        "is safe on the CPU it runs on (Classifier.load(bundle); `probe=True` times them instead).",
    )
    p.add_argument("artifacts", type=Path, nargs="+", metavar="ARTIFACT", help="artifact directories (2 or more)")
    add_output(p, "bundle directory")
    add_signing(p)
    p.set_defaults(run=run_bundle)


def run_bundle(args) -> int:
    from ..export.fleet import build_fleet

    check_signing(args)
    fleet = build_fleet(args.artifacts, args.out, force=args.force)
    print(f"bundle     {args.out} ({len(fleet.variants)} variants)")
    for isa, order in fleet.preference.items():
        print(f"  {isa:<12} {' > '.join(order)}")
    sign_output(args)
    return 0
