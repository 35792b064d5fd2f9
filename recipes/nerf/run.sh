#!/usr/bin/env bash
# Distilled feature fields on the generated scene, end to end: scene, training (oracle and
# EfficientNet-Lite0 teachers), patch and click queries, edits, evaluation. Run from the repository
# root. WORK_DIR=DIR (default nerf-work) holds every output; SMALL=1 runs a tiny version (CI).
# The figures of the README are WORK_DIR/figures/*.png, its table WORK_DIR/figures/evaluate-*.json.
set -euo pipefail
WORK_DIR=${WORK_DIR:-nerf-work}
nerf() { fairseq-plugins-nerf "$@"; }
if [[ "${SMALL:-0}" == 1 ]]; then
  scene_flags=(--resolution 32 --train-views 30 --val-views 2 --test-views 3)
  train_flags=(--iterations 300 --coarse-resolution 24 --resolution 48 --feature-resolution 24 --batch-rays 1024 --eval-every 150)
  teachers=(oracle)
  orbit_frames=4
else
  scene_flags=()
  train_flags=(--minutes 5)
  teachers=(oracle efficientnet-lite0)
  orbit_frames=24
fi
mkdir -p "$WORK_DIR/figures"
uptime
[[ -f "$WORK_DIR/scene/transforms_train.json" ]] || nerf make-scene --out "$WORK_DIR/scene" "${scene_flags[@]}"
# the sphere in training view 0 and a pixel of the box in training view 1 (64 px scene; scaled for SMALL)
size=$(python -c "from PIL import Image; print(Image.open('$WORK_DIR/scene/train/r_0.png').size[0])")
px() { for v in "$@"; do echo -n "$((v * size / 64)) "; done; }
for teacher in "${teachers[@]}"; do
  run="$WORK_DIR/run-$teacher"
  /usr/bin/time -f "train command: %e s wall" fairseq-plugins-nerf train --scene "$WORK_DIR/scene" --out "$run" --teacher "$teacher" "${train_flags[@]}"
  nerf query --run "$run" --name sphere-patch --patch 0 $(px 24 36 33 45)
  nerf query --run "$run" --name box-click --click 1 $(px 20 26)
  nerf evaluate --run "$run" --json | tee "$run/evaluate.json"
  cp "$run/evaluate.json" "$WORK_DIR/figures/evaluate-$teacher.json"  # the README's table, per teacher
  cp "$run/queries/sphere-patch.png" "$WORK_DIR/figures/query-sphere-patch-$teacher.png"
  cp "$run/queries/box-click.png" "$WORK_DIR/figures/query-box-click-$teacher.png"
done
run="$WORK_DIR/run-oracle"
nerf render --run "$run" --split test --out "$WORK_DIR/render-test" --sheet 6
nerf render --run "$run" --out "$WORK_DIR/orbit" --frames "$orbit_frames"
nerf edit --run "$run" --query sphere-patch --op delete --out "$WORK_DIR/edit-delete" --sheet 6
nerf edit --run "$run" --query sphere-patch --op recolor --colour 0.2 0.5 1.0 --out "$WORK_DIR/edit-recolor" --sheet 6
nerf edit --run "$run" --query box-click --op translate --offset 0 0.45 0 --out "$WORK_DIR/edit-translate" --sheet 6
nerf edit --run "$run" --query box-click --op extract --out "$WORK_DIR/edit-extract" --sheet 6
for name in render-test edit-delete edit-recolor edit-translate edit-extract; do
  cp "$WORK_DIR/$name/sheet.png" "$WORK_DIR/figures/$name.png"
done
uptime
