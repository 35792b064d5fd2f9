"""A distilled feature field: a radiance field, a feature field, and rendering of both along rays."""

import torch
from torch import nn

from .registry import FIELDS
from .render import composite, compositing_weights, sample_along_rays, transmittance


class FeatureFieldModel(nn.Module):
    def __init__(self, aabb, field="radiance-grid", resolution=128, feature_field="feature-grid",
                 feature_resolution=64, feature_dim=16, step_ratio=1.0):
        super().__init__()
        self.radiance = FIELDS[field](aabb, resolution)
        self.features = FIELDS[feature_field](aabb, feature_resolution, feature_dim)
        self.register_buffer("aabb", aabb.clone().float())
        self.step_ratio = step_ratio

    @property
    def step(self):
        """Distance between samples along a ray: ``step_ratio`` voxels of the current radiance grid."""
        return self.radiance.voxel_size * self.step_ratio

    def render(self, origins, directions, background, jitter=False, features=False, feature_rays=None, edit=None, selection=None):
        """Render rays [R,3]. Returns a dict: rgb [R,3], depth [R], opacity [R]; feature [R,D] if
        ``features`` (through detached weights, so it cannot change geometry), of the first
        ``feature_rays`` rays only if given (training: one pass serves both losses); selected [R] (the
        rendering weight of the samples inside ``selection``, a (model, points) -> bool function)
        if given. ``edit`` changes the samples' densities and colours (edits.py)."""
        rays = len(origins)
        samples = sample_along_rays(origins, directions, self.aabb, self.step, jitter)
        occupied = edit.occupied(self, samples.points) if edit is not None else self.radiance.occupied(samples.points)
        samples = samples.select(occupied)
        # Early ray termination: a density-only pass without gradients finds the samples that the
        # ray still reaches (T > 1e-4); only those are rendered.
        with torch.no_grad():
            sigma = self._radiance(samples.points, edit, density_only=True)
            reached, _ = transmittance(sigma, samples.delta, samples.ray_index, rays)
            samples = samples.select(reached > 1e-4)
        sigma, rgb = self._radiance(samples.points, edit)
        weights = compositing_weights(sigma, samples.delta, samples.ray_index, rays)
        opacity = composite(weights, torch.ones_like(sigma)[:, None], samples.ray_index, rays)[:, 0]
        out = {
            "rgb": composite(weights, rgb, samples.ray_index, rays) + (1 - opacity)[:, None] * background,
            "depth": composite(weights, samples.t[:, None], samples.ray_index, rays)[:, 0],
            "opacity": opacity,
        }
        if features:
            count = rays if feature_rays is None else min(feature_rays, rays)
            first = samples.ray_index < count  # packed by ray: the first rays' samples come first
            out["feature"] = composite(weights.detach()[first], self.features(samples.points[first]), samples.ray_index[first], count)
        if selection is not None:
            chosen = selection(self, samples.points).to(weights.dtype)[:, None]
            out["selected"] = composite(weights, chosen, samples.ray_index, rays)[:, 0]
        return out

    def _radiance(self, points, edit, density_only=False):
        if edit is not None:
            sigma, rgb = edit.apply(self, points, *self.radiance(points))
            return sigma if density_only else (sigma, rgb)
        return self.radiance.density(points) if density_only else self.radiance(points)

    @torch.no_grad()
    def render_view(self, origins, directions, background, chunk=8192, **kwargs):
        """Render many rays in chunks without gradients; returns the same dict, concatenated."""
        parts = [self.render(origins[i:i + chunk], directions[i:i + chunk], background, **kwargs) for i in range(0, len(origins), chunk)]
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
