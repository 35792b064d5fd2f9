#!/usr/bin/env bash
# run.sh: the whole comparison: prepare, then each treatment at LR and at HIGH_LR, then evaluate
# (with SMALL=1 only vanilla runs at HIGH_LR: the same steps, fewer runs).
set -euo pipefail
. "$(dirname "$0")/common.sh"
"$HERE/prepare.sh"
for treatment in "${TREATMENTS[@]}"; do "$HERE/train.sh" "$treatment" "$LR"; done
for treatment in $([[ $SMALL == 1 ]] && echo vanilla || echo "${TREATMENTS[@]}"); do
    "$HERE/train.sh" "$treatment" "$HIGH_LR"
done
"$HERE/evaluate.sh"
