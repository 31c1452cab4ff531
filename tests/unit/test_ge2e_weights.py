"""The GE2E (Resemblyzer) frontend loads its checkpoint strictly (defect 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from speakerrpl.errors import ModelLoadError
from speakerrpl.frontends.ge2e import _GE2E, ResemblyzerFrontend


def _checkpoint(path: Path, drop: str | None = None) -> Path:
    state = {k: v for k, v in _GE2E().state_dict().items() if k != drop}
    state |= {"similarity_weight": torch.tensor([10.0]), "similarity_bias": torch.tensor([-5.0])}
    torch.save({"model_state": state}, path)
    return path


def test_a_complete_checkpoint_loads_and_a_missing_weight_is_an_error(tmp_path: Path) -> None:
    full = _checkpoint(tmp_path / "full.pt")
    frontend = ResemblyzerFrontend(weights=full)
    saved = torch.load(full, weights_only=True)["model_state"]
    assert torch.equal(frontend.model.linear.weight, saved["linear.weight"])
    with pytest.raises(ModelLoadError, match=r"Missing key.*linear\.weight"):
        ResemblyzerFrontend(weights=_checkpoint(tmp_path / "part.pt", drop="linear.weight"))
