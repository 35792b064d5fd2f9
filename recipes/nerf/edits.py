"""Edits of a 3D selection, applied to the samples' densities and colours at render time.

A selection is the set of points whose distilled feature has cosine similarity above a threshold
with a query vector: S = {x : cos(f(x), q) > tau} (Kobayashi et al. 2022, Sec. 4), here evaluated
on the feature grid's voxels (see ``Selection``). Deleting sets
sigma = 0 in S, extracting sets sigma = 0 outside S, recolouring replaces the hue of c in S, and
translating by d renders sigma'(x) = sigma(x)[x not in S] + sigma(x - d)[x - d in S].
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .registry import register_edit


class Selection:
    """S: points whose interpolated feature is similar to the query, plus unobserved space next to them.

    Voxels that no training ray reached (an object's inside, the ground under it) keep their
    initial zero feature, so no query selects them; deleting or moving the surface would leave
    their density behind as floaters. ``fill`` grows S, on the feature grid's voxels, into such
    unobserved voxels, one voxel per step (a flood fill reaching ``fill`` voxels from the observed
    selection); a point is in S if its own feature is similar or the filled grid, interpolated,
    exceeds 1/2 there.
    """

    def __init__(self, vector, threshold, fill=8):
        self.vector, self.threshold, self.fill = vector, threshold, fill
        self.grid = None

    def voxels(self, model):
        if self.grid is None:
            features = model.features.grid[0].detach()  # [D, Z, Y, X]
            similar = F.cosine_similarity(features, self.vector.to(features.device)[:, None, None, None], dim=0) > self.threshold
            unobserved = features.abs().amax(0) == 0
            selected = similar.float()[None, None]
            for _ in range(self.fill):
                grown = F.max_pool3d(selected, 3, stride=1, padding=1)
                selected = torch.where(unobserved[None, None], grown, selected)
            self.grid = selected
        return self.grid

    def __call__(self, model, points):
        """[P] bool: which points [P,3] are selected."""
        grid = self.voxels(model)
        aabb = model.features.aabb
        normalised = ((points - aabb[0]) / (aabb[1] - aabb[0]) * 2 - 1).clamp(-1, 1)
        filled = F.grid_sample(grid, normalised.view(1, 1, 1, -1, 3), mode="bilinear", align_corners=True).view(-1) > 0.5
        similar = F.cosine_similarity(model.features(points), self.vector.to(points.device)[None], dim=-1) > self.threshold
        return similar | filled


@dataclass
class EditOptions:
    colour: list = field(default_factory=lambda: [0.2, 0.4, 1.0])
    offset: list = field(default_factory=lambda: [0.0, 0.5, 0.0])


class Edit:
    def __init__(self, selection, options: EditOptions):
        self.selection, self.options = selection, options

    def occupied(self, model, points):
        return model.radiance.occupied(points)


@register_edit("delete")
class Delete(Edit):
    def apply(self, model, points, sigma, rgb):
        return sigma * ~self.selection(model, points), rgb


@register_edit("extract")
class Extract(Edit):
    def apply(self, model, points, sigma, rgb):
        return sigma * self.selection(model, points), rgb


LUMA = torch.tensor([0.299, 0.587, 0.114])


@register_edit("recolor")
class Recolor(Edit):
    """Keeps each selected sample's luminance (shading, texture) and takes the hue of --colour."""

    def apply(self, model, points, sigma, rgb):
        luma = LUMA.to(rgb.device)
        colour = torch.tensor(self.options.colour, device=rgb.device)
        recoloured = ((rgb @ luma) / (colour @ luma).clamp(min=1e-3))[:, None] * colour
        return sigma, torch.where(self.selection(model, points)[:, None], recoloured.clamp(0, 1), rgb)


@register_edit("translate")
class Translate(Edit):
    """Moves the selection by --offset (world units)."""

    def offset(self, device):
        return torch.tensor(self.options.offset, device=device)

    def occupied(self, model, points):
        return model.radiance.occupied(points) | model.radiance.occupied(points - self.offset(points.device))

    def apply(self, model, points, sigma, rgb):
        source = points - self.offset(points.device)
        sigma_moved, rgb_moved = model.radiance(source)
        sigma_kept = sigma * ~self.selection(model, points)
        sigma_moved = sigma_moved * self.selection(model, source)
        total = sigma_kept + sigma_moved
        mixed = (sigma_kept[:, None] * rgb + sigma_moved[:, None] * rgb_moved) / total.clamp(min=1e-8)[:, None]
        return total, torch.where(total[:, None] > 0, mixed, rgb)
