"""A store of model inputs that travels with the model's state dict."""

import torch
from torch import nn


class InputStore(nn.Module):
    """Inputs kept with a model (e.g. DIP's reference examples x'), as buffers named like the model's inputs.

    ``fill({"images": (P, C, H, W)})`` or ``fill({"src_tokens": (P, T), "src_lengths": (P,)})``;
    ``select(indices)`` returns the same dict for the chosen rows. The buffers live in the model's
    state dict, so a checkpoint carries its pool; an empty pool loads any pool's shape.
    """

    def __len__(self):
        return next(iter(self._buffers.values())).size(0) if self._buffers else 0

    def fill(self, inputs):
        self._buffers.clear()
        for name, tensor in inputs.items():
            self.register_buffer(name, tensor.detach().clone())

    def select(self, indices):
        return {name: tensor[indices] for name, tensor in self._buffers.items()}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The pool's shape is only known from the checkpoint: take it from there.
        self._buffers.clear()
        for key, tensor in state_dict.items():
            if key.startswith(prefix) and "." not in key[len(prefix):]:
                self.register_buffer(key[len(prefix):], torch.empty_like(tensor))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
