"""Rude clients against `edgebert serve`: do normal requests still get answered, and how fast?

    python benchmarks/slow_clients.py --artifact runs/bbc/int8 --out benchmarks/results/slow_clients.json

Scenarios, each against a fresh server (--max-connections 256, --read-timeout 2) while a normal client sends one
text every 0.2 s and records status and latency:
  - header trickle (slowloris): 300 connections each sending a header byte every second, more than the server's
    connection cap;
  - slow body: 200 connections that send headers with a Content-Length and then one body byte a second;
  - huge header: 4 clients each sending a 128 MB header block.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from edgebert.core.cpu import cpu_info

SECONDS = 12


def start_server(artifact: Path, work: Path) -> tuple[subprocess.Popen, int]:
    port_file = work / f"port-{time.monotonic_ns()}"
    flags = ["--port", "0", "--port-file", str(port_file), "--max-connections", "256", "--read-timeout", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "edgebert.cli", "serve", str(artifact), *flags], stderr=subprocess.DEVNULL
    )
    while not port_file.exists():
        if process.poll() is not None:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return process, int(port_file.read_text())


def normal_client(port: int, stop: threading.Event, out: list) -> None:
    body = json.dumps({"inputs": ["The bank's profits rose sharply this quarter."]}).encode()
    while not stop.is_set():
        started = time.perf_counter()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/classify", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0  # refused or reset
        out.append((status, 1000 * (time.perf_counter() - started)))
        time.sleep(0.2)


def hold_connections(port: int, stop: threading.Event, count: int, opening: bytes, trickle: bytes) -> list[float]:
    """Open `count` connections, send `opening` on each, then one `trickle` byte a second until `stop`. Returns, for
    each connection the server closed, the seconds it was held open (what a slow client costs the server)."""
    import select

    opened: dict[socket.socket, float] = {}
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(opening)
            opened[s] = time.monotonic()
        except OSError:
            pass
    held = []
    while not stop.is_set() and opened:
        readable, _, _ = select.select(list(opened), [], [], 1.0)
        gone = [s for s in readable if _closed_by_server(s)]  # an answer (408/431) then end of stream
        for s in list(opened):
            try:
                s.sendall(trickle)
            except OSError:
                gone.append(s)
        for s in set(gone):
            held.append(time.monotonic() - opened.pop(s))
            s.close()
    for s in opened:
        s.close()
    return held


def _closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(65536) == b"" or s.recv(65536, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def trickle_headers(port: int, stop: threading.Event, count: int) -> list[float]:
    return hold_connections(port, stop, count, b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X")


def slow_bodies(port: int, stop: threading.Event, count: int) -> list[float]:
    head = b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return hold_connections(port, stop, count, head + b"Content-Length: 100000\r\n\r\n{", b" ")


def huge_headers(port: int, stop: threading.Event, count: int) -> list[float]:
    def one() -> None:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            chunk = b"a" * (1 << 20)
            for _ in range(128):
                if stop.is_set():
                    break
                s.sendall(chunk)
        except OSError:
            pass  # closed by the server: what we hope for

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return []  # not timed: each is cut off by size, not by time


def scenario(artifact: Path, work: Path, name: str, attack, count: int) -> dict:
    process, port = start_server(artifact, work)
    stop, results, held = threading.Event(), [], []
    try:
        attacker = threading.Thread(target=lambda: held.extend(attack(port, stop, count)), daemon=True)
        attacker.start()
        time.sleep(1.0)  # let the attack take hold
        client = threading.Thread(target=normal_client, args=(port, stop, results))
        client.start()
        time.sleep(SECONDS)
        stop.set()
        client.join()
        attacker.join(timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=60)
    latencies = sorted(ms for status, ms in results if status == 200)
    held.sort()
    return {
        "attack": name,
        "attackers": count,
        "normal_requests": len(results),
        "answered_200": len(latencies),
        "other_statuses": sorted({status for status, _ in results if status != 200}),
        "p50_ms": latencies[len(latencies) // 2] if latencies else None,
        "max_ms": latencies[-1] if latencies else None,
        "attackers_closed_by_server": len(held),
        "held_open_p50_s": round(held[len(held) // 2], 2) if held else None,
        "held_open_max_s": round(held[-1], 2) if held else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("runs/slow-clients"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    runs = [
        scenario(args.artifact, args.work, "header trickle (slowloris)", trickle_headers, 300),
        scenario(args.artifact, args.work, "slow body", slow_bodies, 200),
        scenario(args.artifact, args.work, "128 MB header", huge_headers, 4),
    ]
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": cpu_info().record(),
        "server": "--max-connections 256 --read-timeout 2",
        "seconds": SECONDS,
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for r in runs:
        print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
