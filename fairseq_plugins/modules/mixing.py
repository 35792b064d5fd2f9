"""Mixup and DIP (Data Interpolating Prediction) in plain PyTorch.

Mixup (Zhang et al., ICLR 2018) trains on convex combinations of two examples and of their
one-hot targets, and predicts on clean inputs::

    x~ = lam * x_i + (1 - lam) * x_j,   y~ = lam * y_i + (1 - lam) * y_j,   lam ~ Beta(a, a)

DIP (Shimada, Yamaguchi, Hayashi, Kobayashi 2019, "Data Interpolating Prediction: Alternative
Interpretation of Mixup") moves the mixing inside the hypothesis, so training and prediction use
the same operator. With g the network's softmax output and x' drawn from a pool of training
inputs (their labels are never used)::

    f(x) = E_{x', lam} [ g(lam * x + (1 - lam) * x') ]
         ~ (1/S) sum_s g(lam_s * x + (1 - lam_s) * x'_s)          (Monte Carlo, S draws)
    loss(x, y) = -log f(x)_y

Choices the paper leaves open, and why these:

- lam's law: ``lam = max(u, 1 - u)``, ``u ~ Beta(a, a)``, so lam is in [0.5, 1] and x stays the
  dominant input. The loss uses x's own label; with lam < 0.5 the mixture would mostly be x', and
  training on x's label would teach the network to read the minority component. The law of
  ``max(u, 1 - u)`` is Beta(a, a) folded onto [0.5, 1]: a -> 0 gives lam -> 1 (ERM), a = 1 gives
  lam uniform on [0.5, 1]. Mixup keeps the plain Beta(a, a), as in its paper.
- what is averaged: probabilities, not logits. f(x) is then itself a predictive distribution
  (a mixture of the network's distributions), the Monte Carlo average is an unbiased estimate of
  the expectation above, and -log f(x)_y <= mean_s -log g(...)_y (Jensen): DIP's loss is never
  above mixup-with-own-label's. The average is computed in log space
  (``logsumexp_s log g_s - log S``), which is stable.
- draws: at training, fresh per batch from a generator seeded by the trainer's per-update seed;
  at evaluation, from a generator seeded by (seed, example id), so an example's prediction does
  not depend on its batch, and the draws for S are the first S of those for any larger S.

With lam = 1 every mix is x itself, and f(x) is the network's own prediction (ERM).

Mixing point: images are mixed as pixels; token sequences as embeddings of shape
(batch, time, dim) with a padding mask (batch, time). Mixup pads the shorter sequence with zeros
and a mixed position is padding only where both inputs are padding. DIP keeps x's length and
padding (x' is cut or zero-padded to it): x is the dominant input, and with lam = 1 the mix is
exactly x.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F


def sample_mixing_weights(rng, alpha, size, keep_dominant=False):
    """``lam ~ Beta(alpha, alpha)`` (``max(lam, 1 - lam)`` if ``keep_dominant``), float32 tensor of ``size``.

    ``rng`` is a ``numpy.random.Generator``: the same generator state gives the same weights.
    """
    if not alpha > 0:
        raise ValueError(f"Beta(a, a) needs a > 0, got a = {alpha}")
    weights = rng.beta(alpha, alpha, size)
    if keep_dominant:
        weights = np.maximum(weights, 1.0 - weights)
    return torch.from_numpy(weights.astype(np.float32))


def mix(first, second, weights, first_padding=None, second_padding=None, keep_first_length=False):
    """``weights * first + (1 - weights) * second`` per example; returns (mixed, padding mask or None).

    ``first``/``second``: (N, ...) tensors; ``weights``: (N,). Sequences (N, T, D) come with padding
    masks (N, T) (True = padding) and may differ in T. By default the shorter is zero-padded and
    the mix is padding where both are; with ``keep_first_length`` the second is cut or
    zero-padded to the first's length and the mix has the first's padding.
    """
    padding = None
    if first_padding is not None:
        if keep_first_length:
            second, _ = fit_time(second, second_padding, first.size(1))
            padding = first_padding
        else:
            length = max(first.size(1), second.size(1))
            first, first_padding = fit_time(first, first_padding, length)
            second, second_padding = fit_time(second, second_padding, length)
            padding = first_padding & second_padding
    weights = weights.to(first.dtype).view(-1, *([1] * (first.dim() - 1)))
    return weights * first + (1 - weights) * second, padding


def fit_time(sequences, padding, length):
    """Cut or zero-pad (N, T, D) sequences and their (N, T) padding mask to ``length`` steps."""
    extra = length - sequences.size(1)
    if extra <= 0:
        return sequences[:, :length], padding[:, :length]
    return F.pad(sequences, (0, 0, 0, extra)), F.pad(padding, (0, extra), value=True)


def mixed_targets(target, partner_target, weights, num_classes):
    """Mixup's soft targets ``lam * onehot(y) + (1 - lam) * onehot(y')``: (N, num_classes), rows sum to 1."""
    weights = weights.view(-1, 1)
    return weights * F.one_hot(target, num_classes) + (1 - weights) * F.one_hot(partner_target, num_classes)


def soft_cross_entropy(logits, soft_targets):
    """Per-example ``-sum_c t_c log softmax(logits)_c``: (N,)."""
    return -(soft_targets * F.log_softmax(logits.float(), dim=-1)).sum(-1)


def dip_log_probs(predict, features, padding, reference_features, reference_padding, weights):
    """DIP's prediction ``log f(x)``: (B, C), from S mixes of each x with references.

    ``predict(features, padding) -> logits``: the network after its mixing point.
    ``features``: (B, ...) inputs at the mixing point (``padding`` (B, T) or None);
    ``reference_features``: (B * S, ...) the references, example-major (rows b*S .. b*S+S-1 go
    with x_b); ``weights``: (B, S) the lam of each mix.
    """
    batch, samples = weights.shape
    repeated = features.repeat_interleave(samples, dim=0)
    repeated_padding = None if padding is None else padding.repeat_interleave(samples, dim=0)
    mixed, mixed_padding = mix(
        repeated, reference_features, weights.reshape(-1), repeated_padding, reference_padding, keep_first_length=True
    )
    log_probs = F.log_softmax(predict(mixed, mixed_padding).float(), dim=-1)
    return torch.logsumexp(log_probs.view(batch, samples, -1), dim=1) - math.log(samples)


def training_draws(rng, batch, samples, alpha, pool_size):
    """DIP draws for one training batch: weights (B, S) in [0.5, 1] and reference indices (B, S)."""
    weights = sample_mixing_weights(rng, alpha, (batch, samples), keep_dominant=True)
    references = torch.from_numpy(rng.integers(0, pool_size, (batch, samples)))
    return weights, references


def evaluation_draws(seed, example_ids, samples, alpha, pool_size):
    """DIP draws that depend only on (seed, example id): weights (B, S) and reference indices (B, S).

    Weights and references come from two independent streams per example, so the first S draws
    are the same whatever S is asked for.
    """
    weights, references = [], []
    for example_id in example_ids.tolist():
        weight_seed, reference_seed = np.random.SeedSequence([seed, example_id]).spawn(2)
        weights.append(sample_mixing_weights(np.random.default_rng(weight_seed), alpha, samples, keep_dominant=True))
        references.append(torch.from_numpy(np.random.default_rng(reference_seed).integers(0, pool_size, samples)))
    return torch.stack(weights), torch.stack(references)
