#!/usr/bin/env bash
# The whole study: flip 10% of the training labels, train with turn-over dropout, rank the training
# instances (turn-over dropout vs TracInCP vs loss vs random), remove the most harmful ones (or as many
# at random), retrain, compare test accuracy; how much of the influence the masks explain. SMALL=1: sklearn digits, one seed (CI).
. "$(dirname "$0")/common.sh"
rm -f "$WORK_DIR/results/accuracy.tsv"
bash "$HERE/prepare.sh" noisy
bash "$HERE/train.sh" noisy 1
bash "$HERE/evaluate.sh" rank
python "$HERE/mask_variance.py" --data "$WORK_DIR/data/noisy" --influence "$WORK_DIR/results/influence" \
    --checkpoint "$WORK_DIR/checkpoints/noisy.1/checkpoint_last.pt" --out "$WORK_DIR/results/mask_variance.json"
bash "$HERE/prepare.sh" harmful-removed "$WORK_DIR/results/remove_harmful.npy"
bash "$HERE/prepare.sh" random-removed "$WORK_DIR/results/remove_random.npy"
runs=()
for seed in $SEEDS; do
    for name in noisy harmful-removed random-removed; do
        [ "$name.$seed" = noisy.1 ] || bash "$HERE/train.sh" "$name" "$seed"
        runs+=("$name.$seed")
    done
done
bash "$HERE/evaluate.sh" accuracy "${runs[@]}"
python "$HERE/report.py" "$WORK_DIR/results"
if [ "${SMALL:-0}" != 1 ]; then
    mkdir -p "$HERE/figures" && cp "$WORK_DIR/results/precision.png" "$HERE/figures/precision_at_k.png"
    # the README's tables come from these two files
    cp "$WORK_DIR/results/precision.json" "$WORK_DIR/results/accuracy.tsv" "$WORK_DIR/results/mask_variance.json" "$HERE/figures/"
fi
