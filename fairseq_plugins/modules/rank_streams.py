"""Random draws that differ between data-parallel workers while torch's own stream stays shared.

fairseq reseeds torch with ``seed + num_updates`` before every update on every rank, so all ranks
draw the same numbers: LayerDrop drops the same layers everywhere and quantization starts k-means
alike on every replica. Per-example draws of this package (SHAPE offsets, mixup and DIP weights)
must instead be independent across ranks, or every worker would shift and mix its examples as
the others do. ``draw_per_rank(draw, device)`` gives both:

- every rank first calls ``draw(None)`` on torch's global generator, so the global stream advances
  alike on every rank (and a following LayerDrop draw still agrees across ranks);
- rank 0 (and a process outside ``torch.distributed``) returns that draw: exactly what one process
  draws;
- rank r > 0 returns ``draw(generator)`` from a generator of its own, seeded from (the global
  generator's state before the draw, r): reproducible after ``torch.manual_seed``, new at every
  call, independent across ranks.

The rank is ``torch.distributed``'s global rank (every process of a data-parallel job is a replica).
"""

import hashlib

import torch


def this_rank() -> int:
    distributed = torch.distributed
    return distributed.get_rank() if distributed.is_available() and distributed.is_initialized() else 0


def global_generator_state(device: torch.device) -> torch.Tensor:
    if device.type == "cpu":
        return torch.get_rng_state()
    return torch.get_device_module(device.type).get_rng_state(device)


def draw_per_rank(draw, device="cpu"):
    """``draw(generator)`` (a torch call taking ``generator=``) as described above; ``device``: where it draws."""
    device = torch.device(device)
    rank = this_rank()
    state = global_generator_state(device) if rank > 0 else None
    shared = draw(None)
    if rank == 0:
        return shared
    digest = hashlib.blake2b(state.numpy().tobytes() + rank.to_bytes(8, "little"), digest_size=8).digest()
    generator = torch.Generator(device=device)
    generator.manual_seed(int.from_bytes(digest, "little") >> 1)  # a non-negative 63-bit seed
    return draw(generator)
