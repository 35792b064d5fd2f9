"""A Blender-format scene rendered from a triangle mesh (e.g. the Stanford bunny of glmark2-data).

The mesh is read from a Wavefront OBJ (``v`` and ``f`` lines; polygons are fanned into triangles),
turned from the OBJ convention (y up) to the scene's (z up), centred and scaled so that its longest
half-extent is 1. Its colour is an image (``--texture``, e.g. a photograph of glmark2-data) wrapped
around it by longitude and latitude, or without one a 3D pattern of the surface point (colour waves
plus stripes along z), so the radiance has detail at several scales; shading is Lambertian with a
fixed light and smoothly interpolated vertex normals. Views are rasterized with a z-buffer (plain
numpy), ``supersample``^2 samples per pixel, on cameras spread evenly over the whole sphere around
the mesh. Written as RGBA PNGs (transparent background) with
``transforms_{train,val,test}.json`` and an ``aabb`` around the mesh; no labels, no depth: a scene as
a capture would give it.
"""

import json
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .config import option
from .registry import ConfigError
from .scene import AMBIENT, CAMERA_ANGLE_X, LIGHT, _save, camera_rays, look_at

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # (x, y, z) -> (x, -z, y)


@dataclass
class MeshSceneConfig:
    mesh: str = option("", "Wavefront OBJ file (e.g. /usr/share/glmark2/models/bunny.obj from glmark2-data)")
    texture: str = option("", "image wrapped around the mesh by longitude and latitude (empty: a 3D colour pattern)")
    out: str = option("", "scene directory to write")
    resolution: int = option(100, "image side in pixels")
    train_views: int = option(100, "training views")
    val_views: int = option(4, "validation views")
    test_views: int = option(16, "test views")
    radius: float = option(4.0, "camera distance from the mesh centre (the mesh's longest half-extent is 1)")
    supersample: int = option(2, "samples per pixel along each axis (antialiasing)")
    seed: int = option(0, "random seed of the camera positions")


def read_obj(path):
    """(vertices [V,3] float, triangles [F,3] int) of an OBJ file; ``f`` entries may be ``v/vt/vn``
    and negative (relative) indices."""
    vertices, triangles = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "v":
                vertices.append([float(x) for x in parts[1:4]])
            elif parts[0] == "f":
                corners = [int(p.split("/")[0]) for p in parts[1:]]
                corners = [c - 1 if c > 0 else len(vertices) + c for c in corners]
                triangles.extend([corners[0], corners[k], corners[k + 1]] for k in range(1, len(corners) - 1))
    if not vertices or not triangles:
        raise ConfigError(f"--mesh {path}: no vertices or faces (expected a Wavefront OBJ with v and f lines)")
    return np.array(vertices), np.array(triangles, dtype=np.int64)


def normalise(vertices):
    """Z up, the bounding box centred on the origin, the longest half-extent 1."""
    vertices = vertices @ Y_UP_TO_Z_UP.T
    low, high = vertices.min(0), vertices.max(0)
    return (vertices - (low + high) / 2) / ((high - low).max() / 2)


def vertex_normals(vertices, triangles):
    """Area-weighted mean of the adjacent faces' normals [V,3] (shared vertices give smooth shading)."""
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    face = np.cross(b - a, c - a)  # length = twice the area
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def pattern_albedo(points):
    """Colour [N,3] of surface points [N,3]: slow waves per channel and stripes 0.2 apart along z."""
    waves = 0.5 + 0.3 * np.sin(np.stack([3.0 * points[:, 0] + 1.0, 3.5 * points[:, 1] + 2.0, 2.5 * (points[:, 0] + points[:, 2])], 1))
    stripes = 0.5 + 0.5 * np.sin(2 * math.pi * points[:, 2] / 0.2)
    return np.clip(waves * (0.7 + 0.3 * stripes[:, None]), 0, 1)


