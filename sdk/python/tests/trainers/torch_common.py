"""What the framework test trainers share (imported as a sibling module: the trainers run as scripts)."""

import hashlib

import torch


def weights_sha256(model: torch.nn.Module) -> str:
    """The model's weights as one digest: equal digests, bit-identical weights."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()
