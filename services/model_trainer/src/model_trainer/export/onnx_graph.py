"""A trained model as an ONNX graph: `input_ids` int64 (batch, seq) in, `logits` float32
(batch, seq, vocab) out, both axes dynamic.

Each family goes through the exporter that keeps both axes dynamic with torch 2.13:
- gpt2: torch.export (`dynamo=True`). The TorchScript exporter cannot translate the `aten::diff`
  that transformers' mask code uses.
- char_lstm: TorchScript (`dynamo=False`). torch.export specializes an `nn.LSTM`'s time axis to
  the example's length (pytorch/pytorch#115092), so the graph would declare one fixed length.

The model is exported on the CPU in float32 from a copy, so the worker's cached model (perhaps on
a GPU) is left as it is and every worker writes the same graph.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn
from torch.export import Dim

from model_trainer.backends.char_lstm import as_char_lstm
from model_trainer.backends.gpt2 import as_gpt2
from model_trainer.contracts.model import PreparedLMModel
from model_trainer.errors import ModelTrainerError

INPUT_NAME = "input_ids"
OUTPUT_NAME = "logits"
# The example the exporters trace: a length unlike any dimension of the model, of eos tokens
# (no padding, so transformers has nothing to warn about).
_EXAMPLE_BATCH, _EXAMPLE_SEQ = 2, 13

# The torch.export-based exporter logs that torchvision's operators are not registered: noise.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


def export_onnx(prepared: PreparedLMModel, path: Path, opset: int) -> None:
    """Write the model's graph to `path` and check it with onnx's checker (EXPORT_FAILED)."""
    try:
        if prepared["model_family"] == "gpt2":
            hf = as_gpt2(prepared["model"])
            _export_dynamo(_cpu_copy(hf), path, opset, hf.context, prepared["eos_id"])
        else:
            lstm = as_char_lstm(prepared["model"])
            _export_torchscript(_cpu_copy(lstm), path, opset, prepared["eos_id"])
        onnx.checker.check_model(str(path), full_check=True)
    except ModelTrainerError:
        raise
    except Exception as exc:
        raise ModelTrainerError(
            "EXPORT_FAILED",
            f"the {prepared['model_family']} model could not be exported to ONNX: {exc!r}",
        ) from exc


def _cpu_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()


def _example(eos_id: int, batch: int, seq: int) -> torch.Tensor:
    return torch.full((batch, seq), eos_id, dtype=torch.int64)


def _export_dynamo(model: nn.Module, path: Path, opset: int, context: int, eos_id: int) -> None:
    seq = Dim("seq", min=1, max=context)
    with warnings.catch_warnings():
        # Warnings about torch.export's own internals (deprecated pytree classes): noise here.
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            model,
            (_example(eos_id, _EXAMPLE_BATCH, min(_EXAMPLE_SEQ, context)),),
            str(path),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={INPUT_NAME: {0: Dim("batch"), 1: seq}},
            opset_version=opset,
            external_data=False,
            verbose=False,
        )


def _export_torchscript(model: nn.Module, path: Path, opset: int, eos_id: int) -> None:
    axes = {0: "batch", 1: "seq"}
    with warnings.catch_warnings():
        # torch 2.9+ calls this exporter legacy (it is the one that keeps an LSTM's time axis);
        # tracing notes that shape checks become constants and that an LSTM's batch may vary.
        # The graph is checked, and the tests compare its logits at several batches and lengths.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (_example(eos_id, 1, _EXAMPLE_SEQ),),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
            opset_version=opset,
        )
