"""Domain-adaptive pre-training: continue masked-language modelling on the task's own texts.

Why: with an extended vocabulary (vocab.py) the new characters' embedding rows start random, and in
fine-tuning they learn only from one label per text. Masked-language modelling gives every character
occurrence its own target, so the encoder learns the new characters (and the domain's wording) from
the same unlabelled texts before it sees a label. This is "don't stop pre-training" (Gururangan et
al., 2020) on the training split only.

`adapt` reads top to bottom as its stages: prepare_ids -> build_mlm -> (optimizer) -> run_epochs (mask, predict,
evaluate) -> save_encoder.
The output is a Hugging Face encoder directory (weights with the original pooler, config, tokenizer.json,
vocab.txt, edgebert_adapt.json) that `edgebert train --model DIR` fine-tunes like a bundled encoder.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..core.artifact import HF_TOKENIZER_FILES, TOKENIZER
from ..core.cpu import usable_cpu_count
from ..core.errors import InputError, require
from ..core.files import atomic_directory, check_writable
from ..core.progress import progress_bar
from ..data.tokens import IGNORE
from ..modeling.checkpoint import ADAPT_META
from ..modeling.pretrained import resolve_model
from ..runtime.tokenization import TextEncoder
from .config import AdaptConfig
from .loop import train_batches
from .optimizer import adamw_with_linear_schedule, seed_everything, use_bf16
from .text import VOCAB_FILE
from .tokenizer import encoder_positions, prepare_tokenizer
from .vocab import plain_tokenizer

# Shapes are rounded up: the token axis to a multiple of LEN_BLOCK, the masked rows to a multiple of
# ROW_BLOCK before the vocabulary projection. A handful of tensor sizes instead of a new one every batch
# keeps the allocator reusing blocks: peak RSS after 125 zh_reviews steps 4.8 GB -> 3.6 GB (rows)
# -> 3.1 GB (rows + length), at the same speed (padding is masked out of attention and the loss).
ROW_BLOCK = 256
LEN_BLOCK = 16
EVAL_SEED = 1234  # the dev texts are masked the same way before and after every epoch, so losses compare


def adapt(
    train_texts: list[str],
    eval_texts: list[str],
    config: AdaptConfig,
    out: Path,
    *,
    force: bool = False,
    progress: bool = True,
    source: str = "",
) -> dict[str, Any]:
    """MLM on `train_texts`; masked-token loss/accuracy on `eval_texts` before and after. Writes `out`."""
    torch = require("torch", "train")
    require("transformers", "train")
    out = Path(out)
    say = (lambda message: print(message, file=sys.stderr)) if progress else (lambda _: None)
    check_writable(out, force, inputs=(config.model, source))
    if not train_texts:
        raise InputError("adapt needs at least one training text.")
    seed_everything(torch, config.seed)
    torch.set_num_threads(usable_cpu_count())

    model_dir = resolve_model(config.model)
    ids = prepare_ids(config, model_dir, train_texts, eval_texts, say)
    mlm = build_mlm(config, model_dir, ids.vocab_size, say)
    steps_per_epoch = len(train_batches(ids.encoder, ids.train_set, config.batch_size, random.Random(0)))
    optimizer, scheduler = adamw_with_linear_schedule(torch, mlm.model, config, steps_per_epoch * config.epochs)
    say(
        f"{len(train_texts)} train / {len(eval_texts)} dev texts; {steps_per_epoch} steps/epoch x {config.epochs} "
        f"(batch {config.batch_size}); masking {config.mask_probability:.0%}; "
        f"{'bf16 autocast' if mlm.bf16 else 'fp32'}"
    )
    history, losses = run_epochs(config, ids, mlm, optimizer, scheduler, steps_per_epoch, say, progress)
    report = {
        "base_model": config.model,
        "train_source": source,
        "train_texts": len(train_texts),
        "eval_texts": len(eval_texts),
        "vocab_size": ids.vocab_size,
        "added_tokens": mlm.added,
        "config": dataclasses.asdict(config),
        "history": history,
        "losses": losses,
    }
    save_encoder(out, force, model_dir, mlm, ids, config.seed, report)
    return report


@dataclass
class MaskedIds:
    """The texts as ids (truncated at max_length) and how they are masked."""

    tokenizer_json: str
    vocab: list[str] | None  # an extended vocabulary's pieces, else None
    vocab_size: int
    encoder: TextEncoder
    train_set: SimpleNamespace  # .ids, .type_ids
    eval_set: SimpleNamespace
    masker: Masker


def prepare_ids(config: AdaptConfig, model_dir: Path, train_texts: list[str], eval_texts: list[str], say) -> MaskedIds:
    """The tokenizer (extended with the data's characters when asked) and both splits' ids."""
    positions = encoder_positions(model_dir)
    if config.max_length > positions:
        raise InputError(f"--max-length {config.max_length} exceeds the encoder's {positions} positions.")
    tokenizer_json, vocab = prepare_tokenizer(config, model_dir, train_texts, say)
    tokenizer = plain_tokenizer(tokenizer_json)
    encoder = TextEncoder(tokenizer, config.max_length)
    train_set = _id_set(encoder, train_texts)
    masker = Masker.for_tokenizer(tokenizer, config.mask_probability, train_set.ids)
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    return MaskedIds(tokenizer_json, vocab, vocab_size, encoder, train_set, _id_set(encoder, eval_texts), masker)


class MaskedLM:
    """The encoder plus BERT's MLM head (dense -> gelu -> LayerNorm -> decoder tied to the embeddings)."""

    def __init__(self, model, bf16: bool, added: int) -> None:
        self.model, self.bf16, self.added = model, bf16, added

    def loss(self, batch, inputs: np.ndarray, labels: np.ndarray):
        """Cross-entropy over the masked positions only: the vocabulary projection is the costliest
        matmul here, so it runs on the ~15% of tokens that have a target, not on all of them."""
        import torch

        targets = torch.from_numpy(labels)  # (B, T), IGNORE where not masked
        picked = targets != IGNORE
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            hidden = self.model.bert(
                input_ids=torch.from_numpy(inputs),  # (B, T)
                attention_mask=torch.from_numpy(batch.attention_mask),
                token_type_ids=torch.from_numpy(batch.token_type_ids),
            ).last_hidden_state  # (B, T, H)
            rows, wanted = hidden[picked], targets[picked]  # (M, H), (M,); M = masked tokens in the batch
            pad = -len(wanted) % ROW_BLOCK
            rows = torch.nn.functional.pad(rows, (0, 0, 0, pad))  # zero rows, ignored by the loss
            wanted = torch.nn.functional.pad(wanted, (0, pad), value=IGNORE)
            logits = self.model.cls(rows)  # (M', V)
        loss = torch.nn.functional.cross_entropy(logits.float(), wanted, ignore_index=IGNORE)
        real = wanted != IGNORE
        return loss, logits[real], wanted[real]

    def evaluate(self, ids: MaskedIds) -> dict[str, float]:
        """Masked-token loss and accuracy on the dev ids, masked the same way every time (EVAL_SEED)."""
        import torch

        self.model.eval()
        rng = np.random.default_rng(EVAL_SEED)
        loss_sum, correct, count = 0.0, 0, 0
        with torch.inference_mode():
            for batch in ids.encoder.batches(ids.eval_set.ids, ids.eval_set.type_ids, 64):
                inputs, labels = ids.masker.mask(batch.input_ids, batch.attention_mask, rng)
                if (labels == IGNORE).all():
                    continue
                loss, logits, targets = self.loss(batch, inputs, labels)
                loss_sum += loss.item() * len(targets)
                correct += int((logits.argmax(-1) == targets).sum())
                count += len(targets)
        self.model.train()
        if count == 0:
            return {"mlm_loss": float("nan"), "mlm_accuracy": float("nan"), "masked_tokens": 0}
        return {"mlm_loss": loss_sum / count, "mlm_accuracy": correct / count, "masked_tokens": count}


def build_mlm(config: AdaptConfig, model_dir: Path, vocab_size: int, say) -> MaskedLM:
    """sentence-transformers checkpoints ship no MLM head, so it starts random (hence the higher learning rate)."""
    import transformers

    from ..modeling.models import resize_embeddings

    model = transformers.AutoModelForMaskedLM.from_pretrained(model_dir)
    if not hasattr(model, "cls") or not hasattr(model, "bert"):
        raise InputError(f"edgebert adapt supports BERT encoders; {model_dir} is a {type(model).__name__}.")
    added = resize_embeddings(model, vocab_size, config.seed)
    if added:
        say(f"added {added} embedding rows for the extended vocabulary")
    return MaskedLM(model, use_bf16(config), added)


def run_epochs(
    config: AdaptConfig, ids: MaskedIds, mlm: MaskedLM, optimizer, scheduler, steps_per_epoch: int, say, progress: bool
) -> tuple[list[dict], list[float]]:
    """Fresh random masks every epoch (RoBERTa's dynamic masking); dev evaluated before and after each epoch.
    Returns (history, per-step losses)."""
    import torch

    history = [{"epoch": 0, **mlm.evaluate(ids)}]
    say(f"before: dev masked-token loss {history[0]['mlm_loss']:.4f}, accuracy {history[0]['mlm_accuracy']:.4f}")
    mlm.model.train()
    rng = np.random.default_rng(config.seed)
    losses: list[float] = []
    bar = progress_bar(total=steps_per_epoch * config.epochs, desc="adapt", unit="step", disable=not progress)
    for epoch in range(1, config.epochs + 1):
        for batch in train_batches(ids.encoder, ids.train_set, config.batch_size, random.Random(config.seed + epoch)):
            batch = _pad_length(batch, LEN_BLOCK, ids.encoder.pad_id, limit=config.max_length)
            inputs, labels = ids.masker.mask(batch.input_ids, batch.attention_mask, rng)
            if (labels == IGNORE).all():  # a batch of very short texts can draw no mask
                scheduler.step()
                bar.update(1)
                continue
            loss, _, _ = mlm.loss(batch, inputs, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(mlm.model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.4f}")
        history.append({"epoch": epoch, **mlm.evaluate(ids)})
        bar.write(
            f"epoch {epoch}: dev masked-token loss {history[-1]['mlm_loss']:.4f}, "
            f"accuracy {history[-1]['mlm_accuracy']:.4f}"
        )
    bar.close()
    return history, losses


def save_encoder(out: Path, force: bool, model_dir: Path, mlm: MaskedLM, ids: MaskedIds, seed: int, report) -> None:
    """The adapted encoder with the base model's pooler (MLM training has none; [CLS] pooling needs it), its
    tokenizer and vocabulary, and the report as edgebert_adapt.json; written atomically."""
    import transformers

    from ..modeling.models import resize_embeddings

    encoder_model = transformers.AutoModel.from_pretrained(model_dir)
    resize_embeddings(encoder_model, ids.vocab_size, seed)
    missing, unexpected = encoder_model.load_state_dict(mlm.model.bert.state_dict(), strict=False)
    if unexpected or any(not key.startswith("pooler.") for key in missing):
        raise InputError(
            f"Adapted weights do not fit {model_dir}'s encoder: missing {missing}, unexpected {unexpected}."
        )
    with atomic_directory(out, force) as tmp:
        encoder_model.save_pretrained(tmp)
        (tmp / TOKENIZER).write_text(ids.tokenizer_json, encoding="utf-8")
        if ids.vocab is not None:
            (tmp / VOCAB_FILE).write_text("\n".join(ids.vocab) + "\n", encoding="utf-8")
        elif (model_dir / VOCAB_FILE).is_file():
            shutil.copy(model_dir / VOCAB_FILE, tmp / VOCAB_FILE)
        for name in HF_TOKENIZER_FILES:
            if (model_dir / name).is_file():
                shutil.copy(model_dir / name, tmp / name)
        (tmp / ADAPT_META).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


class Masker:
    """BERT's masking recipe over real (non-special, non-pad) tokens: choose each with probability p;
    a chosen token becomes [MASK] 80% of the time, a random token from the data 10%, itself 10%."""

    def __init__(self, mask_id: int, special_ids: np.ndarray, probability: float, replacements: np.ndarray) -> None:
        self.mask_id = mask_id
        self.special_ids = special_ids
        self.probability = probability
        self.replacements = replacements  # token ids for the 10% random swaps: the data's own, not [unused*]

    @classmethod
    def for_tokenizer(cls, tokenizer, probability: float, data_ids: list[list[int]]) -> Masker:
        mask_id = tokenizer.token_to_id("[MASK]")
        if mask_id is None:
            raise InputError("The tokenizer has no [MASK] token; masked-language modelling needs a BERT tokenizer.")
        names = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")
        special = np.asarray([tokenizer.token_to_id(n) for n in names if tokenizer.token_to_id(n) is not None])
        seen = np.unique(np.concatenate([np.asarray(ids, dtype=np.int64) for ids in data_ids] or [np.empty(0)]))
        return cls(mask_id, special, probability, seen[~np.isin(seen, special)].astype(np.int64))

    def mask(self, input_ids: np.ndarray, attention_mask: np.ndarray, rng: np.random.Generator):
        """(inputs, labels), both (B, T); labels hold the original id where masked, IGNORE elsewhere."""
        candidates = attention_mask.astype(bool) & ~np.isin(input_ids, self.special_ids)
        chosen = candidates & (rng.random(input_ids.shape) < self.probability)
        labels = np.where(chosen, input_ids, IGNORE)
        roll = rng.random(input_ids.shape)
        inputs = input_ids.copy()
        inputs[chosen & (roll < 0.8)] = self.mask_id
        swap = chosen & (roll >= 0.8) & (roll < 0.9)
        if swap.any() and len(self.replacements):
            inputs[swap] = rng.choice(self.replacements, size=int(swap.sum()))
        return inputs, labels


def _id_set(encoder: TextEncoder, texts: list[str]) -> SimpleNamespace:
    ids, type_ids = encoder.encode(texts)
    return SimpleNamespace(ids=ids, type_ids=type_ids)


def _pad_length(batch, multiple: int, pad_id: int, *, limit: int):
    """Pad a batch's token axis (B, T) up to a multiple of `multiple`, at most `limit`; pad tokens are never
    masked or attended."""
    extra = min(-batch.input_ids.shape[1] % multiple, max(0, limit - batch.input_ids.shape[1]))
    if extra:
        batch.input_ids = np.pad(batch.input_ids, ((0, 0), (0, extra)), constant_values=pad_id)
        batch.attention_mask = np.pad(batch.attention_mask, ((0, 0), (0, extra)))
        batch.token_type_ids = np.pad(batch.token_type_ids, ((0, 0), (0, extra)))
    return batch


def adaptation_texts(
    data: str, eval_data: str | None, *, seed: int, text_column: str = "text"
) -> tuple[list[str], list[str]]:
    """(training texts, dev texts) for `adapt`: --eval when given, else a bundled dataset's dev split, else a
    seeded 5% (at most 2,000 texts) held out of the training file. Labels are never read."""
    from ..data.bundled import bundled_name
    from ..data.load import load_dataset

    texts = load_dataset(data, split="train", text_column=text_column, label_column=None).texts
    if eval_data is not None:
        return texts, load_dataset(eval_data, split="dev", text_column=text_column, label_column=None).texts
    if name := bundled_name(data):
        return texts, load_dataset(f"{name}:dev", split="dev", label_column=None).texts
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    held = set(order[: max(1, min(2000, len(texts) // 20))])
    return [t for i, t in enumerate(texts) if i not in held], [t for i, t in enumerate(texts) if i in held]
