"""`model-trainer`: train and sample models from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from model_trainer.backends.registry import check_model_size, get_backend
from model_trainer.contracts.defaults import make_generate_config, make_train_config
from model_trainer.contracts.model import StepMetrics, TrainOutcome
from model_trainer.contracts.validators import parse_model_family
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings, load_settings
from model_trainer.storage.corpora import build_default_corpus, read_corpus
from model_trainer.storage.runs import run_dir
from model_trainer.tokenizers.char import CharTokenizer

DEFAULT_CORPUS = "stdlib.txt"


def _print_progress(metrics: StepMetrics) -> None:
    print(
        f"step {metrics['step']:>5}/{metrics['total_steps']}  epoch {metrics['epoch']}  "
        f"loss {metrics['loss']:.4f}  lr {metrics['learning_rate']:.2e}  "
        f"{metrics['tokens_per_second']:,.0f} tok/s",
        flush=True,
    )


def local_train(args: argparse.Namespace, settings: Settings) -> TrainOutcome:
    """Train in this process (no queue): the library path the service's worker also takes."""
    family = parse_model_family(args.family)
    check_model_size(family, args.size)
    corpus_path = args.corpus or str(build_default_corpus(settings["data_root"] / DEFAULT_CORPUS))
    cfg = make_train_config(
        model_family=family,
        model_size=args.size,
        corpus_path=corpus_path,
        max_seq_len=args.seq_len,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_steps=args.max_steps,
        num_epochs=args.epochs,
        seed=args.seed,
        warmup_steps=min(50, args.max_steps // 10),
        log_every_steps=args.log_every,
        device=args.device,
    )
    corpus = read_corpus(corpus_path, settings)
    tokenizer = CharTokenizer.build(corpus["text"], f"char-{corpus['sha256'][:12]}")
    backend = get_backend(family)
    prepared = backend.prepare(cfg, settings, tokenizer=tokenizer)
    directory = run_dir(settings, args.run_id)
    print(
        f"training {family}/{args.size} on {corpus_path} ({corpus['bytes']:,} bytes) -> {directory}"
    )
    outcome = backend.train(
        cfg,
        settings,
        run_dir=str(directory),
        prepared=prepared,
        callbacks={
            "heartbeat": lambda _: None,
            "cancelled": lambda: False,
            "progress": _print_progress,
        },
    )
    print(
        f"done: {outcome['steps']} steps in {outcome['elapsed_s']:.1f}s, "
        f"train loss {outcome['loss']:.4f}, val loss {outcome['val_loss']}"
    )
    return outcome


def local_generate(args: argparse.Namespace, settings: Settings) -> list[str]:
    family = parse_model_family(args.family)
    backend = get_backend(family)
    prepared = backend.load(str(run_dir(settings, args.run_id)), settings)
    cfg = make_generate_config(
        prompt_text=args.prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        num_return_sequences=args.num,
    )
    outcome = backend.generate(prepared=prepared, cfg=cfg, settings=settings)
    for index, text in enumerate(outcome["outputs"]):
        print(f"--- sample {index + 1} ---\n{text}")
    return outcome["outputs"]


def demo(args: argparse.Namespace, settings: Settings) -> None:
    """Train a small char-LSTM on the default corpus, then sample from it (`make run`)."""
    local_train(args, settings)
    args.prompt = "def "
    args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.num = 200, 0.8, 0, 0.95, 2
    local_generate(args, settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-trainer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = argparse.ArgumentParser(add_help=False)
    train.add_argument("--family", default="char_lstm")
    train.add_argument("--size", default="small")
    train.add_argument("--corpus", default=None, help="default: Python's stdlib sources")
    train.add_argument("--max-steps", type=int, default=300)
    train.add_argument("--epochs", type=int, default=100)
    train.add_argument("--seq-len", type=int, default=128)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=4e-3)
    train.add_argument("--log-every", type=int, default=25)
    train.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--run-id", default=f"local-{int(time.time())}")
    sample = argparse.ArgumentParser(add_help=False)
    sample.add_argument("--prompt", default="")
    sample.add_argument("--max-new-tokens", type=int, default=200)
    sample.add_argument("--temperature", type=float, default=0.8)
    sample.add_argument("--top-k", type=int, default=0)
    sample.add_argument("--top-p", type=float, default=1.0)
    sample.add_argument("--num", type=int, default=1)
    commands.add_parser("local-train", parents=[train], help="train in this process")
    generate = commands.add_parser("local-generate", parents=[sample], help="sample from a run")
    generate.add_argument("--family", default="char_lstm")
    generate.add_argument("--run-id", required=True)
    generate.add_argument("--seed", type=int, default=None)
    commands.add_parser("demo", parents=[train], help="train, then sample (make run)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings()
    handlers = {"local-train": local_train, "local-generate": local_generate, "demo": demo}
    try:
        handlers[args.command](args, settings)
    except ModelTrainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
