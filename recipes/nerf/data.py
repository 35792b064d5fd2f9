"""Scenes in the Blender/instant-ngp ``transforms_{split}.json`` format (NeRF-synthetic and ours).

RGBA images are composited on the scene background (``white`` as NeRF-synthetic's convention), so
the radiance field renders ``sum_i w_i c_i + (1 - sum_i w_i) * background``. Images larger than
``max_side`` pixels are box-downscaled by an integer factor (800 px NeRF-synthetic -> 115 px).
"""

import json
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .registry import ConfigError, register_dataset
from .scene import camera_rays

BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
DEFAULT_AABB = [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]  # NeRF-synthetic's objects fit in this cube


@dataclass
class Views:
    """One split: images [N,H,W,3] in [0,1], camera-to-world [N,4,4], focal in pixels; labels
    [N,H,W] (int64) where the scene has them, else None."""

    images: torch.Tensor
    poses: torch.Tensor
    focal: float
    labels: torch.Tensor = None
    names: list = None

    @property
    def height(self):
        return self.images.shape[1]

    @property
    def width(self):
        return self.images.shape[2]

    def rays(self, index):
        """(origins, directions), each [H*W,3], through the pixel centres of one view."""
        origins, directions = camera_rays(self.poses[index].double().numpy(), self.height, self.width, self.focal)
        return torch.from_numpy(origins[0]).float(), torch.from_numpy(directions[0]).float()

    def all_rays(self):
        pairs = [self.rays(i) for i in range(len(self.images))]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


@register_dataset("blender")
class BlenderScene:
    """A directory with ``transforms_{train,val,test}.json`` (a missing val split falls back to test)."""

    def __init__(self, root, background="white", max_side=128):
        if not os.path.isfile(os.path.join(root, "transforms_train.json")):
            raise ConfigError(f"--scene {root}: no transforms_train.json there (expected a Blender/NeRF-synthetic scene directory)")
        if background not in BACKGROUNDS:
            raise ConfigError(f"--background {background!r} is not one of: {', '.join(BACKGROUNDS)}")
        self.root, self.background, self.max_side = root, torch.tensor(BACKGROUNDS[background]), max_side
        with open(os.path.join(root, "transforms_train.json")) as f:
            meta = json.load(f)
        self.aabb = torch.tensor(meta.get("aabb", DEFAULT_AABB), dtype=torch.float32)
        scene_file = os.path.join(root, "scene.json")
        self.objects = json.load(open(scene_file))["objects"] if os.path.isfile(scene_file) else {}

    def split_file(self, split):
        path = os.path.join(self.root, f"transforms_{split}.json")
        if split == "val" and not os.path.isfile(path):
            path = os.path.join(self.root, "transforms_test.json")
        if not os.path.isfile(path):
            raise ConfigError(f"--scene {self.root}: no transforms_{split}.json there")
        return path

    def load(self, split, image_dir=None):
        """The views of ``split``; ``image_dir`` reads the same cameras' images from another folder
        (e.g. ``without_sphere``, the ground truth of a delete edit)."""
        with open(self.split_file(split)) as f:
            meta = json.load(f)
        images, poses, labels, names = [], [], [], []
        for frame in meta["frames"]:
            relative = frame["file_path"]
            if not os.path.splitext(relative)[1]:
                relative += ".png"
            relative = os.path.normpath(relative)
            names.append(relative)
            path = os.path.join(self.root, image_dir or "", relative)
            if not os.path.isfile(path):
                raise ConfigError(f"--scene {self.root}: image {path} listed in {os.path.basename(self.split_file(split))} does not exist")
            images.append(self._read_rgb(path))
            poses.append(torch.tensor(frame["transform_matrix"], dtype=torch.float32))
            label_path = os.path.join(self.root, "labels", relative)
            if os.path.isfile(label_path):
                labels.append(self._read_labels(label_path))
        width = Image.open(os.path.join(self.root, image_dir or "", names[0])).size[0]
        factor = self.downscale_factor(width)
        focal = 0.5 * width / math.tan(0.5 * meta["camera_angle_x"]) / factor
        return Views(
            images=torch.stack(images),
            poses=torch.stack(poses),
            focal=focal,
            labels=torch.stack(labels) if len(labels) == len(images) else None,
            names=names,
        )

    def downscale_factor(self, side):
        return max(1, math.ceil(side / self.max_side))

    def _read_rgb(self, path):
        image = Image.open(path)
        factor = self.downscale_factor(max(image.size))
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        if factor > 1:
            rgba = _box_downscale(rgba, factor)
        rgb = torch.from_numpy(rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:]) * self.background.numpy())
        return rgb

    def _read_labels(self, path):
        labels = np.asarray(Image.open(path), dtype=np.int64)
        factor = self.downscale_factor(max(labels.shape))
        return torch.from_numpy(labels[::factor, ::factor].copy())


def _box_downscale(rgba, factor):
    """Average factor x factor blocks, colour premultiplied by alpha so edges do not bleed."""
    height, width = rgba.shape[0] // factor * factor, rgba.shape[1] // factor * factor
    rgba = rgba[:height, :width]
    premultiplied = np.concatenate([rgba[..., :3] * rgba[..., 3:], rgba[..., 3:]], -1)
    blocks = premultiplied.reshape(height // factor, factor, width // factor, factor, 4).mean((1, 3))
    alpha = blocks[..., 3:]
    return np.concatenate([blocks[..., :3] / np.maximum(alpha, 1e-8), alpha], -1)