class TextureAlbedo:
    """Colour [N,3] of surface points [N,3] read bilinearly from an image at (longitude, latitude)
    around the origin (the mesh's centre)."""

    def __init__(self, path):
        if not os.path.isfile(path):
            raise ConfigError(f"--texture {path}: no such image")
        self.image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255

    def __call__(self, points):
        height, width = self.image.shape[:2]
        longitude = np.arctan2(points[:, 1], points[:, 0]) / (2 * math.pi) + 0.5  # [0, 1]
        latitude = np.arccos(np.clip(points[:, 2] / np.maximum(np.linalg.norm(points, axis=1), 1e-12), -1, 1)) / math.pi
        x, y = longitude * width - 0.5, latitude * (height - 1)
        x0, y0 = np.floor(x).astype(np.int64), np.floor(y).clip(0, height - 2).astype(np.int64)
        fx, fy = (x - x0)[:, None], (y - y0).clip(0, 1)[:, None]
        x1, x0 = (x0 + 1) % width, x0 % width  # longitude wraps around
        top = self.image[y0, x0] * (1 - fx) + self.image[y0, x1] * fx
        bottom = self.image[y0 + 1, x0] * (1 - fx) + self.image[y0 + 1, x1] * fx
        return top * (1 - fy) + bottom * fy


def rasterize(vertices, triangles, c2w, size, focal):
    """Z-buffer the triangles into a size x size image of the camera c2w (Blender convention, as
    ``scene.camera_rays``): the index of the triangle nearest to each pixel centre [size*size], -1
    where none covers it."""
    rotation, position = c2w[:3, :3], c2w[:3, 3]
    camera = (vertices - position) @ rotation  # camera coordinates; the camera looks down -z
    depth = -camera[:, 2]  # > 0: make_mesh_scene keeps the cameras outside the mesh's bounding sphere
    # pixel coordinates of the vertices; pixel (i, j) has its centre at (i + 0.5, j + 0.5)
    u = size / 2 + focal * camera[:, 0] / depth
    v = size / 2 - focal * camera[:, 1] / depth
    tu, tv, tz = u[triangles], v[triangles], depth[triangles]  # [F,3] each
    first_i = np.ceil(tu.min(1) - 0.5).clip(0, size).astype(np.int64)
    last_i = np.floor(tu.max(1) - 0.5).clip(-1, size - 1).astype(np.int64)
    first_j = np.ceil(tv.min(1) - 0.5).clip(0, size).astype(np.int64)
    last_j = np.floor(tv.max(1) - 0.5).clip(-1, size - 1).astype(np.int64)
    width, height = np.maximum(last_i - first_i + 1, 0), np.maximum(last_j - first_j + 1, 0)
    # one candidate per (triangle, pixel of its bounding box), all triangles at once
    owner = np.repeat(np.arange(len(triangles)), width * height)
    local = np.arange(len(owner)) - np.repeat(np.cumsum(width * height) - width * height, width * height)
    pi = first_i[owner] + local % width[owner]
    pj = first_j[owner] + local // width[owner]
    px, py = pi + 0.5, pj + 0.5
    (u0, u1, u2), (v0, v1, v2) = tu[owner].T, tv[owner].T
    area = (u1 - u0) * (v2 - v0) - (u2 - u0) * (v1 - v0)
    w0 = ((u1 - px) * (v2 - py) - (u2 - px) * (v1 - py)) / np.where(area == 0, 1, area)
    w1 = ((u2 - px) * (v0 - py) - (u0 - px) * (v2 - py)) / np.where(area == 0, 1, area)
    w2 = 1 - w0 - w1
    inside = (area != 0) & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    owner, pixel = owner[inside], (pj * size + pi)[inside]
    # screen-space barycentrics interpolate 1/depth linearly (perspective projection)
    inverse_depth = (w0[inside] / tz[owner, 0] + w1[inside] / tz[owner, 1] + w2[inside] / tz[owner, 2])
    order = np.lexsort((-inverse_depth, pixel))  # by pixel, nearest first
    pixel, owner = pixel[order], owner[order]
    nearest = np.ones(len(pixel), dtype=bool)
    nearest[1:] = pixel[1:] != pixel[:-1]
    hit = np.full(size * size, -1, dtype=np.int64)
    hit[pixel[nearest]] = owner[nearest]
    return hit


def shade(vertices, triangles, normals, albedo, hit, origins, directions):
    """RGB [N,3] of rays [N,3] that hit the triangles ``hit`` [N] (each >= 0): the exact ray-plane
    intersection, barycentric vertex normals, albedo times Lambert with ambient."""
    a, b, c = (vertices[triangles[hit, k]] for k in range(3))
    face = np.cross(b - a, c - a)
    t = ((a - origins) * face).sum(1) / (directions * face).sum(1)
    points = origins + t[:, None] * directions
    # barycentric coordinates of the point from sub-triangle areas
    total = (face * face).sum(1)
    wa = (np.cross(c - b, points - b) * face).sum(1) / total
    wb = (np.cross(a - c, points - c) * face).sum(1) / total
    wc = 1 - wa - wb
    normal = sum(w[:, None] * normals[triangles[hit, k]] for k, w in enumerate((wa, wb, wc)))
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    normal *= -np.sign((normal * directions).sum(1, keepdims=True))  # the side facing the camera
    light = AMBIENT + (1 - AMBIENT) * np.clip(normal @ LIGHT, 0, None)
    return np.clip(albedo(points) * light[:, None], 0, 1)


