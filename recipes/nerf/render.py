"""Volume rendering (Max 1995; Mildenhall et al. 2020, eq. 3) along rays through an axis-aligned box.

For the samples t_1 < ... < t_N of a ray, with interval lengths delta_i and densities sigma_i,

    alpha_i = 1 - exp(-sigma_i delta_i),   T_i = exp(-sum_{j<i} sigma_j delta_j),   w_i = T_i alpha_i,
    C = sum_i w_i c_i + (1 - sum_i w_i) * background,   D = sum_i w_i t_i,   F = sum_i w_i f_i.

For piecewise-constant density this quadrature is exact: a slab of density sigma and thickness L
transmits exp(-sigma L) whatever the number of samples (tests/test_nerf_render.py).

Samples are packed: one flat list for all rays, sorted by ray (``ray_index``), so that empty
space and the space behind opaque surfaces can be dropped without padding.
"""

from dataclasses import dataclass

import torch


def ray_box(origins, directions, aabb):
    """Entry and exit distances [R] of rays in the box aabb [2,3]; exit <= entry where a ray misses."""
    inverse = 1.0 / torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0, t1 = (aabb[0] - origins) * inverse, (aabb[1] - origins) * inverse
    near = torch.minimum(t0, t1).amax(-1).clamp(min=0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, far


@dataclass
class Samples:
    ray_index: torch.Tensor  # [P] long, non-decreasing
    t: torch.Tensor  # [P] distance along the ray
    delta: torch.Tensor  # [P] interval length
    points: torch.Tensor  # [P,3]

    def select(self, keep):
        return Samples(self.ray_index[keep], self.t[keep], self.delta[keep], self.points[keep])


def sample_along_rays(origins, directions, aabb, step, jitter):
    """Evenly spaced samples, ``step`` apart, between each ray's box entry and exit. ``jitter``
    shifts each ray's samples by a random fraction of a step (stratified sampling in training)."""
    near, far = ray_box(origins, directions, aabb)
    counts = torch.ceil((far - near) / step).clamp(min=0).long()
    ray_index = torch.repeat_interleave(torch.arange(len(origins), device=origins.device), counts)
    first = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(ray_index), device=origins.device) - first[ray_index]
    offset = torch.rand_like(near) if jitter else torch.full_like(near, 0.5)
    t = near[ray_index] + (position + offset[ray_index]) * step
    inside = t < far[ray_index]
    ray_index, t = ray_index[inside], t[inside]
    points = origins[ray_index] + t[:, None] * directions[ray_index]
    return Samples(ray_index, t, torch.full_like(t, step), points)


def transmittance(sigma, delta, ray_index, num_rays):
    """T_i [P] and sigma_i delta_i [P] of packed samples (exclusive cumulative sum within each ray)."""
    optical_depth = sigma * delta
    if len(optical_depth) == 0:
        return torch.ones_like(optical_depth), optical_depth
    # one global cumulative sum, in float64 so that subtracting each ray's start stays exact
    running = torch.cumsum(optical_depth.double(), 0)
    counts = torch.bincount(ray_index, minlength=num_rays)
    first = torch.cumsum(counts, 0) - counts
    before_ray = (running - optical_depth.double())[first.clamp(max=len(running) - 1)]
    exclusive = running - optical_depth.double() - before_ray[ray_index]
    return torch.exp(-exclusive).to(sigma.dtype), optical_depth


def compositing_weights(sigma, delta, ray_index, num_rays):
    """w_i = T_i alpha_i [P] for packed samples."""
    through, optical_depth = transmittance(sigma, delta, ray_index, num_rays)
    return through * (1.0 - torch.exp(-optical_depth))


def composite(weights, values, ray_index, num_rays):
    """sum_i w_i v_i per ray: weights [P], values [P,C] -> [R,C]."""
    out = torch.zeros(num_rays, values.shape[1], device=values.device, dtype=values.dtype)
    return out.index_add(0, ray_index, weights[:, None] * values)
