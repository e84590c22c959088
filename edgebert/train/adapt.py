"""Domain-adaptive pre-training: continue masked-language modelling on the task's own texts.

Why: with an extended vocabulary (vocab.py) the new characters' embedding rows start random, and in
fine-tuning they learn only from one label per text. Masked-language modelling gives every character
occurrence its own target, so the encoder learns the new characters (and the domain's wording) from
the same unlabelled texts before it sees a label. This is "don't stop pre-training" (Gururangan et
al., 2020) on the training split only.

Reads top to bottom: tokenizer -> ids -> MLM model -> optimizer -> loop (mask, predict, evaluate) -> save.
The output is a Hugging Face encoder directory (weights with the original pooler, config, tokenizer.json,
vocab.txt, edgebert_adapt.json) that `edgebert train --model DIR` fine-tunes like a bundled encoder.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

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
    transformers = require("transformers", "train")
    from ..modeling.models import resize_embeddings

    out = Path(out)
    say = (lambda message: print(message, file=sys.stderr)) if progress else (lambda _: None)
    check_writable(out, force, inputs=(config.model, source))
    if not train_texts:
        raise InputError("adapt needs at least one training text.")
    seed_everything(torch, config.seed)
    torch.set_num_threads(usable_cpu_count())

    # ---- tokenizer (extended with the data's characters when asked) and ids, truncated at max_length
    model_dir = resolve_model(config.model)
    positions = encoder_positions(model_dir)
    if config.max_length > positions:
        raise InputError(f"--max-length {config.max_length} exceeds the encoder's {positions} positions.")
    tokenizer_json, vocab = prepare_tokenizer(config, model_dir, train_texts, say)
    tokenizer = plain_tokenizer(tokenizer_json)
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    encoder = TextEncoder(tokenizer, config.max_length)
    train_set = _id_set(encoder, train_texts)
    eval_set = _id_set(encoder, eval_texts)
    masker = Masker.for_tokenizer(tokenizer, config.mask_probability, train_set.ids)

    # ---- model: the encoder plus BERT's MLM head (dense -> gelu -> LayerNorm -> decoder tied to the embeddings);
    # sentence-transformers checkpoints ship no MLM head, so it starts random (hence the higher learning rate)
    model = transformers.AutoModelForMaskedLM.from_pretrained(model_dir)
    if not hasattr(model, "cls") or not hasattr(model, "bert"):
        raise InputError(f"edgebert adapt supports BERT encoders; {model_dir} is a {type(model).__name__}.")
    added = resize_embeddings(model, vocab_size, config.seed)
    if added:
        say(f"added {added} embedding rows for the extended vocabulary")

    steps_per_epoch = len(train_batches(encoder, train_set, config.batch_size, random.Random(0)))
    total_steps = steps_per_epoch * config.epochs
    optimizer, scheduler = adamw_with_linear_schedule(torch, model, config, total_steps)
    bf16 = use_bf16(config)
    say(
        f"{len(train_texts)} train / {len(eval_texts)} dev texts; {steps_per_epoch} steps/epoch x {config.epochs} "
        f"(batch {config.batch_size}); masking {config.mask_probability:.0%}; {'bf16 autocast' if bf16 else 'fp32'}"
    )

    def masked_loss(batch, inputs: np.ndarray, labels: np.ndarray):
        """Cross-entropy over the masked positions only: the vocabulary projection is the costliest
        matmul here, so it runs on the ~15% of tokens that have a target, not on all of them."""
        targets = torch.from_numpy(labels)  # (B, T), IGNORE where not masked
        picked = targets != IGNORE
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            hidden = model.bert(
                input_ids=torch.from_numpy(inputs),  # (B, T)
                attention_mask=torch.from_numpy(batch.attention_mask),
                token_type_ids=torch.from_numpy(batch.token_type_ids),
            ).last_hidden_state  # (B, T, H)
            rows, wanted = hidden[picked], targets[picked]  # (M, H), (M,); M = masked tokens in the batch
            pad = -len(wanted) % ROW_BLOCK
            rows = torch.nn.functional.pad(rows, (0, 0, 0, pad))  # zero rows, ignored by the loss
            wanted = torch.nn.functional.pad(wanted, (0, pad), value=IGNORE)
            logits = model.cls(rows)  # (M', V)
        loss = torch.nn.functional.cross_entropy(logits.float(), wanted, ignore_index=IGNORE)
        real = wanted != IGNORE
        return loss, logits[real], wanted[real]

    def evaluate() -> dict[str, float]:
        model.eval()
        rng = np.random.default_rng(EVAL_SEED)
        loss_sum, correct, count = 0.0, 0, 0
        with torch.inference_mode():
            for batch in encoder.batches(eval_set.ids, eval_set.type_ids, 64):
                inputs, labels = masker.mask(batch.input_ids, batch.attention_mask, rng)
                if (labels == IGNORE).all():
                    continue
                loss, logits, targets = masked_loss(batch, inputs, labels)
                loss_sum += loss.item() * len(targets)
                correct += int((logits.argmax(-1) == targets).sum())
                count += len(targets)
        model.train()
        if count == 0:
            return {"mlm_loss": float("nan"), "mlm_accuracy": float("nan"), "masked_tokens": 0}
        return {"mlm_loss": loss_sum / count, "mlm_accuracy": correct / count, "masked_tokens": count}

    history = [{"epoch": 0, **evaluate()}]
    say(f"before: dev masked-token loss {history[0]['mlm_loss']:.4f}, accuracy {history[0]['mlm_accuracy']:.4f}")

    # ---- loop: fresh random masks every epoch (RoBERTa's dynamic masking)
    model.train()
    rng = np.random.default_rng(config.seed)
    losses: list[float] = []
    bar = progress_bar(total=total_steps, desc="adapt", unit="step", disable=not progress)
    for epoch in range(1, config.epochs + 1):
        for batch in train_batches(encoder, train_set, config.batch_size, random.Random(config.seed + epoch)):
            batch = _pad_length(batch, LEN_BLOCK, encoder.pad_id, limit=config.max_length)
            inputs, labels = masker.mask(batch.input_ids, batch.attention_mask, rng)
            if (labels == IGNORE).all():  # a batch of very short texts can draw no mask
                scheduler.step()
                bar.update(1)
                continue
            loss, _, _ = masked_loss(batch, inputs, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.4f}")
        history.append({"epoch": epoch, **evaluate()})
        bar.write(
            f"epoch {epoch}: dev masked-token loss {history[-1]['mlm_loss']:.4f}, "
            f"accuracy {history[-1]['mlm_accuracy']:.4f}"
        )
    bar.close()

    # ---- save: the adapted encoder with the base model's pooler (MLM training has none; [CLS] pooling needs it)
    encoder_model = transformers.AutoModel.from_pretrained(model_dir)
    resize_embeddings(encoder_model, vocab_size, config.seed)
    missing, unexpected = encoder_model.load_state_dict(model.bert.state_dict(), strict=False)
    if unexpected or any(not key.startswith("pooler.") for key in missing):
        raise InputError(
            f"Adapted weights do not fit {model_dir}'s encoder: missing {missing}, unexpected {unexpected}."
        )
    report = {
        "base_model": config.model,
        "train_source": source,
        "train_texts": len(train_texts),
        "eval_texts": len(eval_texts),
        "vocab_size": vocab_size,
        "added_tokens": added,
        "config": dataclasses.asdict(config),
        "history": history,
        "losses": losses,
    }
    with atomic_directory(out, force) as tmp:
        encoder_model.save_pretrained(tmp)
        (tmp / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
        if vocab is not None:
            (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        elif (model_dir / "vocab.txt").is_file():
            shutil.copy(model_dir / "vocab.txt", tmp / "vocab.txt")
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            if (model_dir / name).is_file():
                shutil.copy(model_dir / name, tmp / name)
        (tmp / ADAPT_META).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return report


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
