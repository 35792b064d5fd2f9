"""A procedural scene: textured, labelled objects on a ground square, ray traced analytically.

It is written as a Blender/NeRF-synthetic scene (``transforms_{train,val,test}.json`` + RGBA PNGs,
background transparent) so it goes through the same reader as a downloaded scene. Beside it, for
evaluation only: per-pixel object labels (``labels/<split>/r_<i>.png``, 0 = background), ray depth
(``depth/<split>/r_<i>.npy``), and for every object the test views rendered without it
(``without_<name>/test/r_<i>.png``), the ground truth of a delete edit. ``scene.json`` lists the
objects and their labels. There are no shadows, so a deleted object leaves nothing behind.
"""

import json
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

LIGHT = np.array([0.45, -0.35, 0.82]) / np.linalg.norm([0.45, -0.35, 0.82])
AMBIENT = 0.35
LOOK_AT = np.array([0.0, 0.0, 0.25])
AABB = [[-1.05, -1.05, -0.05], [1.05, 1.05, 0.8]]
CAMERA_ANGLE_X = 0.6911  # the NeRF-synthetic cameras' horizontal field of view


@dataclass
class SceneConfig:
    out: str = ""
    resolution: int = 64
    train_views: int = 100
    val_views: int = 4
    test_views: int = 16
    radius: float = 3.5
    seed: int = 0
    supersample: int = 2


def _mix(a, b, t):
    return np.asarray(a)[None] * (1 - t[:, None]) + np.asarray(b)[None] * t[:, None]


class Ground:
    name, label = "ground", 1

    def intersect(self, o, d):
        t = np.where(d[:, 2] < -1e-9, -o[:, 2] / np.minimum(d[:, 2], -1e-9), np.inf)
        p = o + t[:, None] * d
        t = np.where((np.abs(p[:, 0]) <= 1) & (np.abs(p[:, 1]) <= 1), t, np.inf)
        normal = np.broadcast_to(np.array([0.0, 0.0, 1.0]), p.shape)
        checker = ((np.floor(p[:, 0] * 2) + np.floor(p[:, 1] * 2)) % 2).astype(float)
        return t, normal, _mix([0.85, 0.8, 0.7], [0.45, 0.5, 0.55], checker)


class Sphere:
    name, label = "sphere", 2
    center, radius = np.array([-0.45, -0.35, 0.35]), 0.35

    def intersect(self, o, d):
        oc = o - self.center
        b = (oc * d).sum(1)
        disc = b * b - ((oc * oc).sum(1) - self.radius**2)
        t = np.where(disc >= 0, -b - np.sqrt(np.maximum(disc, 0)), np.inf)
        t = np.where(t > 0, t, np.inf)
        normal = (o + np.where(np.isfinite(t), t, 0)[:, None] * d - self.center) / self.radius
        bands = 0.5 + 0.5 * np.sin(5 * np.arctan2(normal[:, 1], normal[:, 0]))
        return t, normal, _mix([0.9, 0.25, 0.2], [0.95, 0.75, 0.2], bands)


class Box:
    name, label = "box", 3
    low, high = np.array([0.2, -0.55, 0.0]), np.array([0.7, -0.05, 0.55])

    def intersect(self, o, d):
        inv = 1.0 / np.where(np.abs(d) < 1e-9, 1e-9, d)
        t0, t1 = (self.low - o) * inv, (self.high - o) * inv
        near, far = np.minimum(t0, t1), np.maximum(t0, t1)
        t_in, t_out = near.max(1), far.min(1)
        t = np.where((t_in <= t_out) & (t_in > 0), t_in, np.inf)
        axis = near.argmax(1)
        normal = np.zeros_like(o)
        normal[np.arange(len(o)), axis] = -np.sign(d[np.arange(len(o)), axis])
        p = o + np.where(np.isfinite(t), t, 0)[:, None] * d
        return t, normal, _mix([0.2, 0.35, 0.85], [0.3, 0.8, 0.9], np.clip(p[:, 2] / 0.55, 0, 1))


class Cylinder:
    name, label = "cylinder", 4
    center, radius, height = np.array([0.15, 0.5]), 0.22, 0.6

    def intersect(self, o, d):
        oc = o[:, :2] - self.center
        a = (d[:, :2] ** 2).sum(1)
        b = (oc * d[:, :2]).sum(1)
        disc = b * b - a * ((oc**2).sum(1) - self.radius**2)
        t_side = (-b - np.sqrt(np.maximum(disc, 0))) / np.maximum(a, 1e-12)
        z = o[:, 2] + t_side * d[:, 2]
        t_side = np.where((disc >= 0) & (t_side > 0) & (z >= 0) & (z <= self.height), t_side, np.inf)
        t_cap = np.where(d[:, 2] < -1e-9, (self.height - o[:, 2]) / np.minimum(d[:, 2], -1e-9), np.inf)
        p = o + np.where(np.isfinite(t_cap), t_cap, 0)[:, None] * d
        inside = ((p[:, :2] - self.center) ** 2).sum(1) <= self.radius**2
        t_cap = np.where(inside & (t_cap > 0), t_cap, np.inf)
        t = np.minimum(t_side, t_cap)
        p = o + np.where(np.isfinite(t), t, 0)[:, None] * d
        normal = np.zeros_like(o)
        normal[:, :2] = (p[:, :2] - self.center) / self.radius
        normal[t_cap <= t_side] = [0.0, 0.0, 1.0]
        rings = (np.floor(p[:, 2] * 10) % 2).astype(float)
        return t, normal, _mix([0.25, 0.7, 0.3], [0.9, 0.9, 0.85], rings)


