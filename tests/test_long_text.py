"""Texts longer than the model: the `chunk` policy (runtime/windows.py), recorded at export and applied at run time."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from edgebert.cli import main
from edgebert.core.artifact import LongText, read_manifest
from edgebert.core.errors import ArtifactError, InputError
from edgebert.runtime import Classifier, TokenClassifier
from edgebert.runtime.windows import aggregate, stitch, window_starts

from .conftest import (
    CHROMIUM,
    FILLER,
    NODE_EXAMPLE,
    TOPICS,
    WEB,
    Server,
    make_examples,
    node_kit,
    page_server,
    write_jsonl,
)

CHUNK = LongText("chunk", stride=8, max_windows=6)


def long_text(seed: int, words: int = 120, topic: str = "sports") -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(TOPICS[topic] if rng.random() < 0.4 else FILLER) for _ in range(words)) + "."


@pytest.mark.parametrize("pieces", [1, 10, 46, 47, 100, 1000])
def test_windows_cover_the_text_each_full_and_the_last_ending_at_its_end(pieces):
    width, stride = 46, 8
    starts = window_starts(pieces, width, stride, max_windows=1000)
    covered = np.zeros(pieces, bool)
    for a, b in zip(starts, starts[1:], strict=False):
        assert b - a <= width - stride  # consecutive windows share at least `stride` pieces
    for start in starts:
        covered[start : start + width] = True
        assert start + width <= max(pieces, width)  # no window runs past the text
    assert covered.all()
    assert starts[-1] == max(0, pieces - width)  # the last window is full, ending at the text's end


def test_a_window_cap_keeps_the_first_windows_and_the_rest_is_cut():
    assert window_starts(1000, 46, 8, max_windows=3) == [0, 38, 76]


def test_window_logits_become_the_mean_or_the_max_per_text():
    logits = np.array([[1.0, 0.0], [3.0, -2.0], [0.5, 0.5]], np.float32)
    owners = np.array([0, 0, 1])
    assert aggregate(logits, owners, 2).tolist() == [[2.0, -1.0], [0.5, 0.5]]
    assert aggregate(logits, owners, 2, "max").tolist() == [[3.0, 0.0], [0.5, 0.5]]


def test_each_token_takes_its_row_from_the_window_where_it_is_most_central():
    # pieces 0..9; windows of 6 pieces at 0 and 4, one special token each side: rows are [CLS] p.. [SEP]
    first = np.arange(8, dtype=np.float32)[:, None] + 100  # rows 100..107 (row 1..6 = pieces 0..5)
    second = np.arange(8, dtype=np.float32)[:, None] + 200  # rows 201..206 = pieces 4..9
    rows = stitch([first, second], [0, 4], prefix=1, suffix=1, tokens=12)[:, 0]
    # piece 4 sits 1 from the first window's edge, 0 from the second's: first; piece 5: 0 vs 1: second
    assert rows.tolist() == [100, 101, 102, 103, 104, 105, 202, 203, 204, 205, 206, 207]


def test_every_window_is_a_well_formed_input_and_together_they_hold_the_whole_text(tiny_artifact):
    clf = Classifier.load(tiny_artifact)
    text = long_text(1)
    windows = clf.encoder.encode_windows([text, "goal"], long_text=CHUNK)
    whole = clf.encoder._reader(1000).encode(text).ids  # the text's ids, uncut
    cls, sep = whole[0], whole[-1]
    mine = [w for w, owner in zip(windows.ids, windows.owners, strict=True) if owner == 0]
    assert len(mine) > 1 and all(w[0] == cls and w[-1] == sep and len(w) <= clf.encoder.max_length for w in mine)
    assert mine[0] == clf.encoder.encode([text])[0][0]  # the first window is what truncation reads
    rebuilt = {}
    for ids, start in zip(mine, windows.starts, strict=False):
        rebuilt.update({start + k: piece for k, piece in enumerate(ids[1:-1])})
    assert [rebuilt[k] for k in range(len(rebuilt))] == whole[1:-1]
    assert windows.counts.tolist() == [len(mine), 1] and not windows.truncated.any()


def test_chunked_logits_are_the_mean_of_the_windows_and_short_texts_are_unchanged(tiny_int8_artifact):
    clf = Classifier.load(tiny_int8_artifact)
    texts = [long_text(2), "the team scored a goal", long_text(3, words=300, topic="tech")]
    windows = clf.encoder.encode_windows(texts, long_text=CHUNK)
    per_window = np.stack(
        [clf.logits_of_ids([ids], [types])[0] for ids, types in zip(windows.ids, windows.type_ids, strict=True)]
    )
    expected = np.stack([per_window[windows.owners == i].mean(0) for i in range(len(texts))])
    got = clf.predict_logits(texts, long_text=CHUNK)
    assert np.allclose(got, expected, atol=1e-5)
    assert np.array_equal(got[1], clf.predict_logits(["the team scored a goal"], long_text="truncate")[0])
    alone = np.concatenate([clf.predict_logits([t], long_text=CHUNK) for t in texts])
    assert np.array_equal(got, alone)  # a text's answer does not depend on what else was asked
    predictions = clf.predict(texts, long_text=CHUNK)
    assert [p.windows for p in predictions] == windows.counts.tolist()
    assert [p.truncated for p in predictions] == [False, False, True]  # 300 words > 6 windows of 48 tokens
    assert [p.truncated for p in clf.predict(texts)] == [True, False, True]  # the artifact's policy: truncate


def test_pairs_are_not_windowed_and_a_long_pair_is_refused_with_the_fix(tiny_artifact):
    clf = Classifier.load(tiny_artifact)
    assert len(clf.predict_logits(["goal"], ["match"], long_text="chunk")) == 1
    with pytest.raises(InputError, match="long_text='truncate'"):
        clf.predict_logits([long_text(4)], ["match"], long_text="chunk")


def test_bad_long_text_settings_are_refused_naming_the_field(tiny_artifact):
    clf = Classifier.load(tiny_artifact)
    for bad in (
        "all",
        LongText("chunk", stride=40),
        LongText("chunk", max_windows=0),
        LongText("chunk", aggregate="x"),
    ):
        with pytest.raises(InputError, match="long_text"):
            clf.predict_logits(["goal"], long_text=bad)


def test_a_huge_text_chunked_stays_bounded(tiny_int8_artifact):
    clf = Classifier.load(tiny_int8_artifact)
    seen = []
    policy = LongText("chunk", stride=8, max_windows=4)
    read = 3 * (46 - 8) + 46 + 2  # tokens a chunked text is read to: 4 windows of 46 pieces, [CLS] and [SEP]
    real = clf.encoder._reader(read).encode_batch
    clf.encoder._readers[read] = type("Spy", (), {})()
    clf.encoder._readers[read].encode_batch = lambda inputs: seen.extend(len(x) for x in inputs) or real(inputs)
    huge = "the team scored a late goal " * 400_000  # 11 MB
    prediction = clf.predict(huge, long_text=policy)
    assert prediction.windows == 4 and prediction.truncated
    assert max(seen) < 100_000, "the tokenizer was given the whole text"


# ---- recorded at export, applied by every front door --------------------------------------------------------------
@pytest.fixture(scope="module")
def chunked_artifact(tmp_path_factory, tiny_checkpoint):
    from edgebert.data.text import load_file
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe

    d = tmp_path_factory.mktemp("long")
    rows = [{"text": " ".join(r["text"] for r in make_examples(6, seed=i)), "label": "sports"} for i in range(12)]
    rows += make_examples(12, seed=99)
    write_jsonl(d / "dev.jsonl", rows)
    out = d / "chunked"
    config = ExportConfig(quantization=quantization_from_recipe("avx2"), long_text=CHUNK)
    report = export_artifact(tiny_checkpoint, out, config, eval_data=load_file(d / "dev.jsonl"), progress=False)
    return out, report, d / "dev.jsonl"


def test_export_records_the_policy_and_scores_eval_as_the_runtime_reads_it(chunked_artifact):
    out, report, dev = chunked_artifact
    manifest = read_manifest(out)
    assert manifest.long_text == CHUNK
    clf = Classifier.load(out)
    assert clf.long_text_policy() == CHUNK
    from edgebert.data.text import load_file

    data = load_file(dev)
    predicted = [p.label for p in clf.predict(data.texts)]  # the artifact's own policy: chunk
    accuracy = float(np.mean([p == y for p, y in zip(predicted, data.labels, strict=True)]))
    assert manifest.evaluation.score == pytest.approx(accuracy)
    assert manifest.evaluation.n == len(data.texts)


def test_predict_applies_the_artifact_policy_and_long_text_overrides_it(chunked_artifact, capsys):
    out, _, _ = chunked_artifact
    text = long_text(5)
    assert main(["predict", str(out), text, "--json"]) == 0
    chunked = json.loads(capsys.readouterr().out)
    assert chunked["windows"] > 1 and not chunked["truncated"]
    assert main(["predict", str(out), text, "--json", "--long-text", "truncate"]) == 0
    cut = json.loads(capsys.readouterr().out)
    assert cut["windows"] == 1 and cut["truncated"]
    assert main(["predict", str(out), text, "--long-text", "truncate"]) == 0
    assert "1 of 1 texts were cut" in capsys.readouterr().err


def test_window_flags_without_chunk_are_refused(tiny_checkpoint, tmp_path, capsys):
    assert main(["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--stride", "8"]) == 2
    assert "--long-text chunk" in capsys.readouterr().err
    assert (
        main(["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--long-text", "chunk", "--stride", "99"])
        == 2
    )
    assert "stride" in capsys.readouterr().err


def test_a_manifest_with_impossible_windows_is_refused_at_load(chunked_artifact, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(chunked_artifact[0], out)
    data = json.loads((out / "edgebert.json").read_text())
    data["long_text"]["stride"] = 10_000
    (out / "edgebert.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="long_text"):
        Classifier.load(out)


def test_token_models_label_words_past_max_length_when_chunked(token_int8_artifact):
    tagger = TokenClassifier.load(token_int8_artifact)
    words = " ".join(["alice", "visited", "paris", "with", "bob", "smith"] * 12)  # 72 words, max_length 32
    cut = tagger.predict(words, long_text="truncate")
    whole = tagger.predict(words, long_text=LongText("chunk", stride=6, max_windows=32))
    assert len(cut) < 32 < len(whole) == 72
    assert [w.word for w in whole] == words.split() and whole[-1].end == len(words)
    half = len(cut) // 2  # words the first window alone holds (its first 24 of 30 pieces)
    assert [w.label for w in whole[:half]] == [w.label for w in cut[:half]]


def test_serve_applies_the_artifact_policy_a_request_can_override_it_and_says_what_it_read(chunked_artifact, tmp_path):

    out = chunked_artifact[0]
    texts = [long_text(6), "the team scored a goal", long_text(7, words=400)]
    expected = Classifier.load(out).predict(texts)
    server = Server(out, tmp_path)
    try:
        status, body = server.json("/v1/classify", {"inputs": texts})
        assert status == 200
        assert [(r["windows"], r["truncated"]) for r in body["results"]] == [(p.windows, p.truncated) for p in expected]
        assert [r["score"] for r in body["results"]] == pytest.approx([p.score for p in expected], abs=1e-5)
        status, body = server.json("/v1/classify", {"inputs": texts, "long_text": "truncate"})
        assert [(r["windows"], r["truncated"]) for r in body["results"]] == [(1, True), (1, False), (1, True)]
        status, body = server.json("/predict", {"inputs": [[t] for t in texts[:2]]})  # read whole: nothing to refuse
        assert status == 200
        status, body = server.json("/predict", {"inputs": [[t] for t in texts]})
        assert status == 413 and "inputs[2]" in body["error"] and "6 windows" in body["error"]
        status, body = server.json("/v1/classify", {"inputs": texts, "long_text": "all"})
        assert status == 422 and "long_text" in body["error"]
        status, info = server.json("/info")
        assert info["long_text"] == {"policy": "chunk", "stride": 8, "max_windows": 6, "aggregate": "mean"}
    finally:
        code, err = server.stop()
    assert code == 0 and "Traceback" not in err, err


def test_score_reads_a_corpus_as_the_artifact_says(chunked_artifact, tmp_path):
    out = chunked_artifact[0]
    texts = [long_text(seed, topic=["sports", "tech", "business"][seed % 3]) for seed in range(8)]
    write_jsonl(tmp_path / "corpus.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(texts)])
    args = ["score", str(out), "--input", str(tmp_path / "corpus.jsonl"), "--output", str(tmp_path / "o.jsonl")]
    assert main([*args, "--workers", "1", "--quiet", "--all-scores"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    rows.sort(key=lambda r: r["position"])
    clf = Classifier.load(out)
    expected = clf.predict_proba(texts)
    scored = np.asarray([list(r["scores"].values()) for r in rows])
    assert np.abs(scored - expected).max() < 1e-5  # scores are written to 6 decimals
    # and not the truncated reading (the tiny model's probabilities are near-uniform: the gap is small but real)
    assert np.abs(scored - clf.predict_proba(texts, long_text="truncate")).max() > 1e-4


def test_the_kit_carries_long_texts_with_their_windows_and_logits_and_verify_checks_them(chunked_artifact, capsys):
    out = chunked_artifact[0]
    rows = [json.loads(line) for line in (out / "conformance.jsonl").read_text().splitlines()]
    long_rows = [r for r in rows if "windows" in r]
    assert (
        len(long_rows) >= 3 and any(r["truncated"] for r in long_rows) and all(len(r["logits"]) == 3 for r in long_rows)
    )
    assert all(len(r["windows"]) > 1 for r in long_rows)
    assert main(["verify", str(out)]) == 0
    capsys.readouterr()


def test_verify_refuses_a_kit_whose_windows_or_logits_are_not_the_artifacts(chunked_artifact, tmp_path, capsys):
    import hashlib
    import shutil

    for field, change in (("windows", lambda r: r["windows"][1:]), ("logits", lambda r: [x + 1 for x in r["logits"]])):
        copy = tmp_path / field
        shutil.copytree(chunked_artifact[0], copy)
        kit = copy / "conformance.jsonl"
        rows = [json.loads(line) for line in kit.read_text().splitlines()]
        target = next(r for r in rows if "windows" in r)
        target[field] = change(target)
        kit.write_text("".join(json.dumps(r) + "\n" for r in rows))
        manifest = json.loads((copy / "edgebert.json").read_text())
        manifest["files"]["conformance.jsonl"] = hashlib.sha256(kit.read_bytes()).hexdigest()
        (copy / "edgebert.json").write_text(json.dumps(manifest))
        assert main(["verify", str(copy), "--json"]) == 1, field
        assert not json.loads(capsys.readouterr().out)["ok"]


def test_node_reads_long_texts_as_the_artifact_says(chunked_artifact):
    import subprocess

    from .conftest import npm_example

    node = npm_example(NODE_EXAMPLE, "onnxruntime-node")
    out = chunked_artifact[0]
    report = node_kit(node, out)  # the kit's long texts: the same windows, logits within the golden tolerance
    assert report["window_texts"] >= 3 and report["window_mismatches"] == 0
    texts = [long_text(8), "goal", long_text(9, words=400, topic="business")]
    result = subprocess.run(["node", "edgebert.mjs", str(out), *texts], cwd=node, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = Classifier.load(out).predict(texts)
    assert [(r["windows"], r["truncated"]) for r in rows] == [(p.windows, p.truncated) for p in expected]
    for row, prediction in zip(rows, expected, strict=True):
        assert row["scores"] == pytest.approx(prediction.scores, abs=1e-5)


def test_the_browser_page_reads_long_texts_as_the_artifact_says(chunked_artifact, tmp_path):
    import subprocess

    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: `make web-setup` installs Debian's chromium")
    from .conftest import npm_example

    npm_example(WEB, "onnxruntime-web")
    out = chunked_artifact[0]
    kit = [json.loads(line) for line in (out / "conformance.jsonl").read_text().splitlines()]
    rows = [row for row in kit if "windows" in row]
    (tmp_path / "texts.json").write_text(json.dumps([row["text"] for row in rows], ensure_ascii=False))
    with page_server(out, tmp_path) as url:
        command = ["node", "check.mjs", url, str(tmp_path / "texts.json"), str(tmp_path / "page.png"), CHROMIUM]
        result = subprocess.run(command, cwd=WEB, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    page = json.loads(result.stdout)
    assert page["errors"] == []
    assert [r["windows"] for r in page["kit"]] == [row["windows"] for row in rows]
    assert [r["truncated"] for r in page["kit"]] == [row["truncated"] for row in rows]
    browser, recorded = np.asarray([r["logits"] for r in page["kit"]]), np.asarray([row["logits"] for row in rows])
    assert np.max(np.abs(browser - recorded)) <= read_manifest(out).golden.atol


def test_training_on_windows_and_its_export_chunks_by_default(tmp_path, tiny_base, capsys):
    rows = [{"text": long_text(i, words=90, topic=t), "label": t} for i, t in enumerate(list(TOPICS) * 8)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(
        tmp_path / "dev.jsonl",
        [{"text": long_text(100 + i, words=90, topic=t), "label": t} for i, t in enumerate(TOPICS)],
    )
    out = tmp_path / "ckpt"
    args = ["train", "--data", str(tmp_path / "train.jsonl"), "--eval", str(tmp_path / "dev.jsonl"), "--model"]
    args += [
        str(tiny_base),
        "--out",
        str(out),
        "--max-length",
        "32",
        "--epochs",
        "1",
        "--long-text",
        "chunk",
    ]
    assert main(args) == 0
    said = capsys.readouterr()
    assert "24 training texts read as" in said.out + said.err
    assert main(["export", str(out), "--out", str(tmp_path / "art"), "--quiet"]) == 0
    assert read_manifest(tmp_path / "art").long_text.policy == "chunk"
    assert main(["export", str(out), "--out", str(tmp_path / "cut"), "--long-text", "truncate", "--quiet"]) == 0
    assert read_manifest(tmp_path / "cut").long_text.policy == "truncate"


def test_windows_in_training_are_refused_where_they_do_not_apply(tiny_checkpoint, tmp_path, capsys):
    from edgebert.train.config import TrainConfig

    with pytest.raises(InputError, match="--long-text chunk"):
        TrainConfig(task="token", long_text="chunk")
    with pytest.raises(InputError, match="--long-text chunk"):
        TrainConfig(ensemble=("a",), long_text="chunk")
    TrainConfig(teacher=str(tiny_checkpoint), student_layers=1, long_text="chunk")  # a student learns every window


def test_bench_reads_real_texts_as_each_variant_reads_them(chunked_artifact, tiny_checkpoint):
    from edgebert.bench.run import _Variant

    out, _, dev = chunked_artifact
    from edgebert.data.text import load_file

    texts = load_file(dev).texts
    artifact, reference = _Variant("int8", out, 1), _Variant("torch", tiny_checkpoint, 1)
    clf = Classifier.load(out, threads=1)
    assert np.allclose(artifact.logits(texts), clf.predict_logits(texts), atol=1e-5)  # chunked, as the app reads
    assert reference.long_text.policy == "truncate"  # the checkpoint was trained on truncated texts
    assert np.allclose(artifact.logits(texts[-12:]), clf.predict_logits(texts[-12:], long_text="truncate"), atol=1e-5)


def test_the_javascript_tokenizer_reads_a_huge_text_only_as_far_as_its_windows_with_pythons_ids(
    chunked_artifact, tmp_path
):
    import subprocess

    out = chunked_artifact[0]
    script = tmp_path / "huge.mjs"
    script.write_text(
        f'import {{ readFileSync }} from "node:fs";\n'
        f'import {{ tokenizerFromJson, encodeWindows }} from "{(NODE_EXAMPLE / "tokenizer.mjs").as_posix()}";\n'
        f'const m = JSON.parse(readFileSync("{out}/edgebert.json", "utf8"));\n'
        f'const t = tokenizerFromJson(JSON.parse(readFileSync("{out}/tokenizer.json", "utf8")), m.max_length);\n'
        'const huge = "the team scored a late goal in the cup ".repeat(250000);\n'  # 10 MB
        "const read = encodeWindows(t, huge, m.long_text);\n"
        "console.log(JSON.stringify({ ids: t.encode(huge), windows: read.windows, truncated: read.truncated }));\n"
    )
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    node = json.loads(done.stdout)
    clf = Classifier.load(out)
    huge = "the team scored a late goal in the cup " * 250_000
    windows = clf.encoder.encode_windows([huge], None, clf.long_text_policy())
    assert node["ids"] == clf.encoder.encode([huge])[0][0]
    assert node["windows"] == windows.ids and node["truncated"] is True == bool(windows.truncated[0])
