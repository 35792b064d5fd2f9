"""A store of model inputs that travels with the model's state dict."""

import torch
from torch import nn

PLACEMENT = "placement"


class InputStore(nn.Module):
    """Inputs kept with a model (e.g. DIP's reference examples x'), as buffers named like the model's inputs.

    ``fill({"images": (P, C, H, W)})`` or ``fill({"src_tokens": (P, T), "src_lengths": (P,)})``;
    ``select(indices)`` returns the same dict for the chosen rows. The buffers live in the model's
    state dict, so a checkpoint carries its inputs; an empty store loads any inputs' shape. Loaded
    inputs land on the model's device, and floating-point ones take its dtype (e.g. after
    ``.half()``), whatever device and dtype they were saved from.
    """

    def __init__(self):
        super().__init__()
        # Not saved: an empty tensor that moves with the model, so loading knows where inputs belong.
        self.register_buffer(PLACEMENT, torch.empty(0), persistent=False)

    def stored(self):
        return {name: tensor for name, tensor in self._buffers.items() if name != PLACEMENT}

    def __len__(self):
        stored = self.stored()
        return next(iter(stored.values())).size(0) if stored else 0

    def clear(self):
        for name in self.stored():
            del self._buffers[name]

    def fill(self, inputs):
        self.clear()
        for name, tensor in inputs.items():
            self.register_buffer(name, tensor.detach().clone())

    def select(self, indices):
        return {name: tensor[indices] for name, tensor in self.stored().items()}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The inputs' shape is only known from the checkpoint: take it from there.
        self.clear()
        placement = self._buffers[PLACEMENT]
        for key, tensor in state_dict.items():
            if key.startswith(prefix) and "." not in key[len(prefix):]:
                dtype = placement.dtype if tensor.is_floating_point() else tensor.dtype
                self.register_buffer(key[len(prefix):], torch.empty_like(tensor, device=placement.device, dtype=dtype))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
