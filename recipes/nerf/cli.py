"""``fairseq-plugins-nerf {make-scene,make-mesh-scene,train,render,query,edit,evaluate}``."""

import json
import math
import os
import sys

import numpy as np
import torch
from PIL import Image

from .config import OneLineErrors, add_arguments, from_arguments
from .edits import EditOptions, Selection
from .mesh_scene import MeshSceneConfig, make_mesh_scene
from .registry import EDITS, QUERIES, ConfigError, lookup
from .scene import SceneConfig, camera_rays, look_at, make_scene
from .train import TrainConfig, load_run, open_scene, psnr, set_threads, teacher_targets, train


def build_parser():
    parser = OneLineErrors(prog="fairseq-plugins-nerf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrors)

    p = commands.add_parser("make-scene", help="write the procedural labelled scene (Blender format)")
    add_arguments(p, SceneConfig)

    p = commands.add_parser("make-mesh-scene", help="render a triangle mesh (OBJ) as a Blender-format scene, no labels")
    add_arguments(p, MeshSceneConfig)

    p = commands.add_parser("train", help="train a radiance field and distil a teacher into a feature field")
    add_arguments(p, TrainConfig)

    p = commands.add_parser("query", help="turn a patch, a click or a class name into a 3D selection")
    p.add_argument("--run", required=True, help="run directory written by train")
    p.add_argument("--name", required=True, help="the query's name (saved as RUN/queries/NAME.json)")
    p.add_argument("--threshold", type=float, default=0.5, help="cosine similarity above which a point is selected (default: 0.5)")
    group = p.add_mutually_exclusive_group(required=True)
    for name, cls in sorted(QUERIES.items()):
        group.add_argument(cls.flag, nargs=len(cls.metavar), metavar=cls.metavar, help=f"{name} query")

    for name, help_text in (("render", "PNG frames of an orbit (or of a split's views), optionally edited"),
                            ("edit", "PNG views of a split with an edit applied to a query's selection")):
        p = commands.add_parser(name, help=help_text)
        p.add_argument("--run", required=True, help="run directory written by train")
        p.add_argument("--out", required=True, help="directory for the PNG frames (and sheet.png, a strip of them)")
        p.add_argument("--query", default="", help="name of a saved query (needed by --op)")
        p.add_argument("--op", default="" if name == "render" else "delete", choices=([""] if name == "render" else []) + sorted(EDITS),
                       help="edit applied to the query's selection")
        add_arguments(p, EditOptions)
        if name == "render":
            p.add_argument("--frames", type=int, default=24, help="frames on the orbit (default: 24)")
            p.add_argument("--elevation", type=float, default=35.0, help="orbit elevation in degrees (default: 35)")
        p.add_argument("--split", default="test" if name == "edit" else "", help="render this split's cameras instead of an orbit")
        p.add_argument("--sheet", type=int, default=6, help="frames in sheet.png (default: 6)")

    p = commands.add_parser("evaluate", help="test-split PSNR; selection IoU and delete PSNR of saved queries")
    p.add_argument("--run", required=True, help="run directory written by train")
    p.add_argument("--scene", default="", help="scene directory (default: the one the run was trained on)")
    p.add_argument("--query", action="append", default=[], help="saved query to score (repeatable; default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    for name, sub in commands.choices.items():
        if name != "train":  # train declares it in TrainConfig
            sub.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default 0: the machine's cores, or OMP_NUM_THREADS if set, at most 8)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        set_threads(args.threads)
        COMMANDS[args.command](args)
    except ConfigError as error:
        print(f"fairseq-plugins-nerf {args.command}: error: {error}", file=sys.stderr)
        sys.exit(1)


def run_make_scene(args):
    cfg = from_arguments(SceneConfig, args)
    if not cfg.out:
        raise ConfigError("--out: give a directory for the scene")
    if cfg.resolution < 8 or cfg.train_views < 1 or cfg.test_views < 1:
        raise ConfigError("--resolution must be >= 8 and --train-views, --test-views >= 1")
    make_scene(cfg)
    print(f"wrote {cfg.out}: {cfg.train_views}/{cfg.val_views}/{cfg.test_views} views of {cfg.resolution}x{cfg.resolution}")


def run_make_mesh_scene(args):
    cfg = from_arguments(MeshSceneConfig, args)
    if not cfg.mesh or not cfg.out:
        raise ConfigError("--mesh and --out: give an OBJ file and a directory for the scene")
    if cfg.resolution < 8 or cfg.train_views < 1 or cfg.val_views < 1 or cfg.test_views < 1 or cfg.supersample < 1:
        raise ConfigError("--resolution must be >= 8 and --train-views, --val-views, --test-views, --supersample >= 1")
    make_mesh_scene(cfg)
    print(f"wrote {cfg.out}: {cfg.train_views}/{cfg.val_views}/{cfg.test_views} views of {cfg.resolution}x{cfg.resolution} of {cfg.mesh}")


def run_train(args):
    cfg = from_arguments(TrainConfig, args)
    if not cfg.scene:
        raise ConfigError("--scene: give a scene directory (e.g. one written by make-scene)")
    train(cfg)


def query_context(cfg, mean, basis):
    scene = open_scene(cfg)
    return scene, teacher_targets(cfg, scene, scene.load("train"), mean, basis)


def run_query(args):
    if not -1 <= args.threshold < 1:
        raise ConfigError(f"--threshold is a cosine similarity in [-1, 1), got {args.threshold}")
    cfg, model, mean, basis = load_run(args.run)
    scene, context = query_context(cfg, mean, basis)
    kind = next(name for name, cls in QUERIES.items() if getattr(args, cls.flag[2:]) is not None)
    values = getattr(args, QUERIES[kind].flag[2:])
    try:
        query = QUERIES[kind](*values)
    except ValueError:
        raise ConfigError(f"{QUERIES[kind].flag} expects integers {' '.join(QUERIES[kind].metavar)}, got {' '.join(values)}") from None
    vector = query.vector(context)
    saved = {"kind": kind, "arguments": values, "threshold": args.threshold, "vector": vector.tolist(), "target_label": query.target_label}
    directory = os.path.join(args.run, "queries")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{args.name}.json"), "w") as f:
        json.dump(saved, f)
    # show the selection in the query's view (training view 0 for a text query)
    view_index = getattr(query, "view", 0)
    views = context.views
    device = next(model.parameters()).device
    origins, directions = views.rays(view_index)
    out = model.render_view(origins.to(device), directions.to(device), scene.background.to(device),
                            selection=Selection(vector, args.threshold))
    mask = (out["selected"] > 0.5).cpu().view(views.height, views.width)
    overlay = views.images[view_index].clone()
    overlay[mask] = 0.4 * overlay[mask] + 0.6 * torch.tensor([1.0, 0.0, 1.0])
    picture = os.path.join(directory, f"{args.name}.png")
    save_png(torch.cat([views.images[view_index], overlay], 1), picture)
    names = {label: name for name, label in scene.objects.items()}
    target = f", meant to select label {query.target_label} ({names.get(query.target_label, '?')})" if query.target_label is not None else ""
    print(f"saved query {args.name} ({kind}, threshold {args.threshold}){target}; {picture} shows the selection in training view {view_index}")


def saved_query(run, name):
    path = os.path.join(run, "queries", f"{name}.json")
    if not os.path.isfile(path):
        available = sorted(f[:-5] for f in os.listdir(os.path.join(run, "queries"))) if os.path.isdir(os.path.join(run, "queries")) else []
        raise ConfigError(f"--query {name!r} is not saved in {run}/queries (saved: {', '.join(available) or 'none'}; make one with the query command)")
    with open(path) as f:
        saved = json.load(f)
    return saved, Selection(torch.tensor(saved["vector"]), saved["threshold"])


def make_edit(args):
    if not args.op:
        return None
    if not args.query:
        raise ConfigError(f"--op {args.op} needs --query NAME (a saved query)")
    _, selection = saved_query(args.run, args.query)
    return lookup(EDITS, args.op, "--op")(selection, from_arguments(EditOptions, args))


def orbit(views, frames, elevation_degrees, centre):
    """Cameras on a circle around ``centre`` at the training cameras' mean distance."""
    radius = float((views.poses[:, :3, 3] - centre).norm(dim=1).mean())
    elevation = math.radians(elevation_degrees)
    poses = []
    for k in range(frames):
        azimuth = 2 * math.pi * k / frames
        offset = radius * np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
        poses.append(look_at(centre.numpy() + offset, centre.numpy().astype(float)))
    return poses


def run_render(args):
    cfg, model, _, _ = load_run(args.run)
    scene = open_scene(cfg)
    edit = make_edit(args)
    device = next(model.parameters()).device
    if args.split:
        views = scene.load(args.split)
        poses = [p.double().numpy() for p in views.poses]
    else:
        views = scene.load("train")
        centre = (scene.aabb[0] + scene.aabb[1]) / 2
        centre[2] = scene.aabb[0][2] + 0.3 * (scene.aabb[1][2] - scene.aabb[0][2])
        poses = orbit(views, args.frames, args.elevation, centre.double())
    os.makedirs(args.out, exist_ok=True)
    frames = []
    for index, pose in enumerate(poses):
        origins, directions = (torch.from_numpy(x[0]).float().to(device) for x in camera_rays(pose, views.height, views.width, views.focal))
        rgb = model.render_view(origins, directions, scene.background.to(device), edit=edit)["rgb"].cpu().view(views.height, views.width, 3)
        save_png(rgb, os.path.join(args.out, f"frame_{index:03d}.png"))
        frames.append(rgb)
    if args.sheet > 0:
        picked = frames[:: max(1, len(frames) // args.sheet)][: args.sheet]
        save_png(torch.cat(picked, 1), os.path.join(args.out, "sheet.png"))
    print(f"wrote {len(frames)} frames to {args.out}" + (f" ({args.op} of query {args.query})" if edit else ""))


def run_evaluate(args):
    cfg, model, mean, basis = load_run(args.run)
    if args.scene:
        cfg.scene = args.scene
    scene = open_scene(cfg)
    test = scene.load("test")
    device = next(model.parameters()).device
    background = scene.background.to(device)
    rays = [tuple(x.to(device) for x in test.rays(i)) for i in range(len(test.images))]
    result = {"scene": cfg.scene, "run": args.run, "teacher": cfg.teacher, "test_views": len(rays),
              "test_psnr": mean_psnr([model.render_view(o, d, background)["rgb"].cpu() for o, d in rays], test)}
    names = args.query or sorted(f[:-5] for f in os.listdir(os.path.join(args.run, "queries")) if f.endswith(".json")) if os.path.isdir(os.path.join(args.run, "queries")) else args.query
    objects = {label: name for name, label in scene.objects.items()}
    result["queries"] = {}
    for name in names:
        saved, selection = saved_query(args.run, name)
        scores = {"kind": saved["kind"], "arguments": saved["arguments"], "threshold": saved["threshold"]}
        label = saved["target_label"]
        if label is not None and test.labels is not None:
            scores["target"] = objects.get(label, str(label))
            intersection = union = 0
            for (o, d), truth in zip(rays, test.labels):
                predicted = model.render_view(o, d, background, selection=selection)["selected"].cpu() > 0.5
                truth = truth.reshape(-1) == label
                intersection += int((predicted & truth).sum())
                union += int((predicted | truth).sum())
            scores["iou"] = round(intersection / max(union, 1), 4)
            without = f"without_{objects.get(label)}"
            if os.path.isdir(os.path.join(scene.root, without)):
                truth_views = scene.load("test", image_dir=without)
                delete = EDITS["delete"](selection, EditOptions())
                scores["delete_psnr"] = mean_psnr([model.render_view(o, d, background, edit=delete)["rgb"].cpu() for o, d in rays], truth_views)
                scores["unedited_vs_without_psnr"] = mean_psnr([model.render_view(o, d, background)["rgb"].cpu() for o, d in rays], truth_views)
        result["queries"][name] = scores
    if args.json:
        print(json.dumps(result))
    else:
        print(f"test PSNR {result['test_psnr']:.2f} dB over {len(rays)} views ({cfg.scene})")
        for name, scores in result["queries"].items():
            print(f"query {name}: " + ", ".join(f"{k} {v}" for k, v in scores.items() if k not in ("arguments",)))


def mean_psnr(renders, views):
    values = [psnr(((rgb - truth.reshape(-1, 3)) ** 2).mean()) for rgb, truth in zip(renders, views.images)]
    return round(sum(values) / len(values), 3)


def save_png(rgb, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray((rgb.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)).save(path)


COMMANDS = {"make-scene": run_make_scene, "make-mesh-scene": run_make_mesh_scene, "train": run_train, "query": run_query, "render": run_render, "edit": run_render, "evaluate": run_evaluate}
