"""Shared fixtures: a tiny BERT built from a config (random weights), its checkpoint and artifacts.

Everything here is built once per session in a temp dir; the stages run for real on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CPU_FIXTURES = Path(__file__).parent / "fixtures" / "cpu"
# One real /proc/cpuinfo per CPU class edgebert chooses between (tests/fixtures/cpu/): every choice made by CPU
# follows EDGEBERT_CPUINFO, so a test about a choice gives the same verdict on whatever CPU runs it.
SIMULATED_CPUS = {
    "avx2": "linux-zen3.txt",  # AMD EPYC family 25 model 1: AVX2, no VNNI (U8S8 saturates)
    "avx512-vnni": "linux-kvm-epyc-zen4.txt",  # AMD EPYC family 25 model 17: AVX-512 VNNI and avx512_bf16
    "amx": "linux-kvm-xeon-amx.txt",  # Intel Xeon (KVM) family 6 model 167: AVX-512 VNNI, AVX-VNNI, AMX
    "arm64": "linux-arm64-graviton3.txt",  # Graviton 3: dot product, i8mm, bf16
}


@pytest.fixture
def simulate_cpu(monkeypatch):
    """simulate_cpu("avx2"): edgebert decides as on that CPU class for the rest of the test (kernels still run here,
    so simulate only to test choices, or a CPU with fewer features than any host)."""

    def simulate(name: str) -> None:
        monkeypatch.setenv("EDGEBERT_CPUINFO", str(CPU_FIXTURES / SIMULATED_CPUS[name]))

    return simulate


TOPICS = {
    "sports": ["match", "goal", "team", "coach", "league", "score", "player", "cup"],
    "business": ["market", "shares", "profit", "bank", "economy", "price", "company", "trade"],
    "tech": ["software", "phone", "internet", "chip", "computer", "data", "online", "robot"],
}
FILLER = ["the", "a", "on", "with", "after", "new", "big", "today", "and", "in", "said", "week"]


def make_examples(n: int, seed: int) -> list[dict]:
    """Texts whose label is signalled by topic words, with varied lengths (3..40 words)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(TOPICS)[i % len(TOPICS)]
        words = [rng.choice(TOPICS[label] if rng.random() < 0.4 else FILLER) for _ in range(rng.randint(3, 40))]
        rows.append({"text": " ".join(words).capitalize() + ".", "label": label})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    write_jsonl(d / "train.jsonl", make_examples(96, seed=1))
    write_jsonl(d / "dev.jsonl", make_examples(30, seed=2))
    return d


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and a WordPiece tokenizer trained on our words."""
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.processors import BertProcessing

    out = tmp_path_factory.mktemp("tiny-base")
    corpus = [w for words in TOPICS.values() for w in words] + FILLER + list("abcdefghijklmnopqrstuvwxyz0123456789.,!?")
    tokenizer = BertWordPieceTokenizer(lowercase=True)
    tokenizer.train_from_iterator([" ".join(corpus)] * 5 + ["中文 混合 🙂"], vocab_size=300, min_frequency=1)
    # Like every real BERT tokenizer: wrap each text as [CLS] text [SEP].
    tokenizer.post_processor = BertProcessing(
        ("[SEP]", tokenizer.token_to_id("[SEP]")), ("[CLS]", tokenizer.token_to_id("[CLS]"))
    )
    tokenizer.save(str(out / "tokenizer.json"))
    save_tiny_bert(out, tokenizer.get_vocab_size(), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return out


def save_tiny_bert(out: Path, vocab_size: int, **overrides) -> None:
    """A 2-layer, 32-wide BertModel with random weights, saved as transformers saves one (save_pretrained).

    The weights come from a fixed seed: unseeded, they depended on which tests ran first, and a test that trains
    on them passed or failed by the order of the suite."""
    import torch
    from transformers import BertConfig, BertModel

    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = BertModel(BertConfig(vocab_size=vocab_size, max_position_embeddings=128, **sizes, **overrides))
    model.save_pretrained(out)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_base, data_dir) -> Path:
    from edgebert.data.text import load_file
    from edgebert.train.config import TrainConfig
    from edgebert.train.loop import train

    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    config = TrainConfig(
        model=str(tiny_base), max_length=48, epochs=4, batch_size=16, learning_rate=5e-3, warmup_ratio=0.0
    )
    train(load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl"), config, out, progress=False)
    return out


def _export(tmp_path_factory, checkpoint: Path, data_dir: Path, name: str, int8: bool) -> Path:
    from edgebert.data.text import load_file
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe

    out = tmp_path_factory.mktemp("artifacts") / name
    config = ExportConfig(quantization=quantization_from_recipe("avx2") if int8 else None)
    export_artifact(checkpoint, out, config, eval_data=load_file(data_dir / "dev.jsonl"), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory, tiny_checkpoint, data_dir) -> Path:
    return _export(tmp_path_factory, tiny_checkpoint, data_dir, "fp32", int8=False)


@pytest.fixture(scope="session")
def tiny_int8_artifact(tmp_path_factory, tiny_checkpoint, data_dir) -> Path:
    return _export(tmp_path_factory, tiny_checkpoint, data_dir, "int8", int8=True)


@pytest.fixture(scope="session")
def bpe_artifact(tmp_path_factory, data_dir) -> Path:
    """A tiny random BERT that reads text with a byte-level BPE tokenizer as RoBERTa's is (ByteLevel pre-tokenizer,
    BPE merges, <s> A </s>), trained on our words and the kit's scripts, fine-tuned briefly and exported INT8."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing

    from edgebert.data.text import load_file
    from edgebert.export.config import ExportConfig
    from edgebert.export.conformance import SEGMENTS
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe
    from edgebert.train.config import TrainConfig
    from edgebert.train.loop import train

    root = tmp_path_factory.mktemp("bpe")
    train_set, dev = load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl")
    tokenizer = ByteLevelBPETokenizer()
    texts = [*train_set.texts, *(text for segment in SEGMENTS.values() for text in segment)]
    tokenizer.train_from_iterator(texts, vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    tokenizer.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
    save_tiny_bert(root / "base", tokenizer.get_vocab_size(), pad_token_id=1)
    tokenizer.save(str(root / "base" / "tokenizer.json"))
    settings = dict(max_length=48, epochs=2, batch_size=16, learning_rate=5e-3)
    train(train_set, dev, TrainConfig(model=str(root / "base"), **settings), root / "ckpt", progress=False)
    config = ExportConfig(quantization=quantization_from_recipe("avx2"))
    export_artifact(root / "ckpt", root / "int8", config, eval_data=dev, progress=False)
    return root / "int8"


@pytest.fixture(scope="session")
def vnni_artifact(tmp_path_factory, tiny_checkpoint, data_dir) -> Path:
    """Full-range INT8 weights (the VNNI recipe): right on VNNI CPUs and arm64, saturating on AVX2 ones."""
    from edgebert.data.text import load_file
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe

    out = tmp_path_factory.mktemp("vnni") / "ort-vnni"
    config = ExportConfig(quantization=quantization_from_recipe("avx512-vnni"))
    export_artifact(tiny_checkpoint, out, config, eval_data=load_file(data_dir / "dev.jsonl"), progress=False)
    return out


@pytest.fixture
def artifact_copy(tmp_path, tiny_int8_artifact) -> Path:
    """A private copy a test may damage."""
    import shutil

    dst = tmp_path / "artifact"
    shutil.copytree(tiny_int8_artifact, dst)
    return dst


# ---- token classification: generated sentences with PER/ORG/LOC entities (no registry package ships a
# small tagged corpus we may bundle; see README). Entity words are outside the tiny vocabulary, so they
# split into several word pieces and exercise first-sub-token alignment.
ENTITIES = {
    "PER": [["alice"], ["bob", "smith"], ["carol"], ["dmitri", "ivanov"]],
    "ORG": [["arsenal"], ["globex", "corp"], ["initech"]],
    "LOC": [["paris"], ["new", "york"], ["oslo"]],
}


def make_tagged(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(2, 6)):
            if rng.random() < 0.35:
                kind = rng.choice(list(ENTITIES))
                words = rng.choice(ENTITIES[kind])
                tokens += words
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
            else:
                tokens.append(rng.choice(FILLER))
                tags.append("O")
        rows.append({"tokens": tokens, "tags": tags})
    return rows


@pytest.fixture(scope="session")
def token_data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("token-data")
    write_jsonl(d / "train.jsonl", make_tagged(160, seed=3))
    write_jsonl(d / "dev.jsonl", make_tagged(40, seed=4))
    return d


@pytest.fixture(scope="session")
def tiny_token_checkpoint(tmp_path_factory, tiny_base, token_data_dir) -> Path:
    from edgebert.data.tokens import load_token_file
    from edgebert.train.config import TrainConfig
    from edgebert.train.loop import train

    out = tmp_path_factory.mktemp("token-ckpt") / "tiny"
    config = TrainConfig(
        model=str(tiny_base), task="token", max_length=32, epochs=10, batch_size=16, learning_rate=5e-3, warmup_ratio=0
    )
    train(
        load_token_file(token_data_dir / "train.jsonl"),
        load_token_file(token_data_dir / "dev.jsonl"),
        config,
        out,
        progress=False,
    )
    return out


@pytest.fixture(scope="session")
def token_int8_artifact(tmp_path_factory, tiny_token_checkpoint, token_data_dir):
    from edgebert.data.tokens import load_token_file
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe

    out = tmp_path_factory.mktemp("token-artifact") / "int8"
    config = ExportConfig(quantization=quantization_from_recipe("avx2"))
    dev = load_token_file(token_data_dir / "dev.jsonl")
    export_artifact(tiny_token_checkpoint, out, config, eval_data=dev, progress=False)
    return out


def npm_example(directory: Path, package: str) -> Path:
    """An examples/ directory with its npm packages installed (`npm ci`), or the test skipped saying why. `package`
    is the one the test needs; every package.json dependency must be there, or they are installed again.

    --ignore-scripts: onnxruntime-node's install script downloads GPU binaries; the CPU build is in the package."""
    import shutil
    import subprocess

    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not on PATH")
    manifest = json.loads((directory / "package.json").read_text(encoding="utf-8"))
    needed = {package, *manifest.get("dependencies", {}), *manifest.get("devDependencies", {})}
    if not all((directory / "node_modules" / name).is_dir() for name in needed):
        command = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        result = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            pytest.skip(f"npm registry unreachable: {result.stderr[-500:]}")
    return directory


# ---- helpers the test modules share (imported from here, never from another test module)
def cli_error(argv, capsys) -> str:
    """The one-line error `edgebert ARGV` prints, asserted to exit 2 without a traceback."""
    from edgebert.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("edgebert: error: ") and "Traceback" not in err
    assert err.count("\n") == 1, err
    return err


BLOCK_TORCH = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "transformers", "optimum"):
                raise ImportError(f"{name} is blocked in this test")
    sys.meta_path.insert(0, _Block())
    """
)


HF_LABELS = ["business", "sport", "tech"]


HF_SIZES = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64, num_hidden_layers=2)


HF_ARCHITECTURES = {
    "bert": ("BertConfig", "BertForSequenceClassification", HF_SIZES),
    "distilbert": (
        "DistilBertConfig",
        "DistilBertForSequenceClassification",
        dict(dim=32, n_heads=2, hidden_dim=64, n_layers=2),
    ),
    "roberta": ("RobertaConfig", "RobertaForSequenceClassification", {**HF_SIZES, "pad_token_id": 0}),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForSequenceClassification", {**HF_SIZES, "pad_token_id": 0}),
    "electra": ("ElectraConfig", "ElectraForSequenceClassification", {**HF_SIZES, "embedding_size": 32}),
    "albert": ("AlbertConfig", "AlbertForSequenceClassification", {**HF_SIZES, "embedding_size": 16}),
}


def save_hf_classifier(out: Path, architecture: str, tokenizer_dir: Path, head: str | None = None) -> Path:
    """A randomly initialised classifier saved the way transformers.Trainer saves one (save_pretrained)."""
    import torch
    import transformers

    config_class, model_class, sizes = HF_ARCHITECTURES[architecture]
    vocab = json.loads((tokenizer_dir / "tokenizer.json").read_text())["model"]["vocab"]
    positions = 130 if "roberta" in architecture else 128  # RoBERTa's positions start after its padding index
    config = getattr(transformers, config_class)(
        vocab_size=len(vocab),
        max_position_embeddings=positions,
        id2label=dict(enumerate(HF_LABELS)),
        label2id={name: i for i, name in enumerate(HF_LABELS)},
        **sizes,
    )
    torch.manual_seed(0)
    model = getattr(transformers, head or model_class)(config).eval()
    model.save_pretrained(out)
    shutil.copyfile(tokenizer_dir / "tokenizer.json", out / "tokenizer.json")
    return out


class Server:
    def __init__(self, artifact: Path, tmp: Path, *flags: str, env: dict | None = None) -> None:
        port_file = tmp / f"port-{time.monotonic_ns()}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgebert.cli",
                "serve",
                str(artifact),
                "--port",
                "0",
                "--port-file",
                str(port_file),
                *flags,
            ],
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.process.stderr.read().decode())
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"

    def request(self, path: str, body=None, *, headers: dict | None = None, raw: bytes | None = None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json", **(headers or {})} if data is not None else headers or {}
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def json(self, path: str, body=None, **kwargs):
        status, text = self.request(path, body, **kwargs)
        return status, json.loads(text)

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err.decode()


NODE_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "node"


def node_kit(node_example: Path, artifact: Path) -> dict:
    """The Node port's conformance report on `artifact`, asserted to pass (every string's ids, golden ids)."""
    result = subprocess.run(
        ["node", "conformance.mjs", str(artifact)], cwd=node_example, capture_output=True, text=True, timeout=300
    )
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"], report["first_mismatches"][:3]
    assert report["strings"] >= 1000 and report["golden_ids_match"]
    return report


WEB = Path(__file__).parent.parent / "examples" / "web"
TRANSFORMERS_JS = Path(__file__).parent.parent / "examples" / "transformers-js"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def page_server(artifact: Path, tmp_path: Path):
    """examples/web/serve.py on a free loopback port, for the duration: yields its base URL."""
    port_file = tmp_path / f"port-{time.monotonic_ns()}"
    server = subprocess.Popen(
        [sys.executable, str(WEB / "serve.py"), str(artifact), "--port", "0", "--port-file", str(port_file)],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{int(port_file.read_text())}/"
    finally:
        server.terminate()
        server.wait(timeout=30)
