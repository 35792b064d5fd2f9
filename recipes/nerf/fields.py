"""Fields: functions of a 3D point stored in dense voxel grids, read by trilinear ``grid_sample``.

The radiance field (DVGO-style, Sun et al. 2022) holds a raw density and a colour per voxel:
sigma(x) = softplus(g_sigma(x) + b) / voxel_0, c(x) = sigmoid(g_c(x)), with b set so that every
sample starts almost transparent. It keeps a binary occupancy grid (voxels whose alpha, max-pooled
over their neighbours, exceeds a threshold) to skip empty space, and is trained coarse to fine
(``upsample``). The feature field is a separate,
coarser grid of D channels f(x); it is trained through detached rendering weights, so it cannot
move geometry (Kobayashi et al. 2022, Sec. 3).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_field


def grid_shape(aabb, resolution):
    """Voxels per axis (x, y, z): ``resolution`` along the longest side, cubic voxels."""
    extent = (aabb[1] - aabb[0]).tolist()
    return [max(2, round(resolution * e / max(extent))) for e in extent]


class VoxelGrid(nn.Module):
    def __init__(self, aabb, resolution, channels):
        super().__init__()
        self.register_buffer("aabb", aabb.clone().float())
        nx, ny, nz = grid_shape(aabb, resolution)
        # grid_sample's 3D layout: [1, C, D=z, H=y, W=x], addressed by (x, y, z) in [-1, 1]
        self.grid = nn.Parameter(torch.zeros(1, channels, nz, ny, nx))

    @property
    def voxel_size(self):
        return float(((self.aabb[1] - self.aabb[0]) / (torch.tensor(self.grid.shape[2:][::-1], device=self.aabb.device) - 1)).max())

    def forward(self, points):
        """Values [P,C] at points [P,3] (clamped to the box)."""
        normalised = ((points - self.aabb[0]) / (self.aabb[1] - self.aabb[0]) * 2 - 1).clamp(-1, 1)
        # One grid_sample call, so one thread on CPU. Reading the points as one batch item per thread
        # over an expanded grid made the backward allocate a grid-sized gradient per thread, and was
        # slower on 2 shared cores in training and rendering alike (bench/nerf_grid_read.py).
        values = F.grid_sample(self.grid, normalised.view(1, 1, 1, -1, 3), mode="bilinear", align_corners=True)
        return values.view(self.grid.shape[1], -1).t()


@register_field("radiance-grid")
class RadianceGrid(nn.Module):
    """Density (1 channel) and view-independent colour (3 channels) per voxel, in two grids so that
    the density alone can be read cheaply (to find where rays stop)."""

    role = "radiance"

    def __init__(self, aabb, resolution=128, initial_alpha=1e-3):
        super().__init__()
        self.density_grid = VoxelGrid(aabb, resolution, 1)
        self.colour_grid = VoxelGrid(aabb, resolution, 3)
        # sigma = softplus(raw + shift) * scale, scale = 1 / (voxel size at construction), so that a raw
        # value of a few units is opaque within a voxel and raw = 0 gives alpha = initial_alpha per voxel
        self.density_shift = math.log(math.expm1(-math.log1p(-initial_alpha)))
        self.register_buffer("density_scale", torch.tensor(1.0 / self.density_grid.voxel_size))
        self.register_buffer("aabb", aabb.clone().float())
        self.register_buffer("occupancy", torch.ones(self.density_grid.grid.shape[2:], dtype=torch.bool))

    @property
    def voxel_size(self):
        return self.density_grid.voxel_size

    def density(self, points):
        return F.softplus(self.density_grid(points)[:, 0] + self.density_shift) * self.density_scale

    def forward(self, points):
        """(sigma [P], rgb [P,3]) at points [P,3]."""
        return self.density(points), torch.sigmoid(self.colour_grid(points))

    @torch.no_grad()
    def upsample(self, resolution):
        """Trilinearly resample both grids to ``resolution`` voxels along the longest side."""
        for voxels in (self.density_grid, self.colour_grid):
            shape = grid_shape(self.aabb, resolution)[::-1]
            voxels.grid = nn.Parameter(F.interpolate(voxels.grid.data, size=shape, mode="trilinear", align_corners=True))
        self.occupancy = F.interpolate(self.occupancy[None, None].float(), size=self.density_grid.grid.shape[2:], mode="nearest")[0, 0] > 0

    @torch.no_grad()
    def update_occupancy(self, step, threshold=1e-3):
        """Mark voxels whose alpha over one step, or a neighbour's, exceeds ``threshold``."""
        sigma = F.softplus(self.density_grid.grid + self.density_shift) * self.density_scale
        alpha = 1 - torch.exp(-sigma * step)
        self.occupancy = F.max_pool3d(alpha, 3, stride=1, padding=1)[0, 0] > threshold

    def occupied(self, points):
        """Whether the voxel nearest to each point [P,3] may hold density [P] (False outside the box)."""
        size = torch.tensor(self.occupancy.shape[::-1], device=points.device)  # (x, y, z) counts
        index = ((points - self.aabb[0]) / (self.aabb[1] - self.aabb[0]) * (size - 1)).round().long()
        inside = ((index >= 0) & (index < size)).all(-1)
        index = torch.minimum(index.clamp(min=0), size - 1)
        return inside & self.occupancy[index[:, 2], index[:, 1], index[:, 0]]


@register_field("feature-grid")
class FeatureGrid(VoxelGrid):
    """A D-channel feature per voxel, linear (the teacher features are centred and unbounded)."""

    role = "feature"

    def __init__(self, aabb, resolution=64, channels=16):
        super().__init__(aabb, resolution, channels)
