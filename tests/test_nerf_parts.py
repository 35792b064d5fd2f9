"""Registries, the Blender-format reader (RGBA composited on the background), the scene generator,
and queries/edits on a hand-built field whose geometry and features are known."""

import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from nerf_helpers import run_nerf
from recipes.nerf import registry
from recipes.nerf.data import BlenderScene
from recipes.nerf.edits import EditOptions, Selection
from recipes.nerf.model import FeatureFieldModel
from recipes.nerf.scene import SceneConfig, make_scene


def test_every_kind_has_its_parts_registered():
    assert set(registry.FIELDS) == {"radiance-grid", "feature-grid"}
    assert set(registry.TEACHERS) == {"oracle", "efficientnet-lite0", "dino"}
    assert set(registry.DATASETS) == {"blender"}
    assert set(registry.QUERIES) == {"patch", "click", "text"}
    assert set(registry.EDITS) == {"delete", "extract", "recolor", "translate"}


def test_registering_a_name_twice_fails_and_unknown_names_name_the_flag():
    table, register = registry.make_registry("thing")

    @register("a")
    class A:
        pass

    assert table == {"a": A} and A.registered_name == "a"
    with pytest.raises(ValueError, match="registered twice"):
        register("a")(type("B", (), {}))
    with pytest.raises(registry.ConfigError, match="--thing 'b' is not one of: a"):
        registry.lookup(table, "b", "--thing")


