"""Export bundles: ONNX logits equal ours, the bundle's files and digests, and its inference.py
generating in a fresh process that cannot import this service."""

from __future__ import annotations

import hashlib
import json
import runpy
import sys
import tarfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tests.support.backends import train_cfg, train_run
from tests.support.exports import (
    BUNDLE_FILES,
    Exported,
    bpe_tokenizer,
    export_tiny,
    module_settings,
    run_isolated,
)

from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.contracts.export import ONNX_OPSET, make_export_config
from model_trainer.contracts.jobs import ExportJobPayload
from model_trainer.contracts.model import PreparedLMModel
from model_trainer.errors import ModelTrainerError
from model_trainer.export import standalone_inference
from model_trainer.export.bundle import readme
from model_trainer.export.onnx_graph import export_onnx
from model_trainer.settings import Settings
from model_trainer.storage.runs import MANIFEST_FILE
from model_trainer.worker.export_job import export_run

# (batch, seq) pairs the exported graphs are run at: both axes vary from the traced example.
SHAPES = [(1, 1), (1, 7), (3, 20), (2, 64)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    """gpt2 and char_lstm with the char tokenizer, char_lstm with BPE: trained, exported once."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    settings = module_settings(tmp_path_factory.mktemp("exports"))
    return {
        "gpt2": export_tiny(settings, "gpt2", "a" * 32),
        "char_lstm": export_tiny(settings, "char_lstm", "b" * 32),
        "char_lstm-bpe": export_tiny(settings, "char_lstm", "c" * 32, bpe_tokenizer()),
    }


@pytest.mark.parametrize("name", ["gpt2", "char_lstm", "char_lstm-bpe"])
def test_onnxruntime_logits_match_ours_at_any_batch_and_length(
    exported: dict[str, Exported], name: str
) -> None:
    case = exported[name]
    model = case.prepared["model"]
    session = ort.InferenceSession(str(case.top / "model.onnx"), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    for batch, seq in SHAPES:
        ids = torch.randint(0, model.vocab_size, (batch, seq), generator=generator)
        with torch.inference_mode():
            ours = model(ids).numpy()
        (theirs,) = session.run(["logits"], {"input_ids": ids.numpy()})
        assert isinstance(theirs, np.ndarray)
        assert theirs.dtype == np.float32
        assert theirs.shape == (batch, seq, model.vocab_size)
        assert float(np.abs(theirs - ours).max()) < 1e-4


@pytest.mark.parametrize("name", ["gpt2", "char_lstm"])
def test_the_graph_declares_dynamic_batch_and_sequence_axes(
    exported: dict[str, Exported], name: str
) -> None:
    graph = onnx.load(str(exported[name].top / "model.onnx"))
    assert graph.opset_import[0].version == ONNX_OPSET
    (inp,) = graph.graph.input
    (out,) = graph.graph.output
    assert (inp.name, out.name) == ("input_ids", "logits")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    for value in (inp, out):
        dims = value.type.tensor_type.shape.dim
        assert [dim.dim_param != "" for dim in dims[:2]] == [True, True]
    vocab = exported[name].prepared["model"].vocab_size
    assert out.type.tensor_type.shape.dim[2].dim_value == vocab


@pytest.mark.parametrize("name", ["gpt2", "char_lstm"])
def test_the_bundle_holds_every_file_with_its_digest(
    exported: dict[str, Exported], name: str
) -> None:
    case = exported[name]
    expected = sorted(
        [*BUNDLE_FILES, *(["model/generation_config.json"] if name == "gpt2" else [])]
    )
    assert case.outcome["files"] == expected
    assert case.outcome["run_id"] == f"{name}-char"
    assert case.outcome["bundle_bytes"] == case.bundle.stat().st_size
    assert case.outcome["sha256"] == hashlib.sha256(case.bundle.read_bytes()).hexdigest()
    with tarfile.open(case.bundle) as archive:
        members = archive.getmembers()
    assert {member.name.split("/")[0] for member in members} == {f"{name}-char"}
    assert all(member.uid == 0 and member.uname == "" for member in members)
    listed = {}
    for line in (case.top / "SHA256SUMS").read_text().splitlines():
        digest, _, file = line.partition("  ")
        listed[file] = digest
    assert sorted(listed) == [file for file in expected if file != "SHA256SUMS"]
    for file, digest in listed.items():
        assert hashlib.sha256((case.top / file).read_bytes()).hexdigest() == digest


def test_the_model_directory_is_the_runs_files_and_the_manifest_is_the_runs(
    exported: dict[str, Exported],
) -> None:
    case = exported["gpt2"]
    run = case.run
    assert (case.top / "manifest.json").read_bytes() == (run / MANIFEST_FILE).read_bytes()
    for file in (case.top / "model").iterdir():
        assert file.read_bytes() == (run / file.name).read_bytes()
    assert oct((case.top / "model.onnx").stat().st_mode & 0o777) == "0o644"


def test_the_readme_says_what_is_inside_and_where_it_came_from(
    exported: dict[str, Exported],
) -> None:
    case = exported["gpt2"]
    text = (case.top / "README.md").read_text()
    manifest = json.loads((case.top / "manifest.json").read_text())
    for fact in (
        "# gpt2-char: a gpt2 language model",
        "| run_id | gpt2-char |",
        "| model size | tiny |",
        f"| corpus sha256 | {manifest['corpus_sha256']} (",
        f"| final train loss | {manifest['metrics']['loss']:.4f} |",
        f"| code version | git commit {manifest['git_commit']} |",
        f"ONNX (opset {ONNX_OPSET})",
        "python inference.py --prompt",
        "AutoModelForCausalLM.from_pretrained",
    ):
        assert fact in text


def test_a_readme_without_val_loss_or_commit_says_so(exported: dict[str, Exported]) -> None:
    manifest = json.loads((exported["char_lstm"].top / "manifest.json").read_text())
    manifest["metrics"]["val_loss"] = None
    manifest["git_commit"] = None
    text = readme(manifest, ONNX_OPSET)
    assert "| final val loss | n/a |" in text
    assert "| code version | git commit unknown |" in text
    assert "LSTM's weights" in text


@pytest.mark.parametrize("name", ["gpt2", "char_lstm", "char_lstm-bpe"])
def test_inference_py_generates_in_a_fresh_process_with_only_the_bundle(
    exported: dict[str, Exported], name: str
) -> None:
    top = exported[name].top
    args = ["--prompt", "To be", "--max-new-tokens", "5", "--seed", "0", "--top-k", "10"]
    first = run_isolated(top, *args, "--json")
    assert first.returncode == 0, first.stderr
    again = run_isolated(top, *args, "--json")
    assert again.stdout == first.stdout
    answer = json.loads(first.stdout)
    assert len(answer["new_token_ids"]) == 5
    codec_text = answer["text"]
    assert codec_text.startswith("To be")
    plain = run_isolated(top, *args)
    assert plain.stdout == codec_text + "\n"


def test_the_isolation_really_refuses_the_service(exported: dict[str, Exported]) -> None:
    top = exported["char_lstm"].top
    (top / "probe.py").write_text("import model_trainer\n")
    refused = run_isolated(top, script="probe.py")
    assert refused.returncode != 0
    assert "model_trainer is not part of the bundle" in refused.stderr


def test_inference_main_in_process_greedy_is_the_torch_models_argmax(
    exported: dict[str, Exported], capsys: pytest.CaptureFixture[str]
) -> None:
    case = exported["gpt2"]
    args = ["--bundle", str(case.top), "--prompt", "To", "--max-new-tokens", "4"]
    assert standalone_inference.main([*args, "--temperature", "0", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    tokenizer = case.prepared["tokenizer"]
    ids = [case.prepared["eos_id"], *tokenizer.encode("To")]
    with torch.inference_mode():
        for _ in range(4):
            ids.append(int(case.prepared["model"](torch.tensor([ids]))[0, -1].argmax()))
    assert answer["new_token_ids"] == ids[-4:]
    assert answer["text"] == "To" + tokenizer.decode(ids[-4:])


def test_sampling_keeps_only_the_top_k_and_stops_on_eos_when_asked() -> None:
    logits = np.array([0.0, 5.0, 4.0, -3.0], dtype=np.float32)
    rng = np.random.default_rng(0)
    draws = {
        standalone_inference.sample(logits, temperature=1.0, top_k=2, rng=rng) for _ in range(200)
    }
    assert draws == {1, 2}
    assert standalone_inference.sample(logits, temperature=0.0, top_k=0, rng=rng) == 1

    class AlwaysEos:
        def run(
            self, output_names: list[str], input_feed: dict[str, standalone_inference.TokenIds]
        ) -> list[object]:
            assert input_feed["input_ids"].shape[1] <= 2  # the window the context allows
            return [np.array([[[0.0, 9.0, 0.0]]], dtype=np.float32)]

    def greedy(stop_on_eos: bool) -> list[int]:
        return standalone_inference.generate(
            AlwaysEos(),
            [2, 2, 2],
            max_new_tokens=3,
            temperature=0.0,
            top_k=0,
            seed=0,
            context=2,
            stop_on_eos=stop_on_eos,
        )

    assert greedy(True) == []
    assert greedy(False) == [1, 1, 1]


def test_a_session_answering_no_tensor_is_refused() -> None:
    class NoTensor:
        def run(
            self, output_names: list[str], input_feed: dict[str, standalone_inference.TokenIds]
        ) -> list[object]:
            return [[1.0]]

    with pytest.raises(SystemExit, match="did not return a logits tensor"):
        standalone_inference.next_logits(NoTensor(), [1])


def test_the_char_codec_maps_unknown_characters_to_unk_and_hides_other_specials() -> None:
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, "a": 3, "b": 4}
    codec = standalone_inference.CharCodec(vocab)
    assert codec.encode("abz") == [3, 4, 2]
    assert codec.decode([3, 0, 1, 2, 4]) == "a\ufffdb"


def test_a_bundle_without_a_known_tokenizer_or_with_bad_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_meta.json").write_text('{"kind": "wordpiece"}')
    (tmp_path / "tokenizer.json").write_text('{"model": {"vocab": {}}}')
    with pytest.raises(SystemExit, match="no char or bpe tokenizer"):
        standalone_inference.load_codec(tmp_path)
    (tmp_path / "tokenizer_meta.json").write_text("[1]")
    with pytest.raises(SystemExit, match="does not hold a JSON object"):
        standalone_inference.load_codec(tmp_path)


@pytest.mark.parametrize("flag", ["--max-new-tokens", "--temperature", "--top-k"])
def test_negative_sampling_options_are_refused(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        standalone_inference.parse_args([flag, "-1"])
    assert caught.value.code == 2
    assert "take values >= 0" in capsys.readouterr().err


def test_the_script_runs_as_main(
    exported: dict[str, Exported],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    top = exported["char_lstm-bpe"].top
    argv = ["inference.py", "--bundle", str(top), "--prompt", "To", "--max-new-tokens", "3"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as caught:
        runpy.run_path(standalone_inference.__file__, run_name="__main__")
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("To")


def test_a_model_the_exporter_cannot_trace_is_export_failed(
    exported: dict[str, Exported], tmp_path: Path
) -> None:
    prepared = exported["char_lstm"].prepared
    with pytest.raises(ModelTrainerError) as caught:
        export_onnx(prepared, tmp_path / "m.onnx", opset=1)
    assert caught.value.code == "EXPORT_FAILED"
    assert "char_lstm" in caught.value.message


def test_a_model_of_another_family_keeps_its_own_code(
    exported: dict[str, Exported], tmp_path: Path
) -> None:
    prepared: PreparedLMModel = {**exported["char_lstm"].prepared, "model_family": "gpt2"}
    with pytest.raises(ModelTrainerError) as caught:
        export_onnx(prepared, tmp_path / "m.onnx", opset=ONNX_OPSET)
    assert caught.value.code == "MODEL_INCOMPATIBLE"


def _payload(job_id: str, run_id: str) -> ExportJobPayload:
    return {
        "job_id": job_id,
        "user_id": 1,
        "run_id": run_id,
        "step": None,
        "config": make_export_config(),
    }


def test_a_cancelled_export_leaves_nothing_behind(settings: Settings, corpus_path: Path) -> None:
    cfg = train_cfg("char_lstm", corpus_path, max_steps=2)
    prepared, _, _ = train_run(CHAR_LSTM_BACKEND, settings, cfg, "r-cancel")
    with pytest.raises(ModelTrainerError) as caught:
        export_run(_payload("d" * 32, "r-cancel"), prepared, settings, lambda: True)
    assert caught.value.code == "TRAINING_CANCELLED"
    assert list((settings["artifacts_root"] / "exports").iterdir()) == []


def test_a_run_file_changed_since_it_was_recorded_is_never_bundled(
    settings: Settings, corpus_path: Path
) -> None:
    cfg = train_cfg("char_lstm", corpus_path, max_steps=2)
    prepared, _, directory = train_run(CHAR_LSTM_BACKEND, settings, cfg, "r-tampered")
    (directory / "config.json").write_text('{"tampered": true}')
    with pytest.raises(ModelTrainerError) as caught:
        export_run(_payload("d" * 32, "r-tampered"), prepared, settings, lambda: False)
    assert caught.value.code == "ARTIFACT_CORRUPT"
    assert list((settings["artifacts_root"] / "exports").iterdir()) == []


def test_a_run_from_before_digests_is_bundled_unverified(
    settings: Settings, corpus_path: Path
) -> None:
    cfg = train_cfg("char_lstm", corpus_path, max_steps=2)
    prepared, _, directory = train_run(CHAR_LSTM_BACKEND, settings, cfg, "r-old")
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    del manifest["artifacts"]
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest))
    outcome = export_run(_payload("d" * 32, "r-old"), prepared, settings, lambda: False)
    assert "model/model.safetensors" in outcome["files"]
