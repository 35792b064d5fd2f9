"""make-mesh-scene: OBJ reading, the rasterizer's silhouettes against the reader's rays, and the
Stanford bunny's views (skipped without glmark2-data: apt-get install glmark2-data)."""

import os

import numpy as np
import pytest
import torch

from nerf_helpers import run_nerf
from recipes.nerf.data import BlenderScene
from recipes.nerf.mesh_scene import MeshSceneConfig, make_mesh_scene, normalise, rasterize, read_obj
from recipes.nerf.render import ray_box
from recipes.nerf.scene import look_at

BUNNY = "/usr/share/glmark2/models/bunny.obj"

# A box, 2 x 1 x 0.5 in the OBJ's (x, y up, z): quads, "v/vt/vn" corners, and relative (negative) indices.
BOX_OBJ = """v -1 -0.5 -0.25
v 1 -0.5 -0.25
v 1 0.5 -0.25
v -1 0.5 -0.25
v -1 -0.5 0.25
v 1 -0.5 0.25
v 1 0.5 0.25
v -1 0.5 0.25
f 1/1/1 2/2/1 3/3/1 4/4/1
f 8 7 6 5
f 1 5 6 2
f -5 -1 -2 -6
f 1 4 8 5
f 2 6 7 3
"""


def test_obj_polygons_are_fanned_and_turned_z_up(tmp_path):
    (tmp_path / "box.obj").write_text(BOX_OBJ)
    vertices, triangles = read_obj(tmp_path / "box.obj")
    assert vertices.shape == (8, 3) and triangles.shape == (12, 3)
    assert sorted(set(triangles[6:8].ravel().tolist())) == [2, 3, 6, 7]  # "-5 -1 -2 -6" is the quad 4 8 7 3
    upright = normalise(vertices)
    # the OBJ's y (up) becomes z; its z (towards the viewer) becomes -y
    assert np.allclose(upright.min(0), [-1, -0.25, -0.5]) and np.allclose(upright.max(0), [1, 0.25, 0.5])


@pytest.mark.parametrize("near_first", [True, False])
def test_the_nearest_triangle_wins_the_pixel(near_first):
    camera = look_at(np.array([5.0, 0.0, 0.0]), np.zeros(3))  # looks along -x
    near = [[1.0, -3, -3], [1.0, 3, -3], [1.0, 0, 3]]  # the plane x = 1
    far = [[-1.0, -3, -3], [-1.0, 3, -3], [-1.0, 0, 3]]
    vertices = np.array(near + far if near_first else far + near)
    hit = rasterize(vertices, np.array([[0, 1, 2], [3, 4, 5]]), camera, 8, focal=8.0)
    assert (hit.reshape(8, 8)[3:5, 3:5] == (0 if near_first else 1)).all()


def test_box_silhouettes_match_the_readers_rays(tmp_path):
    """Each written view's alpha is where the reader's rays (its poses, focal and pixel centres) hit
    the box: the poses, the projection and the pixel convention agree (one sample per pixel, so no
    antialiasing; a half-pixel shift would move 2-4% of the pixels)."""
    (tmp_path / "box.obj").write_text(BOX_OBJ)
    make_mesh_scene(MeshSceneConfig(mesh=str(tmp_path / "box.obj"), out=str(tmp_path / "scene"), resolution=32,
                                    train_views=3, val_views=1, test_views=1, radius=3.0, supersample=1))
    scene = BlenderScene(str(tmp_path / "scene"), background="black")
    views = scene.load("train")
    assert views.images.shape == (3, 32, 32, 3) and views.labels is None
    box = torch.tensor([[-1.0, -0.25, -0.5], [1.0, 0.25, 0.5]])
    assert (scene.aabb[0] <= box[0]).all() and (scene.aabb[1] >= box[1]).all()
    for index in range(3):
        origins, directions = views.rays(index)
        near, far = ray_box(origins, directions, box)
        hit = (far > near).view(32, 32)
        covered = views.images[index].amax(-1) > 0  # lit or in shadow, never pure black (ambient light)
        assert 50 < int(hit.sum()) < 32 * 32 - 50  # the box fills part of the view
        assert (hit != covered).float().mean() <= 0.005  # a pixel centre on an edge may go either way


def test_bunny_views_cover_the_projected_vertices(tmp_path):
    if not os.path.isfile(BUNNY):
        pytest.skip(f"{BUNNY} is absent (apt-get install glmark2-data)")
    result = run_nerf("make-mesh-scene", "--mesh", BUNNY, "--out", tmp_path / "bunny", "--resolution", 48,
                      "--train-views", 2, "--val-views", 1, "--test-views", 1)
    assert "wrote" in result.stdout
    views = BlenderScene(str(tmp_path / "bunny"), background="black").load("train")
    vertices = torch.from_numpy(normalise(read_obj(BUNNY)[0])).float()
    for index in range(2):
        # project every vertex with the pose (Blender: the camera looks down -z, y up) and the focal
        pose = views.poses[index]
        camera = (vertices - pose[:3, 3]) @ pose[:3, :3]
        u = 24 + views.focal * camera[:, 0] / -camera[:, 2]
        v = 24 - views.focal * camera[:, 1] / -camera[:, 2]
        projected = torch.zeros(48, 48)
        projected[v.long(), u.long()] = 1
        covered = (views.images[index].amax(-1) > 0).float()
        assert 0.1 < covered.mean() < 0.7
        # the silhouette is where the vertices project, up to one pixel (edges antialiased to alpha 0)
        assert (projected <= grow(covered)).all() and (covered <= grow(projected)).all()
    assert not os.path.isdir(tmp_path / "bunny" / "labels")


def grow(mask):
    """The mask [H,W] dilated by one pixel."""
    return torch.nn.functional.max_pool2d(mask[None, None], 3, stride=1, padding=1)[0, 0]


def test_make_mesh_scene_errors_name_the_flag(tmp_path):
    result = run_nerf("make-mesh-scene", "--mesh", tmp_path / "none.obj", "--out", tmp_path / "scene", check=False)
    assert result.returncode == 1 and "--mesh" in result.stderr and "glmark2-data" in result.stderr
    assert result.stderr.count("\n") == 1
    (tmp_path / "box.obj").write_text(BOX_OBJ)
    result = run_nerf("make-mesh-scene", "--mesh", tmp_path / "box.obj", "--out", tmp_path / "scene", "--radius", 1.0, check=False)
    assert result.returncode == 1 and "--radius" in result.stderr and result.stderr.count("\n") == 1
