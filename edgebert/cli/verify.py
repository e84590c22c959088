"""`edgebert verify`: re-check an artifact on this machine: checksums, golden logits, and the conformance kit."""

from __future__ import annotations

import json
from pathlib import Path


def add_verify(commands) -> None:
    p = commands.add_parser(
        "verify",
        help="re-check an artifact: checksums, golden logits, token ids of the conformance kit",
        description="Load ARTIFACT as an app would (checksums, manifest, golden logits replayed on this CPU), then "
        "tokenize every string of its conformance kit and compare the ids. Exit 0 when all match, 1 otherwise.",
    )
    p.add_argument("artifact", type=Path, metavar="ARTIFACT")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--public-key",
        type=Path,
        metavar="KEY",
        help="also check the artifact's signature (model.sig) against this public key: unsigned, re-signed or "
        "changed artifacts fail",
    )
    p.set_defaults(run=run_verify)


def run_verify(args) -> int:
    from ..core.fleet import is_fleet, read_fleet

    if args.public_key is not None:
        from ..core.signature import verify_signature

        verify_signature(args.artifact, args.public_key)  # before any file is used: ArtifactError, exit 2
        if not args.json:
            print(f"signature        ok (signed by the holder of {args.public_key})")

    if not is_fleet(args.artifact):
        report = _verify_one(args.artifact, None)
        _print(report, args.json)
        return 0 if report["ok"] else 1
    # a fleet bundle: every variant that can run here is checked; the others are listed with the reason
    from ..core.artifact import verify_files
    from ..core.cpu import cpu_info
    from ..core.fleet import unsafe_reason, variant_manifest
    from ..runtime.fleet import installed_backends

    fleet, reports = read_fleet(args.artifact), []
    for name in fleet.variants:
        manifest = variant_manifest(args.artifact, fleet, name)
        reason = unsafe_reason(manifest, cpu_info(), installed_backends())
        if reason:  # cannot run here, but its bytes are still checked: a corrupt variant fails verify anywhere
            verify_files(args.artifact / name, manifest)
            reports.append({"variant": name, "ok": True, "skipped": f"checksums ok; not run here: {reason}"})
        else:
            reports.append(_verify_one(args.artifact, name))
    for report in reports:
        _print(report, args.json)
    return 0 if all(r["ok"] for r in reports) else 1


def _verify_one(path: Path, variant: str | None) -> dict:
    from ..runtime import front_door
    from ..runtime.conformance import check_conformance

    model = front_door(path).load(path, variant=variant)  # raises ArtifactError on any checksum or golden mismatch
    kit = check_conformance(path / variant if variant else path, model)
    golden = model.manifest.golden
    return {
        **({"variant": variant} if variant else {}),
        "ok": kit.ok,
        "files": len(model.manifest.files),
        "strings": kit.strings,
        "golden_texts": len(golden.texts) if golden else 0,
        "golden_atol": golden.atol if golden else None,
        "mismatches": kit.mismatches,
    }


def _print(report: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: v for k, v in report.items() if k not in ("files", "golden_atol")}))
        return
    if "variant" in report:
        print(f"variant {report['variant']}" + (f": skipped, {report['skipped']}" if report.get("skipped") else ""))
        if report.get("skipped"):
            return
    print(f"checksums        ok ({report['files']} files)")
    if report["golden_texts"]:
        print(f"golden logits    ok ({report['golden_texts']} texts within atol {report['golden_atol']})")
    else:
        print("golden logits    none recorded (the export opted out); checksums only")
    matched = report["strings"] - len(report["mismatches"])
    print(f"conformance kit  {matched}/{report['strings']} strings give the recorded ids")
    for row in report["mismatches"][:10]:
        print(
            f"  line {row['line']}: {row['text'][:60]!r}: expected {row['expected'][:12]}..., got {row['got'][:12]}..."
        )
