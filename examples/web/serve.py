"""Serve the in-browser demo with an artifact, on loopback only (stdlib; nothing to install but the npm packages).

    python examples/web/serve.py ARTIFACT [--port 8000] [--port-file FILE]

then open http://127.0.0.1:8000/. Paths: / the page, /artifact/* the artifact's files (only those its manifest
lists, plus the manifest), /tokenizer.mjs the tokenizer shared with the Node example, /tokenizers.mjs the @huggingface/tokenizers library it
imports (the page's import map names it), /ort/* onnxruntime-web.
The page is cross-origin isolated (COOP/COEP headers), so onnxruntime-web may use WASM threads.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXED = {
    "/": HERE / "index.html",
    "/index.html": HERE / "index.html",
    "/app.mjs": HERE / "app.mjs",
    "/tokenizer.mjs": HERE.parent / "node" / "tokenizer.mjs",
    "/tokenizers.mjs": HERE / "node_modules" / "@huggingface" / "tokenizers" / "dist" / "tokenizers.min.mjs",
}
ORT = HERE / "node_modules" / "onnxruntime-web" / "dist"
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


def served_files(artifact: Path) -> set[str]:
    """The manifest and the files it lists, plain names that resolve inside the artifact only: a hostile manifest
    cannot point the server outside it. ValueError names what is wrong with a manifest that is not one."""
    try:
        manifest = json.loads((artifact / "edgebert.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(
            f"{artifact / 'edgebert.json'} cannot be read as JSON ({exc}); re-export the artifact"
        ) from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise ValueError(f"{artifact / 'edgebert.json'} has no files table; re-export the artifact")
    return {n for n in ("edgebert.json", *files) if (artifact / n).resolve().parent == artifact}


def handler_for(artifact: Path, port: int):
    served = served_files(artifact)
    # DNS rebinding: a page from another site whose name now points at 127.0.0.1 sends its own Host; only ours pass
    hosts = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if (self.headers.get("Host") or "").lower() not in hosts:
                return self.send_error(403, "Host not allowed (open the page as http://127.0.0.1:PORT/)")
            path = self.path.split("?", 1)[0]
            if path in FIXED:
                return self._file(FIXED[path])
            if path.startswith("/artifact/") and path.removeprefix("/artifact/") in served:
                return self._file(artifact / path.removeprefix("/artifact/"))
            name = path.removeprefix("/ort/")
            if path.startswith("/ort/") and "/" not in name and (ORT / name).is_file():
                return self._file(ORT / name)
            self.send_error(404)

        def _file(self, path: Path) -> None:
            try:
                body = path.read_bytes()
            except OSError:  # listed by the manifest but gone: the page reports the missing file
                return self.send_error(404, f"{path.name} is missing from the artifact")
            self.send_response(200)
            self.send_header("Content-Type", mimetypes.guess_type(path.name)[0] or "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")  # cross-origin isolated: WASM threads
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--port-file", type=Path)
    args = parser.parse_args()
    if not (args.artifact / "edgebert.json").is_file():
        print(f"error: {args.artifact} is not an edgebert artifact (no edgebert.json)", file=sys.stderr)
        return 2
    if not ORT.is_dir():
        print("error: run `npm ci --ignore-scripts` in examples/web first (onnxruntime-web)", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(("127.0.0.1", args.port), BaseHTTPRequestHandler)
    port = server.server_address[1]
    try:
        server.RequestHandlerClass = handler_for(args.artifact.resolve(), port)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.port_file:
        partial = args.port_file.with_name(args.port_file.name + ".partial")
        partial.write_text(f"{port}\n")
        partial.replace(args.port_file)  # atomic: a reader never sees the file before the port is in it
    print(f"open http://127.0.0.1:{port}/", file=sys.stderr)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