OBJECTS = [Ground(), Sphere(), Box(), Cylinder()]


def trace(origins, directions, objects):
    """Nearest hit of each ray: (shaded rgb [N,3], hit [N] bool, label [N] int, distance [N])."""
    best_t = np.full(len(origins), np.inf)
    rgb, label = np.zeros((len(origins), 3)), np.zeros(len(origins), dtype=np.int64)
    for obj in objects:
        t, normal, albedo = obj.intersect(origins, directions)
        closer = t < best_t
        shade = AMBIENT + (1 - AMBIENT) * np.clip(normal @ LIGHT, 0, None)
        rgb[closer] = (albedo * shade[:, None])[closer]
        label[closer], best_t[closer] = obj.label, t[closer]
    return np.clip(rgb, 0, 1), np.isfinite(best_t), label, best_t


def look_at(position, target):
    """Camera-to-world matrix in the Blender/OpenGL convention (the camera looks down its -z axis)."""
    back = position - target
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, back, position
    return c2w


def camera_rays(c2w, height, width, focal, offsets=((0.5, 0.5),)):
    """World-space rays through each pixel at the given sub-pixel offsets: ([S,H*W,3], [S,H*W,3])."""
    origins, directions = [], []
    for dx, dy in offsets:
        i, j = np.meshgrid(np.arange(width) + dx, np.arange(height) + dy, indexing="xy")
        cam = np.stack([(i - width / 2) / focal, -(j - height / 2) / focal, -np.ones_like(i)], -1).reshape(-1, 3)
        d = cam @ c2w[:3, :3].T
        directions.append(d / np.linalg.norm(d, axis=1, keepdims=True))
        origins.append(np.broadcast_to(c2w[:3, 3], d.shape))
    return np.stack(origins), np.stack(directions)


def render_view(c2w, size, focal, objects, supersample):
    """Antialiased RGBA (uint8 [H,W,4]) from supersample^2 rays per pixel; label and depth at pixel centres."""
    grid = (np.arange(supersample) + 0.5) / supersample
    offsets = [(x, y) for y in grid for x in grid]
    origins, directions = camera_rays(c2w, size, size, focal, offsets)
    rgb, hit, _, _ = trace(origins.reshape(-1, 3), directions.reshape(-1, 3), objects)
    rgb, hit = rgb.reshape(len(offsets), -1, 3), hit.reshape(len(offsets), -1).astype(float)
    alpha = hit.mean(0)
    colour = (rgb * hit[..., None]).sum(0) / np.maximum(hit.sum(0), 1)[:, None]
    rgba = np.concatenate([colour, alpha[:, None]], 1).reshape(size, size, 4)
    centre_o, centre_d = camera_rays(c2w, size, size, focal)
    _, _, label, depth = trace(centre_o[0], centre_d[0], objects)
    return (rgba * 255 + 0.5).astype(np.uint8), label.reshape(size, size), depth.reshape(size, size)


def camera_poses(count, radius, rng):
    azimuth = rng.uniform(0, 2 * math.pi, count)
    elevation = np.radians(rng.uniform(20, 65, count))
    positions = radius * np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], 1)
    return [look_at(p + LOOK_AT, LOOK_AT) for p in positions]


def make_scene(cfg: SceneConfig):
    rng = np.random.default_rng(cfg.seed)
    focal = 0.5 * cfg.resolution / math.tan(0.5 * CAMERA_ANGLE_X)
    for split, count in (("train", cfg.train_views), ("val", cfg.val_views), ("test", cfg.test_views)):
        frames = []
        for index, c2w in enumerate(camera_poses(count, cfg.radius, rng)):
            rgba, label, depth = render_view(c2w, cfg.resolution, focal, OBJECTS, cfg.supersample)
            _save(cfg.out, f"{split}/r_{index}.png", Image.fromarray(rgba))
            _save(cfg.out, f"labels/{split}/r_{index}.png", Image.fromarray(label.astype(np.uint8)))
            os.makedirs(os.path.join(cfg.out, "depth", split), exist_ok=True)
            np.save(os.path.join(cfg.out, "depth", split, f"r_{index}.npy"), np.where(np.isfinite(depth), depth, 0).astype(np.float32))
            if split == "test":
                for removed in OBJECTS[1:]:
                    kept = [obj for obj in OBJECTS if obj is not removed]
                    rgba_without, _, _ = render_view(c2w, cfg.resolution, focal, kept, cfg.supersample)
                    _save(cfg.out, f"without_{removed.name}/test/r_{index}.png", Image.fromarray(rgba_without))
            frames.append({"file_path": f"./{split}/r_{index}", "transform_matrix": c2w.tolist()})
        with open(os.path.join(cfg.out, f"transforms_{split}.json"), "w") as f:
            json.dump({"camera_angle_x": CAMERA_ANGLE_X, "aabb": AABB, "frames": frames}, f, indent=1)
    with open(os.path.join(cfg.out, "scene.json"), "w") as f:
        json.dump({"objects": {obj.name: obj.label for obj in OBJECTS}, "background_label": 0}, f, indent=1)
    return cfg.out


def _save(root, relative, image):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path)