def render_mesh_view(vertices, triangles, normals, albedo, c2w, size, focal, supersample):
    """Antialiased RGBA (uint8 [size,size,4]): rendered at supersample x the size, averaged in blocks
    (colour premultiplied by coverage, as the reader's downscaling)."""
    big = size * supersample
    hit = rasterize(vertices, triangles, c2w, big, focal * supersample)
    origins, directions = (x[0] for x in camera_rays(c2w, big, big, focal * supersample))
    rgba = np.zeros((big * big, 4))
    covered = hit >= 0
    rgba[covered, :3] = shade(vertices, triangles, normals, albedo, hit[covered], origins[covered], directions[covered])
    rgba[covered, 3] = 1
    blocks = rgba.reshape(size, supersample, size, supersample, 4).mean((1, 3))
    blocks[..., :3] /= np.maximum(blocks[..., 3:], 1e-8)
    return (blocks * 255 + 0.5).astype(np.uint8)


def sphere_directions(count, rng):
    """``count`` unit vectors spread evenly over the sphere (a Fibonacci lattice, randomly rotated about z)."""
    k = np.arange(count) + 0.5
    z = 1 - 2 * k / count
    azimuth = math.pi * (1 + 5**0.5) * k + rng.uniform(0, 2 * math.pi)
    return np.stack([np.sqrt(1 - z * z) * np.cos(azimuth), np.sqrt(1 - z * z) * np.sin(azimuth), z], 1)


def sphere_poses(count, radius, rng):
    """Cameras at ``radius`` from the origin, evenly over the sphere, looking at the origin."""
    poses = []
    for direction in sphere_directions(count, rng):
        if abs(direction[2]) > 0.999:  # look_at needs a view direction that is not along z
            direction = np.array([0.05, 0.0, math.copysign(1.0, direction[2])])
        poses.append(look_at(radius * direction / np.linalg.norm(direction), np.zeros(3)))
    return poses


def make_mesh_scene(cfg: MeshSceneConfig):
    if not os.path.isfile(cfg.mesh):
        raise ConfigError(f"--mesh {cfg.mesh}: no such file (the Stanford bunny is /usr/share/glmark2/models/bunny.obj: apt-get install glmark2-data)")
    vertices, triangles = read_obj(cfg.mesh)
    vertices = normalise(vertices)
    reach = float(np.linalg.norm(vertices, axis=1).max())
    if cfg.radius <= reach * 1.01:
        raise ConfigError(f"--radius {cfg.radius}: the cameras must be outside the mesh (it reaches {reach:.2f} from its centre)")
    normals = vertex_normals(vertices, triangles)
    albedo = TextureAlbedo(cfg.texture) if cfg.texture else pattern_albedo
    focal = 0.5 * cfg.resolution / math.tan(0.5 * CAMERA_ANGLE_X)
    low, high = vertices.min(0), vertices.max(0)
    aabb = [(low - 0.05).round(3).tolist(), (high + 0.05).round(3).tolist()]
    rng = np.random.default_rng(cfg.seed)
    for split, count in (("train", cfg.train_views), ("val", cfg.val_views), ("test", cfg.test_views)):
        frames = []
        for index, c2w in enumerate(sphere_poses(count, cfg.radius, rng)):
            rgba = render_mesh_view(vertices, triangles, normals, albedo, c2w, cfg.resolution, focal, cfg.supersample)
            _save(cfg.out, f"{split}/r_{index}.png", Image.fromarray(rgba))
            frames.append({"file_path": f"./{split}/r_{index}", "transform_matrix": c2w.tolist()})
        with open(os.path.join(cfg.out, f"transforms_{split}.json"), "w") as f:
            json.dump({"camera_angle_x": CAMERA_ANGLE_X, "aabb": aabb, "frames": frames}, f, indent=1)
    return cfg.out
