"""The trainer's pieces: the budget that drives the schedules, the thread default, one render pass
for both losses, coarse-to-fine upsampling and occupancy pruning."""

import pytest
import torch

import nerf_helpers  # noqa: F401  (puts the repository root on sys.path)
from recipes.nerf import train as training
from recipes.nerf.fields import RadianceGrid
from recipes.nerf.model import FeatureFieldModel
from recipes.nerf.train import TrainConfig, budget_used, pixel_resolution, set_threads


def test_the_budget_is_iterations_or_minutes_whichever_runs_out_first():
    by_iterations = TrainConfig(iterations=200)
    assert budget_used(by_iterations, 50, seconds=1e6) == 0.25  # no --minutes: time does not count
    timed = TrainConfig(iterations=200, minutes=2)
    assert budget_used(timed, 50, seconds=90) == 0.75  # time runs out first
    assert budget_used(timed, 150, seconds=30) == 0.75  # iterations run out first
    assert budget_used(timed, 250, seconds=500) == 1.0


def test_threads_default_to_torchs_count_capped(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)  # torch's default: the cores, or OMP_NUM_THREADS
    set_threads(0)
    set_threads(3)
    assert chosen == [training.MAX_AUTO_THREADS, 3] and TrainConfig().threads == 0


# CPU seconds a process spends over 40 sleeps of 20 ms after 2-thread torch work: idle OpenMP threads
# that spin use them, threads that sleep do not. Then its OMP_WAIT_POLICY.
OPENMP_PROBE = """
import os, sys, time
if sys.argv[1] == "package":
    import recipes.nerf
import torch
torch.set_num_threads(2)
x = torch.randn(1 << 20)
start = sum(os.times()[:2])
for _ in range(40):
    torch.add(x, x)
    time.sleep(0.02)
print(sum(os.times()[:2]) - start, os.environ.get("OMP_WAIT_POLICY"))
"""


def test_openmp_threads_sleep_in_the_package_process_without_changing_its_environment():
    """Importing the package makes idle OpenMP threads sleep (spinning ones made 2 threads 7-10x
    slower on a shared machine) but leaves os.environ, which child processes inherit, as it was."""
    import os
    import subprocess
    import sys

    def probe(first_import, **policy):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | policy
        out = subprocess.run([sys.executable, "-c", OPENMP_PROBE, first_import], cwd=nerf_helpers.ROOT, env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        return float(out[0]), out[1]

    sleeping, sleeping_env = probe("package")
    spinning, _ = probe("torch")  # torch loaded before the package: OpenMP's default policy, which spins a while
    assert sleeping_env == "None" and sleeping < spinning / 4
    assert probe("package", OMP_WAIT_POLICY="ACTIVE")[1] == "ACTIVE"  # the user's choice is kept


def test_the_default_resolution_follows_the_pixel_footprint():
    from types import SimpleNamespace

    aabb = torch.tensor([[1.0, 1.0, 1.0], [3.0, 2.0, 2.0]])  # longest side 2, centred on (2, 1.5, 1.5)
    poses = torch.eye(4).repeat(2, 1, 1)
    poses[0, :3, 3] = torch.tensor([2.0, 1.5, 5.5])  # 4 from the centre
    poses[1, :3, 3] = torch.tensor([-4.0, 1.5, 1.5])  # 6 from the centre
    views = SimpleNamespace(poses=poses, focal=50.0)
    # a pixel covers 5 / 50 = 0.1 at the mean distance: 20 footprints along the box, 4/3 voxels each
    assert pixel_resolution(views, aabb) == 27


def random_model(seed=0):
    torch.manual_seed(seed)
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    model = FeatureFieldModel(aabb, resolution=9, feature_resolution=5, feature_dim=3)
    with torch.no_grad():
        model.radiance.density_grid.grid.normal_(0, 4)
        model.radiance.colour_grid.grid.normal_()
        model.features.grid.normal_()
    return model


def test_features_of_the_leading_rays_come_from_the_same_pass():
    model = random_model()
    origins = torch.tensor([[-3.0, 0.1 * k - 0.4, 0.05 * k] for k in range(8)])
    directions = torch.tensor([[1.0, 0.0, 0.0]]).repeat(8, 1)
    white = torch.ones(3)
    every = model.render(origins, directions, white, features=True)
    leading = model.render(origins, directions, white, features=True, feature_rays=3)
    assert leading["feature"].shape == (3, 3) and every["feature"].abs().sum() > 0
    assert torch.allclose(leading["feature"], every["feature"][:3], atol=1e-6)
    assert torch.equal(leading["rgb"], every["rgb"])


def test_upsampling_by_a_whole_factor_keeps_the_field_everywhere():
    """Trilinear on a grid refined by a whole factor (8 -> 16 intervals) is the same function."""
    field = random_model().radiance
    points = torch.rand(500, 3) * 2 - 1
    sigma, rgb = field(points)
    field.upsample(17)
    assert list(field.density_grid.grid.shape[2:]) == [17, 17, 17]
    upsampled_sigma, upsampled_rgb = field(points)
    assert torch.allclose(upsampled_sigma, sigma, rtol=1e-4, atol=1e-4)
    assert torch.allclose(upsampled_rgb, rgb, atol=1e-5)


def test_occupancy_never_drops_a_point_denser_than_the_threshold():
    """Occupancy is read at a point's nearest voxel; the max-pool over neighbours covers the other
    corners of the cell that the trilinear read mixes, so no point with alpha above the threshold is skipped."""
    field = RadianceGrid(torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]), resolution=12)
    torch.manual_seed(1)
    with torch.no_grad():
        field.density_grid.grid.normal_(-3, 4)  # mostly empty, scattered dense voxels
    step, threshold = field.voxel_size, 1e-2
    field.update_occupancy(step, threshold)
    assert 0 < field.occupancy.float().mean() < 0.95
    points = torch.rand(20000, 3) * 2 - 1
    alpha = 1 - torch.exp(-field.density(points) * step)
    dense = alpha > threshold
    assert dense.sum() > 100
    assert field.occupied(points)[dense].all()


def test_learning_rates_decay_and_the_grid_is_upsampled_on_the_budget(tmp_path):
    from recipes.nerf.scene import SceneConfig, make_scene
    from recipes.nerf.train import train

    make_scene(SceneConfig(out=str(tmp_path / "scene"), resolution=16, train_views=2, val_views=1, test_views=1))
    cfg = TrainConfig(scene=str(tmp_path / "scene"), out=str(tmp_path / "run"), iterations=4, eval_every=2, batch_rays=64,
                      feature_rays=16, coarse_resolution=8, resolution=12, feature_resolution=8, upsample_at=0.75, lr_decay=0.01)
    curve = train(cfg)["curve"]
    # lr = --lr * --lr-decay ** (fraction of the budget spent); upsampled once 3 of the 4 iterations are done
    assert [point["lr"] for point in curve] == pytest.approx([0.1 * 0.01**0.5, 0.1 * 0.01])
    assert [point["resolution"] for point in curve] == [8, 12]
