"""The renderer's math: closed-form transmittance, compositing, ray-box sampling, grid reads."""

import math

import pytest
import torch

import nerf_helpers  # noqa: F401  (puts the repository root on sys.path)
from recipes.nerf.fields import FeatureGrid, RadianceGrid
from recipes.nerf.render import composite, compositing_weights, ray_box, sample_along_rays, transmittance


@pytest.mark.parametrize("samples", [1, 7, 64])
def test_constant_density_slab_transmits_exp_minus_sigma_l(samples):
    sigma, thickness = 3.0, 0.8
    # two rays packed together: the slab, and an empty ray in front of it in the list
    ray_index = torch.cat([torch.zeros(3, dtype=torch.long), torch.ones(samples, dtype=torch.long)])
    densities = torch.cat([torch.zeros(3), torch.full((samples,), sigma)])
    delta = torch.cat([torch.full((3,), 0.5), torch.full((samples,), thickness / samples)])
    weights = compositing_weights(densities, delta, ray_index, 2)
    opacity = composite(weights, torch.ones(len(weights), 1), ray_index, 2)[:, 0]
    # the exact quadrature of piecewise-constant density: opacity 1 - exp(-sigma L) for any sampling
    assert opacity[0].item() == 0.0
    assert opacity[1].item() == pytest.approx(1 - math.exp(-sigma * thickness), rel=1e-5)
    # transmittance in front of sample i is exp(-sigma * (i * L / N)): the weights are its decrements
    t = torch.arange(samples + 1) * thickness / samples
    assert torch.allclose(weights[3:], torch.exp(-sigma * t[:-1]) - torch.exp(-sigma * t[1:]), atol=1e-6)
    through, _ = transmittance(densities, delta, ray_index, 2)
    assert torch.allclose(through[3:], torch.exp(-sigma * t[:-1]), atol=1e-6)


def test_two_slabs_the_front_one_occludes():
    # an opaque red slab in front of a green one: the pixel is red; the other way round, green
    sigma = torch.tensor([0.0, 1e4, 0.0, 1e4])
    delta, ray_index = torch.full((4,), 0.1), torch.zeros(4, dtype=torch.long)
    colours = torch.tensor([[0, 0, 1.0], [1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    front_red = composite(compositing_weights(sigma, delta, ray_index, 1), colours, ray_index, 1)
    front_green = composite(compositing_weights(sigma.flip(0), delta, ray_index, 1), colours.flip(0), ray_index, 1)
    assert torch.allclose(front_red, torch.tensor([[1.0, 0, 0]]), atol=1e-5)
    assert torch.allclose(front_green, torch.tensor([[0, 1.0, 0]]), atol=1e-5)


def test_ray_box_entry_exit_and_miss():
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    origins = torch.tensor([[-3.0, 0.0, 0.0], [-3.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    directions = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    near, far = ray_box(origins, directions, aabb)
    assert near[0].item() == pytest.approx(2.0) and far[0].item() == pytest.approx(4.0)
    assert far[1] <= near[1]  # misses
    assert near[2].item() == 0.0 and far[2].item() == pytest.approx(1.0)  # starts inside


def test_samples_stop_at_the_box_exit():
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    origins = torch.tensor([[-3.0, 0, 0], [-3.0, 5.0, 0], [0.0, 0, 0]])
    directions = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0.0, 0, -1.0]])
    samples = sample_along_rays(origins, directions, aabb, 0.25, jitter=False)
    assert torch.bincount(samples.ray_index, minlength=3).tolist() == [8, 0, 4]  # 2 / 0.25, a miss, 1 / 0.25
    assert (samples.points.abs() < 1).all()
    assert torch.allclose(samples.t[:8], 2.125 + 0.25 * torch.arange(8.0))


def test_grid_reads_are_trilinear_and_corner_exact():
    aabb = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 1.0]])
    grid = FeatureGrid(aabb, resolution=3, channels=1)  # 2 x 3 x 2 voxels (x, y, z): y is the long side
    assert list(grid.grid.shape) == [1, 1, 2, 3, 2]
    with torch.no_grad():
        z, y, x = torch.meshgrid(torch.arange(2.0), torch.arange(3.0), torch.arange(2.0), indexing="ij")
        grid.grid[0, 0] = x + 10 * y + 100 * z  # linear in the voxel coordinates
    points = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 1.0], [0.5, 1.5, 0.25]])
    values = grid(points)[:, 0]
    assert torch.allclose(values, torch.tensor([0.0, 121.0, 0.5 + 15 + 25]), atol=1e-4)


def test_initial_density_and_occupancy():
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    field = RadianceGrid(aabb, resolution=16, initial_alpha=1e-3)
    sigma, rgb = field(torch.zeros(4, 3))
    voxel = field.voxel_size
    assert (1 - torch.exp(-sigma * voxel)).allclose(torch.tensor(1e-3), rtol=1e-4)
    assert torch.allclose(rgb, torch.full((4, 3), 0.5))
    field.update_occupancy(voxel, threshold=1e-2)
    assert not field.occupancy.any()  # nothing above the threshold yet
    with torch.no_grad():
        field.density_grid.grid[0, 0, 8, 8, 8] = 20.0
    field.update_occupancy(voxel, threshold=1e-2)
    assert int(field.occupancy.sum()) == 27  # the voxel and its 26 neighbours
    centre = aabb[0] + 8 * voxel
    assert field.occupied(torch.stack([centre, centre + 5 * voxel, torch.tensor([5.0, 0, 0])])).tolist() == [True, False, False]


def test_a_grid_read_on_several_threads_makes_no_tensor_larger_than_the_grid():
    """Reads once went in as one batch item per thread over an expanded grid, whose backward made a
    grid-sized gradient per thread (8 at 8 threads) and was slower (bench/nerf_grid_read.py)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class LargestTensor(TorchDispatchMode):
        numel = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(tensor, torch.Tensor):
                    self.numel = max(self.numel, tensor.numel())
            return out

    torch.manual_seed(0)
    grid = FeatureGrid(torch.tensor([[-1.0, -1.0, -1.0], [1.0, 2.0, 1.0]]), resolution=30, channels=5)
    points, weights = torch.rand(5001, 3) * 3 - 1, torch.randn(5001, 5)  # fewer values than the grid holds
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        with LargestTensor() as largest:
            (grid(points) * weights).sum().backward()
    finally:
        torch.set_num_threads(previous)
    assert largest.numel == grid.grid.numel() and grid.grid.grad.shape == grid.grid.shape
