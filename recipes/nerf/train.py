"""Training: photometric loss + lambda * feature loss (Kobayashi et al. 2022, eq. 4).

    L = sum_r ||C(r) - C_gt(r)||^2 + lambda * sum_r ||F(r) - F_teacher(r)||^2,

with F rendered through detached weights, so the feature loss trains only the feature grid. The
radiance grid is trained coarse to fine (``coarse_resolution`` until ``upsample_at`` of the
budget, then ``resolution``), with learning rates that decay exponentially over the budget; empty
space is skipped with the occupancy grid from ``occupancy_from`` on. Teacher maps are reduced to ``feature_dim`` channels by PCA over the training
views (a linear map, so upsampling and projecting commute).
"""

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from .config import option
from .data import BACKGROUNDS
from .model import FeatureFieldModel
from .registry import DATASETS, FIELDS, TEACHERS, ConfigError, lookup
from .teachers import build_teacher


# A guess, unmeasured above 2 threads (the machine here has 2 cores). Grid reads run on one thread
# each (fields.py), so further threads only share out the elementwise and per-ray work.
MAX_AUTO_THREADS = 8


@dataclass
class TrainConfig:
    scene: str = option("", "scene directory with transforms_{train,val,test}.json")
    out: str = option("", "run directory to write (config.json, model.pt, curve.json)")
    dataset: str = option("blender", "scene reader", choices=DATASETS)
    background: str = option("white", "colour the RGBA images are composited on", choices=BACKGROUNDS)
    max_side: int = option(128, "downscale images by an integer factor until their longer side is at most this")
    teacher: str = option("auto", "2D feature teacher distilled into the feature field (auto: oracle when the scene "
                          "has per-pixel labels, else efficientnet-lite0)", choices=lambda: ["auto", *TEACHERS])
    teacher_input_size: int = option(0, "side the teacher's input image is resized to (0: 448 EfficientNet, 224 DINO)")
    class_names: str = option("", "text file of the 1000 ImageNet class names, for --text queries with efficientnet-lite0")
    feature_cache: str = option("", "where teacher maps are cached (default SCENE/features)")
    field: str = option("radiance-grid", "radiance field", choices=lambda: fields_of_role("radiance"))
    feature_field: str = option("feature-grid", "feature field", choices=lambda: fields_of_role("feature"))
    resolution: int = option(0, "radiance grid voxels along the scene box's longest side, final (0: from the images, a voxel "
                             "3/4 of a pixel's footprint at the box centre)")
    coarse_resolution: int = option(48, "radiance grid resolution before --upsample-at")
    upsample_at: float = option(0.25, "fraction of the budget (--iterations, or --minutes if shorter) after which the radiance grid is upsampled")
    feature_resolution: int = option(64, "feature grid voxels along the longest side")
    feature_dim: int = option(16, "feature channels (teacher maps are PCA-reduced to this many)")
    iterations: int = option(2000, "training iterations (the budget, with --minutes)")
    minutes: float = option(0.0, "stop after this much training time (0: run all --iterations)")
    batch_rays: int = option(4096, "rays per iteration for the photometric loss")
    feature_rays: int = option(1024, "of those, rays per iteration for the feature loss")
    lr: float = option(0.1, "Adam learning rate of the radiance grid")
    feature_lr: float = option(0.05, "Adam learning rate of the feature grid")
    lr_decay: float = option(0.1, "both learning rates fall exponentially to this fraction of themselves over the budget")
    feature_weight: float = option(1.0, "lambda, the weight of the feature loss")
    occupancy_from: int = option(100, "first iteration that skips empty space")
    occupancy_every: int = option(25, "iterations between occupancy grid updates")
    occupancy_threshold: float = option(1e-2, "a voxel is empty when its alpha (and its neighbours') is below this")
    eval_every: int = option(250, "iterations between validation PSNR prints")
    seed: int = option(0, "random seed")
    device: str = option("", "cpu or cuda (default: cuda when available)")
    threads: int = option(0, "CPU threads for torch (0: the machine's cores, or OMP_NUM_THREADS if set, at most 8)")
    resolution_reached: int = option(0, "set by training: the radiance grid resolution saved", cli=False)


