"""Generate text with an exported model. Copied into every export bundle as `inference.py`.

Standalone on purpose: it needs numpy and onnxruntime (and Hugging Face `tokenizers` for a
byte-level BPE tokenizer), reads only the bundle's own files, and imports nothing of the service
that trained the model.

    pip install numpy onnxruntime tokenizers
    python inference.py --prompt "To be" --max-new-tokens 50 --temperature 0.8 --top-k 20 --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

BUNDLE = Path(__file__).resolve().parent
# The tokenizer's specials (both kinds): <pad> 0, <eos> 1, <unk> 2. The models were trained with
# <eos> before every text, so a prompt starts with it too.
SPECIALS = ("<pad>", "<eos>", "<unk>")
EOS_ID, UNK_ID = 1, 2
UNKNOWN_CHAR = "\ufffd"

Logits = npt.NDArray[np.float32]
TokenIds = npt.NDArray[np.int64]


class Session(Protocol):
    """What generation needs of an onnxruntime.InferenceSession."""

    def run(self, output_names: list[str], input_feed: dict[str, TokenIds]) -> Sequence[object]: ...


class Codec(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class CharCodec:
    """One token per character, from tokenizer.json's vocabulary; a character it lacks is <unk>,
    shown as U+FFFD; the other specials decode to nothing."""

    def __init__(self, vocab: dict[str, int]) -> None:
        self.ids = vocab
        self.chars = {index: token for token, index in vocab.items()}

    def encode(self, text: str) -> list[int]:
        return [self.ids.get(char, UNK_ID) for char in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self._char(index) for index in ids)

    def _char(self, index: int) -> str:
        if index == UNK_ID:
            return UNKNOWN_CHAR
        token = self.chars[index]
        return "" if token in SPECIALS else token


class BPECodec:
    """Byte-level BPE through Hugging Face `tokenizers` and the bundle's tokenizer.json."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self.hf = Tokenizer.from_file(str(path))
        self.hf.encode_special_tokens = True  # a literal "<eos>" in a prompt is text

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=True)


def read_json(path: Path) -> dict[str, object]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise SystemExit(f"{path} does not hold a JSON object")
    return value


def load_codec(model_dir: Path) -> Codec:
    kind = read_json(model_dir / "tokenizer_meta.json").get("kind")
    if kind == "bpe":
        return BPECodec(model_dir / "tokenizer.json")
    model = read_json(model_dir / "tokenizer.json").get("model")
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if kind != "char" or not isinstance(vocab, dict):
        raise SystemExit(f"no char or bpe tokenizer in {model_dir}")
    return CharCodec({str(token): int(index) for token, index in vocab.items()})


def context_of(model_dir: Path) -> int | None:
    """The longest input the model takes (gpt2's n_positions); a recurrent net has no limit."""
    n_positions = read_json(model_dir / "config.json").get("n_positions")
    return n_positions if isinstance(n_positions, int) else None


def next_logits(session: Session, ids: list[int]) -> Logits:
    """The logits after the last of `ids` (the graph computes every position; one is kept)."""
    outputs = session.run(["logits"], {"input_ids": np.array([ids], dtype=np.int64)})
    logits = outputs[0]
    if not isinstance(logits, np.ndarray):
        raise SystemExit("model.onnx did not return a logits tensor")
    last: Logits = logits[0, -1].astype(np.float32)
    return last


def sample(logits: Logits, *, temperature: float, top_k: int, rng: np.random.Generator) -> int:
    """Temperature 0 is greedy; top_k 0 keeps every token."""
    if temperature == 0:
        return int(np.argmax(logits))
    scores = logits.astype(np.float64) / temperature
    if 0 < top_k < scores.size:
        kth = np.partition(scores, -top_k)[-top_k]
        scores = np.where(scores < kth, -np.inf, scores)
    probs = np.exp(scores - scores.max())
    return int(rng.choice(scores.size, p=probs / probs.sum()))


def generate(
    session: Session,
    prompt_ids: list[int],
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    seed: int | None,
    context: int | None,
    stop_on_eos: bool,
) -> list[int]:
    """New token ids, one forward pass over the (windowed) sequence per token."""
    rng = np.random.default_rng(seed)
    ids = [EOS_ID, *prompt_ids]
    new: list[int] = []
    for _ in range(max_new_tokens):
        window = ids if context is None else ids[-context:]
        token = sample(next_logits(session, window), temperature=temperature, top_k=top_k, rng=rng)
        if stop_on_eos and token == EOS_ID:
            break
        ids.append(token)
        new.append(token)
    return new


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Generate text with this bundle's model.onnx.")
    parser.add_argument("--prompt", default="", help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest; 0: all")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same text")
    parser.add_argument("--stop-on-eos", action="store_true", help="end at the model's <eos>")
    parser.add_argument("--json", action="store_true", help="print text and token ids as JSON")
    parser.add_argument("--bundle", type=Path, default=BUNDLE, help="the bundle's directory")
    args = parser.parse_args(argv)
    if args.max_new_tokens < 0 or args.temperature < 0 or args.top_k < 0:
        parser.error("--max-new-tokens, --temperature and --top-k take values >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    model_dir = args.bundle / "model"
    codec = load_codec(model_dir)
    session = ort.InferenceSession(
        str(args.bundle / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    new = generate(
        session,
        codec.encode(args.prompt),
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        context=context_of(model_dir),
        stop_on_eos=args.stop_on_eos,
    )
    text = args.prompt + codec.decode(new)
    if args.json:
        print(json.dumps({"text": text, "new_token_ids": new}, ensure_ascii=False))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
