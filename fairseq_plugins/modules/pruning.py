"""Lottery tickets from one pretrained model: iterative magnitude pruning, rewinding and the
diversity regulariser of multi-ticket ensembles (Kobayashi, Kiyono, Suzuki, Inui, 2022).

A ticket is the pretrained model theta_0 times a binary mask m (1 = kept) over a fixed set of
weight matrices, the *prunable set* P. Iterative magnitude pruning to a target ratio p in R rounds:

    for r = 1..R:
        theta_r  = finetune(theta_0 * m_{r-1})              # m_0 = 1; pruned weights held at 0
        m_r      = m_{r-1} minus the k_r - k_{r-1} kept weights of P with the smallest |theta_r|
                   (global over P), k_r = round(r * p / R * |P|)
    ticket   = finetune(theta_0 * m_R)                      # rewound: kept weights = pretrained

so every round removes p / R of the ORIGINAL count (0.1 for p = 0.3, R = 3) and after R rounds
exactly round(p |P|) weights are pruned. Everything outside P is rewound too, the classifier
head included (its "pretrained" value is its initialisation before round 1).

Diversity regulariser (during the R pruning finetunes):

    L(theta) = loss(theta) + tau_t * || theta * l ||_1,     tau_t = tau * lr_t / lr_max

with l per method: BASE-LT l = 0 (members differ by seed only); ACTIVE-LT l = mean of the
earlier members' kept masks (weights the others keep are pushed to 0, so this member prunes
them); RANDOM-LT l ~ Bernoulli with P(l = 0) = p, drawn per member.

Diversity of an ensemble from per-example correctness (Kuncheva & Whitaker, 2003), for members
i, j with N11 (both right), N10 (i right, j wrong), N01, N00 over N examples, averaged over pairs:

    Q    = (N11 N00 - N01 N10) / (N11 N00 + N01 N10)
    rho  = (N11 N00 - N01 N10) / sqrt((N11 + N10)(N01 + N00)(N11 + N01)(N10 + N00))
    disagreement = (N01 + N10) / N,     double fault = N00 / N

Mask overlap: IoU of the kept sets, |K_a & K_b| / |K_a | K_b|, over the whole of P.

Masks are ``{parameter name: bool tensor}`` over P; states are ``{name: tensor}``.
"""

import itertools
import math
import re

import torch

# The prunable set, by parameter name (fairseq's names): attention q/k/v/out projections and both
# FFN matrices of every transformer layer, the dense layer of a RoBERTa classification head, and
# the hidden layers (``encoder.<i>``, Linear or Conv2d) of the package's image classifiers. Never
# embeddings, output/classifier projections (``out_proj`` of a head, ``output_projection``,
# the masked-LM head), biases or LayerNorms.
PRUNABLE_PATTERNS = (
    r"(^|\.)(self_attn|encoder_attn)\.(q_proj|k_proj|v_proj|out_proj)\.weight$",
    r"(^|\.)layers\.\d+\.fc[12]\.weight$",
    r"^classification_heads\.[^.]+\.dense\.weight$",
    r"^encoder\.\d+\.weight$",
)


def prunable_names(state, patterns=PRUNABLE_PATTERNS):
    """Names of ``state`` in the prunable set: matrices (or conv kernels) matching a pattern."""
    compiled = [re.compile(pattern) for pattern in patterns]
    return [name for name, tensor in state.items()
            if tensor.dim() >= 2 and tensor.is_floating_point() and any(c.search(name) for c in compiled)]


def full_masks(state, names):
    return {name: torch.ones_like(state[name], dtype=torch.bool) for name in names}


def count(masks):
    """(pruned, total) entries of ``masks``."""
    total = sum(mask.numel() for mask in masks.values())
    kept = sum(int(mask.sum()) for mask in masks.values())
    return total - kept, total


def pruned_target(round_index, rounds, target_ratio, total):
    """Weights pruned after ``round_index`` of ``rounds`` rounds: (round_index * ratio / rounds) of the original count."""
    return round(total * target_ratio * round_index / rounds)


