"""What an export job is asked for and what it reports: a run turned into a portable bundle."""

from __future__ import annotations

from typing_extensions import TypedDict

# ONNX opset of the exported graph: onnxruntime >= 1.14 runs it, and both exporters we use
# (torch.export for gpt2, TorchScript for char_lstm) emit it.
ONNX_OPSET = 18
# The HTTP header a bundle's sha256 travels in, so a client checks what it downloaded.
BUNDLE_SHA256_HEADER = "X-Bundle-SHA256"


class ExportConfig(TypedDict):
    """How to export; which model is the payload's (a run today, a checkpoint or a registry
    version as they arrive)."""

    onnx_opset: int


class ExportOutcome(TypedDict):
    """The export job's result: the stored bundle, its digest and the files inside it (paths
    relative to the bundle's top directory, which is named after the run)."""

    run_id: str
    bundle_bytes: int
    sha256: str
    files: list[str]


def make_export_config() -> ExportConfig:
    return {"onnx_opset": ONNX_OPSET}