def write_rgba_scene(root, size=8, camera_angle_x=0.5):
    """Two views of size x size: left half opaque red, right half transparent (alpha 0), a
    middle column half transparent."""
    os.makedirs(os.path.join(root, "train"), exist_ok=True)
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[:, : size // 2] = [255, 0, 0, 255]
    rgba[:, size // 2] = [0, 0, 255, 128]
    frames = []
    for index in range(2):
        Image.fromarray(rgba).save(os.path.join(root, "train", f"r_{index}.png"))
        frames.append({"file_path": f"./train/r_{index}", "transform_matrix": np.eye(4).tolist()})
    for split in ("train", "test"):
        with open(os.path.join(root, f"transforms_{split}.json"), "w") as f:
            json.dump({"camera_angle_x": camera_angle_x, "frames": frames}, f)


@pytest.mark.parametrize("background", ["white", "black"])
def test_rgba_images_are_composited_on_the_background(tmp_path, background):
    write_rgba_scene(str(tmp_path))
    scene = BlenderScene(str(tmp_path), background=background)
    views = scene.load("train")
    bg = 1.0 if background == "white" else 0.0
    assert views.images.shape == (2, 8, 8, 3) and views.labels is None
    assert torch.allclose(views.images[0, 0, 0], torch.tensor([1.0, 0, 0]))  # opaque: its colour
    assert torch.allclose(views.images[0, 0, 7], torch.full((3,), bg))  # transparent: the background
    alpha = 128 / 255
    assert torch.allclose(views.images[0, 0, 4], torch.tensor([bg * (1 - alpha), bg * (1 - alpha), alpha + bg * (1 - alpha)]))
    assert views.focal == pytest.approx(4 / math.tan(0.25))
    assert torch.allclose(scene.aabb, torch.tensor([[-1.5] * 3, [1.5] * 3]))  # NeRF-synthetic's box when none is given
    assert len(scene.load("val").images) == 2  # no val split: the test split stands in


def test_large_images_are_box_downscaled_and_the_focal_follows(tmp_path):
    write_rgba_scene(str(tmp_path), size=16)
    views = BlenderScene(str(tmp_path), max_side=8).load("train")
    assert views.images.shape == (2, 8, 8, 3)
    assert views.focal == pytest.approx(8 / math.tan(0.25) / 2)
    assert torch.allclose(views.images[0, 0, 3], torch.tensor([1.0, 0, 0]))
    # a 2x2 block of half-transparent blue and transparent pixels: premultiplied average, alpha a/2
    alpha = 128 / 255 / 2
    assert torch.allclose(views.images[0, 0, 4], torch.tensor([0, 0, alpha]) + (1 - alpha), atol=1e-5)


def test_reader_errors_name_the_flag(tmp_path):
    result = run_nerf("train", "--scene", tmp_path, "--out", tmp_path / "run", check=False)
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "--scene" in result.stderr and "transforms_train.json" in result.stderr
    write_rgba_scene(str(tmp_path))
    os.remove(tmp_path / "train" / "r_1.png")
    with pytest.raises(registry.ConfigError, match="r_1.png"):
        BlenderScene(str(tmp_path)).load("train")
    result = run_nerf("train", "--scene", tmp_path, "--out", tmp_path / "run", "--iterations", 0, check=False)
    assert result.returncode == 1 and "--iterations must be >= 1, got 0" in result.stderr and result.stderr.count("\n") == 1
    result = run_nerf("train", "--scene", tmp_path, "--teacher", "clip", check=False)
    assert result.returncode == 2 and "--teacher" in result.stderr and "Traceback" not in result.stderr


def test_generated_scene_is_a_blender_scene_with_labels(tmp_path):
    make_scene(SceneConfig(out=str(tmp_path), resolution=16, train_views=2, val_views=1, test_views=1))
    scene = BlenderScene(str(tmp_path))
    train, test = scene.load("train"), scene.load("test")
    assert scene.objects == {"ground": 1, "sphere": 2, "box": 3, "cylinder": 4}
    assert train.images.shape == (2, 16, 16, 3) and train.labels.shape == (2, 16, 16)
    # every camera looks at the objects: the central pixel shows an object or the ground, corners may not
    assert (train.labels[:, 8, 8] > 0).all()
    # where the labels say background, the composited image is the white background (but at
    # silhouettes, which the antialiased pixel partly covers)
    background = train.labels == 0
    assert (train.images[background] > 0.99).all(-1).float().mean() > 0.8
    without = scene.load("test", image_dir="without_sphere")
    sphere = test.labels[0] == 2
    assert not torch.allclose(without.images[0][sphere], test.images[0][sphere])
    assert torch.allclose(without.images[0][test.labels[0] == 0], test.images[0][test.labels[0] == 0])


def ball_model(centre=(0.0, 0.0, 0.0), radius=0.4):
    """A dense ball of one colour whose feature is e_1; everything else empty with feature e_0."""
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    model = FeatureFieldModel(aabb, resolution=32, feature_resolution=16, feature_dim=2)
    def inside(grid):
        nz, ny, nx = grid.shape[2:]
        z, y, x = torch.meshgrid(*(torch.linspace(-1, 1, n) for n in (nz, ny, nx)), indexing="ij")
        return ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) < radius**2

    with torch.no_grad():
        ball = inside(model.radiance.density_grid.grid)
        model.radiance.density_grid.grid[0, 0] = torch.where(ball, 10.0, -30.0)
        ball = inside(model.features.grid)
        model.features.grid[0, 0] = (~ball).float()
        model.features.grid[0, 1] = ball.float()
        model.radiance.colour_grid.grid[0, 0] = 3.0  # red
        model.radiance.colour_grid.grid[0, 1:] = -3.0
    return model


def rays_along_x(y):
    origins = torch.tensor([[-3.0, y, 0.0]])
    return origins, torch.tensor([[1.0, 0.0, 0.0]])


def test_edits_act_on_the_selection_only():
    model = ball_model()
    white = torch.ones(3)
    selection = Selection(torch.tensor([0.0, 1.0]), threshold=0.7)
    hit, miss = rays_along_x(0.0), rays_along_x(0.8)
    plain = model.render(*hit, white, selection=selection)
    assert plain["opacity"].item() > 0.99 and plain["selected"].item() > 0.99
    assert plain["rgb"][0, 0] > 0.9 and plain["rgb"][0, 1] < 0.1
    assert model.render(*miss, white, selection=selection)["opacity"].item() < 0.01
    delete = registry.EDITS["delete"](selection, EditOptions())
    assert model.render(*hit, white, edit=delete)["opacity"].item() < 0.01
    nothing = Selection(torch.tensor([1.0, -1.0]), threshold=0.99)  # selects empty space only
    assert model.render(*hit, white, edit=registry.EDITS["delete"](nothing, EditOptions()))["opacity"].item() > 0.99
    assert model.render(*hit, white, edit=registry.EDITS["extract"](nothing, EditOptions()))["opacity"].item() < 0.01
    recolour = registry.EDITS["recolor"](selection, EditOptions(colour=[0.0, 0.0, 1.0]))
    blue = model.render(*hit, white, edit=recolour)["rgb"][0]
    assert blue[2] > 0.9 and blue[0] < 0.05
    move = registry.EDITS["translate"](selection, EditOptions(offset=[0.0, 0.8, 0.0]))
    assert model.render(*hit, white, edit=move)["opacity"].item() < 0.01
    moved = model.render(*miss, white, edit=move)
    assert moved["opacity"].item() > 0.99 and moved["rgb"][0, 0] > 0.9


def test_teachers_maps_text_rows_and_cache(tmp_path):
    from recipes.nerf.teachers import DinoTeacher, EfficientNetLite0Teacher, OracleTeacher

    make_scene(SceneConfig(out=str(tmp_path / "scene"), resolution=16, train_views=2, val_views=1, test_views=1))
    views = BlenderScene(str(tmp_path / "scene")).load("train")
    oracle = OracleTeacher(num_labels=5).cached_maps(views, str(tmp_path / "cache"), "train")
    assert torch.equal(oracle.argmax(-1), views.labels)
    assert sorted(os.listdir(tmp_path / "cache" / "oracle" / "train-16x16")) == ["r_0.pt", "r_1.pt"]

    teacher = EfficientNetLite0Teacher(input_size=64)
    maps = teacher.cached_maps(views, str(tmp_path / "cache"), "train")
    assert maps.shape == (2, 2, 2, 1280)  # stride 32
    assert torch.allclose(teacher.cached_maps(views, str(tmp_path / "cache"), "train"), maps, atol=1e-2)  # read back (float16)
    assert teacher.text_embedding("817").shape == (1280,)
    with pytest.raises(registry.ConfigError, match="--class-names"):
        teacher.text_embedding("sports car")
    with pytest.raises(registry.ConfigError, match="no text embedding"):
        DinoTeacher().text_embedding("cat")


def test_the_feature_loss_leaves_the_radiance_field_untouched():
    """Features are rendered through detached weights: distilling them cannot move geometry or colour."""
    model = ball_model()
    origins, directions = rays_along_x(0.1)
    out = model.render(origins.repeat(4, 1), directions.repeat(4, 1), torch.zeros(3), features=True)
    out["feature"][:, 1].sum().backward()
    assert model.features.grid.grad is not None and model.features.grid.grad.abs().sum() > 0
    for name, param in model.radiance.named_parameters():
        assert param.grad is None or param.grad.abs().sum() == 0, name


def test_teacher_maps_are_cached_per_input_resolution(tmp_path):
    """A re-run at another --max-side must not reuse maps computed from differently sized views."""
    from recipes.nerf.teachers import OracleTeacher

    write_rgba_scene(str(tmp_path / "scene"), size=16)
    teacher = OracleTeacher(2)
    calls = []
    teacher.maps = lambda images, views, index: calls.append(images.shape) or torch.zeros(1, *images.shape[1:3], 2)
    for max_side in (16, 8, 16):
        views = BlenderScene(str(tmp_path / "scene"), max_side=max_side).load("train")
        maps = teacher.cached_maps(views, str(tmp_path / "cache"), "train")
        assert maps.shape[1:3] == views.images.shape[1:3]
    assert [shape[1] for shape in calls] == [16, 16, 8, 8]  # two views per size, the third run reads the cache


def test_the_installed_command_runs_outside_the_repository(tmp_path):
    from conftest import run_cli

    result = run_cli("fairseq-plugins-nerf", "train", "--scene", tmp_path / "none", "--out", tmp_path / "run",
                     cwd=tmp_path, check=False)
    assert result.returncode == 1 and "No module named" not in result.stderr
    assert result.stderr.startswith("fairseq-plugins-nerf train: error:") and "--scene" in result.stderr


def test_a_scene_without_labels_trains_with_the_defaults_on_a_real_teacher(tmp_path):
    import shutil

    make_scene(SceneConfig(out=str(tmp_path / "scene"), resolution=16, train_views=2, val_views=1, test_views=1))
    shutil.rmtree(tmp_path / "scene" / "labels")  # as a captured scene: images and poses only
    result = run_nerf("train", "--scene", tmp_path / "scene", "--out", tmp_path / "run", "--iterations", 2,
                      "--resolution", 8, "--coarse-resolution", 8, "--feature-resolution", 8, "--eval-every", 2)
    assert "--teacher auto: efficientnet-lite0 (the scene has no per-pixel labels)" in result.stdout
    assert json.loads((tmp_path / "run" / "config.json").read_text())["teacher"] == "efficientnet-lite0"