def fields_of_role(role):
    return [name for name, cls in FIELDS.items() if cls.role == role]


def set_threads(threads):
    """``threads``, or 0 for torch's default (the cores, or OMP_NUM_THREADS) capped at MAX_AUTO_THREADS."""
    if threads < 0:
        raise ConfigError(f"--threads must be >= 0 (0: the machine's cores, at most {MAX_AUTO_THREADS}), got {threads}")
    torch.set_num_threads(threads or min(torch.get_num_threads(), MAX_AUTO_THREADS))


def pick_device(name):
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") or (name == "cuda" and not torch.cuda.is_available()):
        raise ConfigError(f"--device {name!r} is not one of: cpu{', cuda' if torch.cuda.is_available() else ''}")
    return torch.device(name)


def open_scene(cfg):
    return lookup(DATASETS, cfg.dataset, "--dataset")(cfg.scene, background=cfg.background, max_side=cfg.max_side)


def num_labels(scene):
    return max(scene.objects.values(), default=0) + 1


class FeatureTargets:
    """Teacher maps of the training views, PCA-projected to the feature field's D channels and
    upsampled to image resolution; what queries read (a patch's mean, a clicked pixel)."""

    def __init__(self, teacher, maps, views, mean, basis):
        self.teacher, self.views, self.mean, self.basis = teacher, views, mean, basis
        self.projected = torch.einsum("nhwc,cd->nhwd", maps - mean, basis)
        self.labels, self.num_views = views.labels, len(views.images)
        self.height, self.width = views.height, views.width

    def view_features(self, index):
        low = self.projected[index].permute(2, 0, 1)[None]
        return F.interpolate(low, size=(self.height, self.width), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)

    def all_features(self):
        return torch.stack([self.view_features(i) for i in range(self.num_views)])

    def project_direction(self, direction):
        """A direction in teacher space (e.g. a classifier row), projected without centring."""
        return direction.float() @ self.basis


def fit_projection(maps, dim):
    """Mean [C] and the top-``dim`` principal directions [C,D] of the teacher features (identity if C <= D)."""
    channels = maps.shape[-1]
    if channels <= dim:
        return torch.zeros(channels), torch.eye(channels)
    flat = maps.reshape(-1, channels)
    mean = flat.mean(0)
    sample = flat[torch.randperm(len(flat), generator=torch.Generator().manual_seed(0))[:20000]] - mean
    _, _, v = torch.linalg.svd(sample, full_matrices=False)
    return mean, v[:dim].t().contiguous()


def teacher_targets(cfg, scene, views, mean=None, basis=None):
    teacher = build_teacher(cfg.teacher, num_labels(scene), cfg.teacher_input_size, cfg.class_names or None)
    maps = teacher.cached_maps(views, cfg.feature_cache or os.path.join(cfg.scene, "features"), "train")
    if mean is None:
        mean, basis = fit_projection(maps, cfg.feature_dim)
    return FeatureTargets(teacher, maps, views, mean, basis)


def psnr(mse):
    return -10.0 * math.log10(max(float(mse), 1e-10))


def evaluate_psnr(model, views, background, device):
    values = []
    for index in range(len(views.images)):
        origins, directions = views.rays(index)
        rgb = model.render_view(origins.to(device), directions.to(device), background)["rgb"]
        values.append(psnr(((rgb.cpu() - views.images[index].reshape(-1, 3)) ** 2).mean()))
    return sum(values) / len(values)