def magnitude_prune(weights, masks, pruned_after):
    """Global magnitude pruning: new masks with the smallest-|w| kept weights removed until
    ``pruned_after`` entries of the whole set are pruned (exactly; ties broken by position)."""
    pruned, total = count(masks)
    extra = pruned_after - pruned
    if not 0 <= extra <= total - pruned:
        raise ValueError(f"cannot go from {pruned} to {pruned_after} pruned weights out of {total}")
    names = list(masks)
    # already pruned entries score +inf, so they are never chosen twice
    scores = torch.cat([torch.where(masks[n], weights[n].detach().abs().float(), math.inf).flatten() for n in names])
    flat = torch.cat([masks[n].flatten() for n in names])
    flat[torch.topk(scores, extra, largest=False, sorted=False).indices] = False
    return dict(zip(names, (part.view_as(masks[n]) for n, part in zip(names, flat.split([masks[n].numel() for n in names])))))


def rewind(init_state, masks):
    """``init_state`` with every masked-out entry set to 0: the ticket's starting point (all parameters)."""
    return {name: torch.where(masks[name], tensor, torch.zeros_like(tensor)) if name in masks else tensor.clone()
            for name, tensor in init_state.items()}


def mask_iou(a, b):
    """IoU of the kept sets of two masks over the same names."""
    both = sum(int((a[n] & b[n]).sum()) for n in a)
    either = sum(int((a[n] | b[n]).sum()) for n in a)
    return both / either if either else 1.0


def mean_pairwise_iou(masks):
    pairs = list(itertools.combinations(masks, 2))
    return sum(mask_iou(a, b) for a, b in pairs) / len(pairs) if pairs else None


# --- diversity regulariser ----------------------------------------------------------------------

def random_penalty(masks, target_ratio, generator):
    """RANDOM-LT's l: 0 with probability ``target_ratio``, else 1, per entry of the prunable set."""
    return {name: (torch.rand(mask.shape, generator=generator) >= target_ratio).float() for name, mask in masks.items()}


def active_penalty(earlier_masks):
    """ACTIVE-LT's l: the mean of the earlier members' kept masks."""
    if not earlier_masks:
        raise ValueError("ACTIVE-LT needs the masks of at least one earlier member")
    return {name: torch.stack([m[name].float() for m in earlier_masks]).mean(0) for name in earlier_masks[0]}


def penalty_l1(params, penalty):
    """||theta * l||_1 over the named parameters, in float32 (an fp16 sum over millions of weights
    overflows); differentiable: its (sub)gradient is ``l * sign(theta)``."""
    return sum((params[name].float() * l).abs().sum() for name, l in penalty.items())


# --- ensemble diversity -------------------------------------------------------------------------

def contingency(correct_a, correct_b):
    """(N11, N10, N01, N00) of two boolean per-example correctness vectors."""
    a, b = torch.as_tensor(correct_a, dtype=torch.bool), torch.as_tensor(correct_b, dtype=torch.bool)
    return int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum()), int((~a & ~b).sum())


def pair_diversity(correct_a, correct_b):
    """Q statistic, correlation, disagreement and double fault of one pair (None where 0/0)."""
    n11, n10, n01, n00 = contingency(correct_a, correct_b)
    n = n11 + n10 + n01 + n00
    numerator = n11 * n00 - n01 * n10
    q_denominator = n11 * n00 + n01 * n10
    rho_denominator = math.sqrt((n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00))
    return {
        "q_statistic": numerator / q_denominator if q_denominator else None,
        "correlation": numerator / rho_denominator if rho_denominator else None,
        "disagreement": (n01 + n10) / n,
        "double_fault": n00 / n,
    }


def ensemble_diversity(correct):
    """Each measure averaged over all pairs of members (``correct``: one boolean vector per member);
    a pair where a measure is 0/0 is left out of its mean (None if every pair is)."""
    pairs = [pair_diversity(a, b) for a, b in itertools.combinations(correct, 2)]
    result = {}
    for key in ("q_statistic", "disagreement", "double_fault", "correlation"):
        values = [p[key] for p in pairs if p[key] is not None]
        result[key] = sum(values) / len(values) if values else None
    return result
