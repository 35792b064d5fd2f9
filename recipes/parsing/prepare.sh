#!/usr/bin/env bash
# prepare.sh: $WORK_DIR/data/{train,valid,test}.conllu.
#   SMALL=1: the Turkish web treebank (pip install --no-deps turkish-treebanks==1.0.0; its
#            site-packages/data/web.conllu), 2,541 sentences split 80/10/10 with a fixed seed (0).
#   else:    UD English EWT, release EWT_RELEASE (default r2.13), from the treebank's official
#            repository (resumable download; the archive must list the three files, and every
#            sentence must pass the task's reader; EWT_SHA256=<hex> also checks the archive's hash).
. "$(dirname "$0")/common.sh"
step_done data && exit 0
mkdir -p "$DATA"
if [[ $SMALL == 1 ]]; then
    SOURCE=$(python -c "import importlib.metadata as m; print(m.distribution('turkish-treebanks').locate_file('data/web.conllu'))" 2>/dev/null) \
        || die "the Turkish treebank is not installed; pip install --no-deps turkish-treebanks==1.0.0"
    [[ -e $SOURCE ]] || die "$SOURCE not found; pip install --no-deps --force-reinstall turkish-treebanks==1.0.0"
    say "split $SOURCE 80/10/10"
    $TREEBANK split "$SOURCE" "$DATA" --seed 0
else
    RELEASE=${EWT_RELEASE:-r2.13}
    URL=https://github.com/UniversalDependencies/UD_English-EWT/archive/refs/tags/$RELEASE.tar.gz
    ARCHIVE=$WORK_DIR/download/UD_English-EWT-$RELEASE.tar.gz
    DOWNLOAD_HINT="download $URL yourself into $ARCHIVE and run prepare.sh again"
    ewt_archive_ok() {
        is_gzip_tar "$1" || return 1
        [[ $(tar -tzf "$1" | grep -cE 'en_ewt-ud-(train|dev|test)\.conllu$') == 3 ]] || return 1
        [[ -z ${EWT_SHA256:-} ]] || [[ $(sha256sum "$1" | cut -d' ' -f1) == "$EWT_SHA256" ]]
    }
    fetch "$URL" "$ARCHIVE" ewt_archive_ok
    tar -xzf "$ARCHIVE" -C "$WORK_DIR/download"
    for pair in train:train valid:dev test:test; do
        cp "$WORK_DIR/download/UD_English-EWT-$RELEASE/en_ewt-ud-${pair#*:}.conllu" "$DATA/${pair%%:*}.conllu"
    done
fi
$TREEBANK check "$DATA"
mark_done data