def check(cfg):
    if not cfg.out:
        raise ConfigError("--out: give a directory for the run")
    for flag, value in (("--iterations", cfg.iterations), ("--batch-rays", cfg.batch_rays), ("--feature-rays", cfg.feature_rays),
                        ("--eval-every", cfg.eval_every), ("--occupancy-every", cfg.occupancy_every), ("--feature-dim", cfg.feature_dim)):
        if value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    for flag, value in (("--resolution", cfg.resolution or 4), ("--coarse-resolution", cfg.coarse_resolution), ("--feature-resolution", cfg.feature_resolution)):
        if value < 4:
            raise ConfigError(f"{flag} must be >= 4 voxels, got {value}")
    if not 0 <= cfg.upsample_at <= 1:
        raise ConfigError(f"--upsample-at is a fraction of the budget (0 to 1), got {cfg.upsample_at}")
    if not 0 < cfg.lr_decay <= 1:
        raise ConfigError(f"--lr-decay is the final fraction of the learning rates (0 < x <= 1), got {cfg.lr_decay}")


def train(cfg: TrainConfig):
    check(cfg)
    torch.manual_seed(cfg.seed)
    set_threads(cfg.threads)
    device = pick_device(cfg.device)
    scene = open_scene(cfg)
    views, val = scene.load("train"), scene.load("val")
    if cfg.teacher == "auto":
        cfg.teacher = "oracle" if views.labels is not None else "efficientnet-lite0"
        print(f"--teacher auto: {cfg.teacher} (the scene {'has' if views.labels is not None else 'has no'} "
              "per-pixel labels)", flush=True)
    if cfg.resolution == 0:
        cfg.resolution = pixel_resolution(views, scene.aabb)
        print(f"--resolution 0: {cfg.resolution} (a voxel is 3/4 of a pixel's footprint at the scene box's centre)", flush=True)
    targets = teacher_targets(cfg, scene, views)
    feature_dim = targets.basis.shape[1]
    model = FeatureFieldModel(scene.aabb, cfg.field, min(cfg.coarse_resolution, cfg.resolution), cfg.feature_field, cfg.feature_resolution,
                              feature_dim).to(device)
    origins, directions = (x.reshape(-1, 3).to(device) for x in views.all_rays())
    colours = views.images.reshape(-1, 3).to(device)
    features = targets.all_features().reshape(-1, feature_dim).to(device)
    background = scene.background.to(device)
    optimiser = make_optimiser(model, cfg)
    fine_pending = cfg.coarse_resolution < cfg.resolution
    curve, train_seconds, started = [], 0.0, time.time()
    progress = _progress(cfg.iterations)
    for iteration in range(1, cfg.iterations + 1):
        tick = time.time()
        batch = torch.randint(0, len(origins), (cfg.batch_rays,), device=device)
        out = model.render(origins[batch], directions[batch], background, jitter=True, features=True, feature_rays=cfg.feature_rays)
        loss = F.mse_loss(out["rgb"], colours[batch])
        feature_loss = F.mse_loss(out["feature"], features[batch[: cfg.feature_rays]])
        optimiser.zero_grad(set_to_none=True)
        (loss + cfg.feature_weight * feature_loss).backward()
        optimiser.step()
        if iteration >= cfg.occupancy_from and iteration % cfg.occupancy_every == 0:
            model.radiance.update_occupancy(model.step, cfg.occupancy_threshold)
        train_seconds += time.time() - tick
        done = budget_used(cfg, iteration, train_seconds)
        if fine_pending and done >= cfg.upsample_at:
            model.radiance.upsample(cfg.resolution)
            optimiser, fine_pending = make_optimiser(model, cfg), False
        for group, base in zip(optimiser.param_groups, (cfg.lr, cfg.feature_lr)):
            group["lr"] = base * cfg.lr_decay ** done
        progress.update(iteration, loss=loss.item(), seconds=train_seconds)
        out_of_time = cfg.minutes > 0 and train_seconds >= 60 * cfg.minutes
        if iteration % cfg.eval_every == 0 or iteration == cfg.iterations or out_of_time:
            value = evaluate_psnr(model, val, background, device)
            curve.append({"iteration": iteration, "train_seconds": round(train_seconds, 1), "val_psnr": round(value, 2),
                          "lr": round(optimiser.param_groups[0]["lr"], 6), "resolution": max(model.radiance.density_grid.grid.shape[2:])})
            progress.log(f"iteration {iteration:5d}  train {train_seconds:6.1f} s  val PSNR {value:.2f} dB")
        if out_of_time:
            break
    progress.close()
    cfg.resolution_reached = max(model.radiance.density_grid.grid.shape[2:])
    os.makedirs(cfg.out, exist_ok=True)
    with open(os.path.join(cfg.out, "config.json"), "w") as f:
        json.dump(asdict(cfg), f, indent=1)
    torch.save({"model": model.state_dict(), "feature_mean": targets.mean, "feature_basis": targets.basis}, os.path.join(cfg.out, "model.pt"))
    summary = {"iterations": iteration, "train_seconds": round(train_seconds, 1), "wall_seconds": round(time.time() - started, 1),
               "threads": torch.get_num_threads(), "curve": curve}
    with open(os.path.join(cfg.out, "curve.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("curve (iteration, training seconds, val PSNR):")
    for point in curve:
        print(f"  {point['iteration']:5d}  {point['train_seconds']:7.1f} s  {point['val_psnr']:.2f} dB")
    print(f"saved {cfg.out}/model.pt after {iteration} iterations, {train_seconds:.1f} s of training ({summary['wall_seconds']} s wall)")
    return summary


def pixel_resolution(views, aabb, voxels_per_footprint=4 / 3):
    """Voxels along the box's longest side for which a voxel is 1 / ``voxels_per_footprint`` of the
    width that a pixel covers at the box centre, seen from the training cameras' mean distance. Finer
    voxels are each seen by fewer rays and stay noisy: at 2000 iterations, 128 voxels tested 0.3 dB
    (100 px bunny) and 0.95 dB (64 px generated scene) below 96 and 72, in 2.1x and 2.5x the time (README)."""
    centre = (aabb[0] + aabb[1]) / 2
    footprint = float((views.poses[:, :3, 3] - centre).norm(dim=1).mean()) / views.focal
    return max(4, round(voxels_per_footprint * float((aabb[1] - aabb[0]).max()) / footprint))


def budget_used(cfg, iteration, seconds):
    """The fraction of the training budget spent: of --iterations, or of --minutes if that runs out first."""
    used = iteration / cfg.iterations
    if cfg.minutes > 0:
        used = max(used, seconds / (60 * cfg.minutes))
    return min(used, 1.0)


def make_optimiser(model, cfg):
    # fused: one pass over each dense grid per step (4.5x faster than the default on CPU for 128^3 grids)
    return torch.optim.Adam(
        [{"params": model.radiance.parameters(), "lr": cfg.lr}, {"params": model.features.parameters(), "lr": cfg.feature_lr}], fused=True
    )


def load_run(run_dir, device=None):
    """(config, model, feature mean, feature basis) of a finished run."""
    if not os.path.isfile(os.path.join(run_dir, "model.pt")):
        raise ConfigError(f"--run {run_dir}: no model.pt there (train with: fairseq-plugins-nerf train --out {run_dir})")
    with open(os.path.join(run_dir, "config.json")) as f:
        saved = json.load(f)
    cfg = TrainConfig(**{f.name: saved[f.name] for f in fields(TrainConfig) if f.name in saved})
    state = torch.load(os.path.join(run_dir, "model.pt"), map_location="cpu")
    device = device or pick_device(cfg.device)
    feature_dim = state["feature_basis"].shape[1]
    scene_aabb = state["model"]["aabb"]
    model = FeatureFieldModel(scene_aabb, cfg.field, cfg.resolution_reached, cfg.feature_field, cfg.feature_resolution, feature_dim)
    model.load_state_dict(state["model"])
    return cfg, model.to(device).eval(), state["feature_mean"], state["feature_basis"]


class _progress:
    """A tqdm bar when stderr is a terminal, else one line per evaluation."""

    def __init__(self, total):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="it", dynamic_ncols=True)

    def update(self, iteration, loss, seconds):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(psnr=f"{psnr(loss):.2f}", refresh=False)

    def log(self, line):
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
