"""An export bundle: one directory named after the run, packed as a .tar.gz.

{run_id}/model/         the run's Hugging Face files (safetensors weights, config, tokenizer)
{run_id}/model.onnx     input_ids (batch, seq) -> logits (batch, seq, vocab)
{run_id}/inference.py   standalone generation with numpy + onnxruntime
{run_id}/README.md      what is inside, how to run it, where it came from
{run_id}/manifest.json  the run's manifest
{run_id}/SHA256SUMS     `sha256sum -c SHA256SUMS` checks every other file
"""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

from model_trainer.contracts.model import PreparedLMModel
from model_trainer.export import standalone_inference
from model_trainer.export.onnx_graph import export_onnx
from model_trainer.storage.digests import (
    file_sha256,
    ordinary_permissions,
    parse_digests,
    plain_files,
    verify_files,
)
from model_trainer.storage.runs import ARTIFACTS_KEY, MANIFEST_FILE, unreadable_manifest
from platform_core.json_types import (
    JSONObject,
    load_json_object,
    optional_float,
    optional_object,
    optional_str,
    require_float,
    require_int,
    require_object,
    require_str,
)

MODEL_DIR = "model"
ONNX_FILE = "model.onnx"
INFERENCE_FILE = "inference.py"
README_FILE = "README.md"
SUMS_FILE = "SHA256SUMS"


def assemble(
    prepared: PreparedLMModel,
    run_directory: Path,
    work: Path,
    *,
    opset: int,
    save_weights: Callable[[Path], object] | None = None,
) -> tuple[Path, list[str]]:
    """Write the bundle's directory under `work`; its path and its files (relative, sorted).
    A checkpoint's export writes the loaded weights (`save_weights`) over the run's final ones
    in `model/`, so the HF directory and the ONNX graph are the same model."""
    manifest_bytes = (run_directory / MANIFEST_FILE).read_bytes()
    manifest = load_json_object(manifest_bytes)
    run_id = run_directory.name
    top = work / run_id
    model_dir = top / MODEL_DIR
    _copy_model_files(run_directory, model_dir, manifest)
    if save_weights is not None:
        save_weights(model_dir)
    export_onnx(prepared, top / ONNX_FILE, opset)
    shutil.copyfile(standalone_inference.__file__, top / INFERENCE_FILE)
    (top / MANIFEST_FILE).write_bytes(manifest_bytes)
    with unreadable_manifest(run_id):
        (top / README_FILE).write_text(readme(manifest, opset), encoding="utf-8")
    files = sorted(path.relative_to(top).as_posix() for path in top.rglob("*") if path.is_file())
    sums = "".join(f"{file_sha256(top / name)}  {name}\n" for name in files)
    (top / SUMS_FILE).write_text(sums, encoding="utf-8")
    for directory in (top, model_dir):
        ordinary_permissions(directory)
    return top, sorted([*files, SUMS_FILE])


def _copy_model_files(run_directory: Path, model_dir: Path, manifest: JSONObject) -> None:
    """The run's files (checkpoints and manifest left out), checked against the digests its
    manifest records once copied, so the bundle holds exactly what was trained."""
    model_dir.mkdir(parents=True)
    for name in plain_files(run_directory, exclude=[MANIFEST_FILE]):
        shutil.copyfile(run_directory / name, model_dir / name)
    recorded = optional_object(manifest, ARTIFACTS_KEY)
    if recorded is not None:
        verify_files(model_dir, parse_digests(recorded, run_directory / MANIFEST_FILE))


def pack(top: Path, out: Path) -> None:
    """`top` as a gzipped tar whose one member directory is `top`'s name; owners and times are
    normalised, so the archive says nothing about the worker that wrote it."""

    def plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(out, "w:gz") as archive:
        archive.add(top, arcname=top.name, filter=plain)


def readme(manifest: JSONObject, opset: int) -> str:
    """The bundle's README: contents, how to run it, and provenance from the run's manifest."""
    run_id = require_str(manifest, "run_id")
    family = require_str(manifest, "model_family")
    contents = [
        (f"`{MODEL_DIR}/`", "the model in Hugging Face's layout (safetensors, config, tokenizer)"),
        (
            f"`{ONNX_FILE}`",
            f"ONNX (opset {opset}): `input_ids` int64 [batch, seq] -> "
            "`logits` float32 [batch, seq, vocab]",
        ),
        (f"`{INFERENCE_FILE}`", "standalone text generation with numpy and onnxruntime"),
        (f"`{MANIFEST_FILE}`", "the training run's manifest: full config, metrics, digests"),
        (f"`{SUMS_FILE}`", f"sha256 of every other file: `sha256sum -c {SUMS_FILE}`"),
    ]
    return "\n".join(
        [
            f"# {run_id}: a {family} language model",
            "",
            "Exported by model-trainer. Everything here works without the service that trained it.",
            "",
            "## Contents",
            "",
            _table(("file", "what"), contents),
            "",
            _HF_USAGE[family == "gpt2"],
            "",
            "## Run it",
            "",
            "    pip install numpy onnxruntime tokenizers",
            f'    python {INFERENCE_FILE} --prompt "Once upon a time" --max-new-tokens 50 \\',
            "        --temperature 0.8 --top-k 20 --seed 0",
            "",
            "`--temperature 0` is greedy, `--stop-on-eos` ends at the model's end-of-text token,",
            "`--json` prints the text with the new token ids. Every text was trained with the",
            "`<eos>` token (id 1) before it, so generation starts from `<eos>` and the prompt.",
            "",
            "## Provenance",
            "",
            _table(("", ""), _provenance(manifest)),
            "",
        ]
    )


_HF_USAGE = {
    True: '`transformers.AutoModelForCausalLM.from_pretrained("model")` and\n'
    '`AutoTokenizer.from_pretrained("model")` load `model/` as it is.',
    False: "`model/model.safetensors` holds the LSTM's weights, `model/config.json` its shape;\n"
    'the tokenizer loads with `AutoTokenizer.from_pretrained("model")`.',
}


def _provenance(manifest: JSONObject) -> list[tuple[str, str]]:
    metrics = require_object(manifest, "metrics")
    versions = require_object(manifest, "library_versions")
    val_loss = optional_float(metrics, "val_loss")
    corpus = f"{require_str(manifest, 'corpus_sha256')} ({require_int(manifest, 'corpus_bytes')} B)"
    trained = f"{require_str(manifest, 'created_at')} to {require_str(manifest, 'completed_at')}"
    return [
        ("run_id", require_str(manifest, "run_id")),
        ("model family", require_str(manifest, "model_family")),
        ("model size", require_str(manifest, "model_size")),
        ("parameters", str(require_int(manifest, "num_params"))),
        ("tokenizer", require_str(manifest, "tokenizer_id")),
        ("corpus sha256", corpus),
        ("final train loss", f"{require_float(metrics, 'loss'):.4f}"),
        ("final val loss", "n/a" if val_loss is None else f"{val_loss:.4f}"),
        ("steps", str(require_int(metrics, "steps"))),
        ("trained", f"{trained} on {require_str(manifest, 'device')}"),
        ("code version", f"git commit {optional_str(manifest, 'git_commit') or 'unknown'}"),
        ("libraries", ", ".join(f"{k} {require_str(versions, k)}" for k in sorted(versions))),
    ]


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return "\n".join([*lines, *(f"| {name} | {value} |" for name, value in rows)])
