"""Spike No More, measured: a loss-spike detector and per-layer gradient norms for training logs.

Takase et al., "Spike No More: Stabilizing the Pre-training of Large Language
Models" (2023) compare initialisations by whether training loss *spikes*. This
module counts them the same way on every run, so the schemes of ``spike_init`` can
be compared by a number rather than by eye. A caller (the training loop) feeds it
once per update:

    update t is a spike  <=>  loss_t is not finite (nan / inf)
                              or  loss_t > factor * median(H_t)          (needs |H_t| >= min_history)

where ``H_t`` holds the last ``window`` losses that were *not* spikes. The median,
not the mean, so that one huge loss does not lift the bar for the next; spikes are
kept out of ``H_t`` for the same reason: a burst of spikes (the paper's failure
mode: the loss jumps and stays up for a while) is counted update by update instead
of becoming the new normal after a few steps. The cost of that choice: a loss that
rises above ``factor`` times the median *for good* is flagged at every update from
then on; with a decreasing training loss that means training has diverged, which
is what a spike counter should keep saying.

``layer_grad_norms`` gives the other quantity the paper reasons with, the gradient
norm of each layer, ``||g_l||_2 = sqrt(sum over the layer's parameters p of ||grad p||_2^2)``.

Losses are expected to be non-negative (fairseq's cross-entropy losses are): with
a negative median ``factor * median`` lies *below* the median and the rule above
flags most updates.
"""

import bisect
import collections
import math
from typing import List, Optional, Sequence

import torch
from torch import nn


class LossSpikeDetector:
    """Flags updates whose loss exceeds ``factor`` x the running median of recent non-spike losses.

    ``update(loss)`` once per update returns whether ``loss`` is a spike:

    - a non-finite loss (nan, +-inf) is always a spike, even before ``min_history``
      losses are known (nothing is more of a spike than a nan);
    - otherwise, with fewer than ``min_history`` losses in the history, never;
    - otherwise iff ``loss > factor * median`` (strictly).

    A spike is counted (``spikes``) but not added to the history; every other loss is,
    the oldest leaving once there are ``window`` of them. ``updates`` counts every call.

    The history is a deque (arrival order, for eviction) plus the same values kept
    sorted (for the median): ``update`` costs one binary search and one list
    insertion / deletion, O(window) memmove at worst, no re-sort or array rebuild.
    """

    def __init__(self, factor: float = 2.0, window: int = 100, min_history: int = 10):
        if not factor > 1:  # also rejects NaN
            raise ValueError(f"--spike-factor must be > 1 (got {factor})")
        if window < 1:
            raise ValueError(f"--spike-window must be >= 1 (got {window})")
        if not 1 <= min_history <= window:
            raise ValueError(f"--spike-min-history must be in [1, --spike-window={window}] (got {min_history})")
        self.factor = float(factor)
        self.window = int(window)
        self.min_history = int(min_history)
        self.spikes = 0
        self.updates = 0
        self._history = collections.deque()  # non-spike losses, oldest first
        self._sorted: List[float] = []  # the same values, ascending

    def __repr__(self):
        return (
            f"{type(self).__name__}(factor={self.factor}, window={self.window}, min_history={self.min_history}, "
            f"updates={self.updates}, spikes={self.spikes}, median={self.median})"
        )

    @property
    def median(self) -> Optional[float]:
        """Median of the history (mean of the two middle values for an even count); None before ``min_history``."""
        n = len(self._sorted)
        if n < self.min_history:
            return None
        mid = n // 2
        if n % 2:
            return self._sorted[mid]
        return 0.5 * (self._sorted[mid - 1] + self._sorted[mid])

    def _push(self, loss: float) -> None:
        if len(self._history) == self.window:
            oldest = self._history.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
        self._history.append(loss)
        bisect.insort(self._sorted, loss)

    def update(self, loss: float) -> bool:
        """Record this update's ``loss`` (a number or a 0-d tensor); True if it is a spike."""
        loss = float(loss)
        self.updates += 1
        if not math.isfinite(loss):
            spike = True
        else:
            median = self.median
            spike = median is not None and loss > self.factor * median
        if spike:
            self.spikes += 1
        else:
            self._push(loss)
        return spike

    def state_dict(self) -> dict:
        """Plain numbers and lists (no tensors), so it fits in any checkpoint's ``extra_state``."""
        return {
            "factor": self.factor,
            "window": self.window,
            "min_history": self.min_history,
            "history": list(self._history),
            "spikes": self.spikes,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore history and counts from ``state_dict()``.

        The settings (``factor``, ``window``, ``min_history``) stay the ones this detector
        was built with, i.e. the resumed run's flags, as for fairseq's other options; the
        saved ones are informational. A history longer than this ``window`` keeps its
        newest ``window`` losses.
        """
        missing = [key for key in ("history", "spikes", "updates") if key not in state]
        if missing:
            raise ValueError(f"spike detector state lacks {', '.join(missing)}")
        history = [float(x) for x in state["history"]]
        if not all(math.isfinite(x) for x in history):
            raise ValueError("spike detector state has a non-finite loss in its history")
        spikes, updates = int(state["spikes"]), int(state["updates"])
        if not 0 <= spikes <= updates:
            raise ValueError(f"spike detector state has spikes={spikes}, updates={updates}")
        history = history[-self.window:]
        self._history = collections.deque(history)
        self._sorted = sorted(history)
        self.spikes = spikes
        self.updates = updates


def layer_grad_norms(layers: Sequence[nn.Module]) -> List[float]:
    """L2 norm of the gradients of each layer's parameters, one float per layer.

    ``||g_l|| = sqrt(sum_p ||p.grad||^2)`` over the parameters ``p`` of ``layers[l]``
    (each counted once even if registered twice in the layer). Parameters whose ``grad``
    is None are skipped; a layer with no gradients gives 0.0. Norms are accumulated in
    float32 at least (fp16 gradients would overflow when squared) and read back with one
    device sync for all layers. Non-finite gradients give inf / nan, as they are.
    """
    per_layer = []  # 0-d tensors, None for a layer without gradients
    for layer in layers:
        norms = [
            # float32 at least (fp16/bf16 squares overflow), float64 kept as is
            torch.linalg.vector_norm(p.grad.detach(), dtype=torch.promote_types(p.grad.dtype, torch.float32))
            for p in layer.parameters()
            if p.grad is not None
        ]
        if norms:
            device = norms[0].device  # a layer split over devices is gathered on its first one
            per_layer.append(torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms])))
        else:
            per_layer.append(None)
    present = [n for n in per_layer if n is not None]
    if not present:
        return [0.0] * len(per_layer)
    device = present[0].device
    values = iter(torch.stack([n.to(device) for n in present]).tolist())  # the one host sync
    return [0.0 if n is None else next(values) for n in per_layer]
