#!/usr/bin/env bash
# Issue 14's GPU session, in one device call of at most 10 minutes: the whole training set built
# from the carried data, edge, popdg, fact and dancenet trained on CUDA, and `choreo bench --quick`.
#
# Here, first:  bash benchmarks/gpu_pack.sh          (writes .gpu/: wheels and the shared data)
# On the device: run(command="bash benchmarks/gpu_session.sh $OUT", carry=[".gpu"], timeout_s=600)
# Proof on a CPU: PYTHON=.venv/bin/python DEVICE=cpu TINY=1 bash benchmarks/gpu_session.sh /tmp/gpu_out
#
# What comes back in OUTDIR (the device returns at most 8 files, 16 MiB each, simple names):
#   edge.pt popdg.pt fact.pt dancenet.pt   each run's model.pt (sampling only; the last saved
#                                          checkpoint's when a training ran out of time)
#   benchmarks_gpu.md, bench_images.tar    the bench report (plots under gpu/ in the tar, linked as
#                                          images/gpu/...; see docs/real_data.md "Training on a GPU")
#   gpu_session.json                       stage timings, nvidia-smi, torch's device, the build's
#                                          manifest summary, every loss log
#   session.log                            this script's and every stage's output
#
# Order: the bench runs before the build and the training, with its own time limit, because a
# bench stopped midway writes nothing, while a training stopped at the deadline still leaves its
# last checkpoint. The four trainings run side by side: each must first compute the music features
# of the whole set on the CPU (a minute or more), which would otherwise be paid four times in a row;
# the small networks leave the GPU mostly idle, so sharing it costs little.
#
# Settings (environment): PYTHON (python3), DEVICE (cuda), TINY (0; 1 = a tiny build, 3 steps, no
# bench, batch 8), BUDGET_S (540: everything ends by then), MODELS, STEPS (4000) or STEPS_<MODEL>, BATCH (64),
# LR_<MODEL>, INIT_<MODEL> (the bundled checkpoint; dancenet starts from scratch), SAVE_EVERY (250),
# LOG_EVERY (50), BENCH (1), BENCH_TIMEOUT_S (240), PARALLEL (1), WORKERS (nproc), PACK (.gpu),
# WORK (a new /tmp folder), SITE (/tmp/site: where the wheels go).
set -uo pipefail

OUTDIR=${1:?usage: bash benchmarks/gpu_session.sh OUTDIR}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
START=$(date +%s)

PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
TINY=${TINY:-0}
BUDGET_S=${BUDGET_S:-540}
MODELS=${MODELS:-edge popdg fact dancenet}
WORKERS=${WORKERS:-$(nproc)}
PACK=${PACK:-$REPO/.gpu}
WORK=${WORK:-$(mktemp -d /tmp/choreo_gpu.XXXXXX)}
SITE=${SITE:-/tmp/site}
if [[ $TINY == 1 ]]; then STEPS=${STEPS:-3}; BATCH=${BATCH:-8}; BENCH=${BENCH:-0}
else STEPS=${STEPS:-4000}; BATCH=${BATCH:-64}; BENCH=${BENCH:-1}; fi
SAVE_EVERY=${SAVE_EVERY:-250}
LOG_EVERY=${LOG_EVERY:-50}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-240}
PARALLEL=${PARALLEL:-1}
RESERVE_S=30  # kept for the checkpoints, the report and the copy back
# Learning rates as the CPU runs of issue 14 use them; fine-tuning from the bundled checkpoints,
# except dancenet, which starts from scratch.
LR_EDGE=${LR_EDGE:-2e-4}; LR_POPDG=${LR_POPDG:-2e-4}; LR_FACT=${LR_FACT:-3e-4}; LR_DANCENET=${LR_DANCENET:-1e-3}
INIT_EDGE=${INIT_EDGE-backend/checkpoints/edge_default.pt}
INIT_POPDG=${INIT_POPDG-backend/checkpoints/popdg_default.pt}
INIT_FACT=${INIT_FACT-backend/checkpoints/fact_default.pt}
INIT_DANCENET=${INIT_DANCENET-}

mkdir -p "$WORK/logs"
export PYTHONUNBUFFERED=1
SESSION_LOG=$WORK/logs/session.txt
STAGES=$WORK/stages.tsv
: >"$STAGES"
say() { echo "$*" | tee -a "$SESSION_LOG"; }
remaining() { echo $((START + BUDGET_S - $(date +%s))); }
stage() {  # stage NAME CMD...: CMD's output into logs/NAME.log; its seconds and exit status into stages.tsv
    local name=$1 t0 t1 rc cmd
    shift
    cmd="$*"
    cmd=${cmd//$'\n'/ }
    say "== $name: ${cmd:0:400}"
    t0=$(date +%s.%N)
    "$@" >"$WORK/logs/$name.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    printf '%s\t%s\t%s\n' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" "$rc" >>"$STAGES"
    say "   $name: exit $rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s"
    tr '\r' '\n' <"$WORK/logs/$name.log" | grep -v '^\s*$' | tail -n 4 | sed 's/^/   | /' | tee -a "$SESSION_LOG"
    return "$rc"
}
setting() { printf '%s\t%s\n' "$1" "$2" >>"$WORK/settings.tsv"; }
: >"$WORK/settings.tsv"
for v in DEVICE TINY BUDGET_S MODELS WORKERS STEPS BATCH SAVE_EVERY LOG_EVERY BENCH BENCH_TIMEOUT_S PARALLEL; do
    setting "$v" "${!v}"
done
say "gpu_session: out $OUTDIR, work $WORK, device $DEVICE, tiny $TINY, budget ${BUDGET_S} s"
if [[ ! -s $PACK/data.tar.xz ]] || ! compgen -G "$PACK/wheels/*.whl" >/dev/null; then
    say "error: no pack in $PACK: run bash benchmarks/gpu_pack.sh first, and carry .gpu"
    exit 2
fi

# -- the machine
if command -v nvidia-smi >/dev/null; then stage nvidia_smi nvidia-smi; fi
stage torch "$PYTHON" -c '
import json, sys, torch
cuda = torch.cuda.is_available()
json.dump({"version": torch.__version__, "cuda_available": cuda, "cuda": torch.version.cuda,
           "device_name": torch.cuda.get_device_name(0) if cuda else None,
           "device_count": torch.cuda.device_count()}, open(sys.argv[1], "w"))
print(open(sys.argv[1]).read())' "$WORK/torch.json"

# -- the packages the image lacks (only when this Python lacks them)
if "$PYTHON" -c 'import librosa, zmq, soundfile, soxr, smplx' 2>/dev/null; then
    say "== install: skipped, $PYTHON has the backend's packages"
else
    stage install "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$PACK"/wheels/*.whl
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    stage imports "$PYTHON" -c 'import librosa, zmq, soundfile, soxr, smplx; print("librosa", librosa.__version__, "pyzmq", zmq.__version__, "soundfile", soundfile.__version__, "libsndfile", soundfile.__libsndfile_version__)'
fi

# -- the shared data, from the carried tarball, its BVH files rebuilt byte for byte
stage unpack "$PYTHON" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
    "$PACK/data.tar.xz" "$WORK"
stage rebuild_bvh "$PYTHON" benchmarks/bvh_pack.py unpack "$WORK/data"
MOCAP=$WORK/data/mocap/cmu
MUSIC=$WORK/data/music/sectoid

# -- the bench first (see the top): its report and plots, the plots' links pointing at images/gpu/
if [[ $BENCH == 1 ]]; then
    limit=$(( $(remaining) - 180 < BENCH_TIMEOUT_S ? $(remaining) - 180 : BENCH_TIMEOUT_S ))  # 3 min left for the rest
    (( limit > 0 )) || limit=1
    if stage bench timeout -k 10 "$limit" "$PYTHON" -m backend.cli bench --quick --out "$WORK/bench/benchmarks_gpu.md"; then
        sed 's#](images/#](images/gpu/#g' "$WORK/bench/benchmarks_gpu.md" >"$OUTDIR/benchmarks_gpu.md"
        mkdir -p "$WORK/bench_images/gpu" && cp "$WORK"/bench/images/*.png "$WORK/bench_images/gpu/" \
            && tar -C "$WORK/bench_images" -cf "$OUTDIR/bench_images.tar" gpu
    fi
else
    say "== bench: skipped (BENCH=$BENCH; TINY=1 skips it: a full choreo bench takes minutes)"
fi

# -- the whole training set (TINY: one trial, one song, one clip of each other kind)
build=(--heldout "$WORK/train_heldout" --mocap "$MOCAP" --music "$MUSIC" --workers "$WORKERS")
if [[ $TINY == 1 ]]; then
    mkdir -p "$WORK/music_tiny" && cp -r "$MUSIC/metal_madness" "$MUSIC/COPYRIGHT" "$WORK/music_tiny/"
    build=(--heldout "$WORK/train_heldout" --mocap "$MOCAP" --music "$WORK/music_tiny" --workers "$WORKERS"
           --trials 05_02 --held-out 05_20 --seconds 9.5 --graph-synth 1 --graph-excerpts 1
           --procedural-synth 1 --procedural-excerpts 1 --procedural-variations 1)
fi
stage build timeout -k 10 "$(( $(remaining) - 60 ))" "$PYTHON" -m backend.training.real_dataset "$WORK/train" "${build[@]}"

# -- the four trainings, each stopped at the deadline at the latest
train_one() {  # train_one MODEL TIMEOUT
    local m=$1 M=${1^^} limit=$2
    local steps_var=STEPS_$M lr_var=LR_$M init_var=INIT_$M
    local args=(train "$WORK/train" --model "$m" --out "$WORK/run_$m" --device "$DEVICE" --steps "${!steps_var:-$STEPS}"
                --batch-size "$BATCH" --lr "${!lr_var:-3e-4}" --save-every "$SAVE_EVERY" --log-every "$LOG_EVERY"
                --threads "$THREADS" --no-progress)
    [[ -n ${!init_var-} ]] && args+=(--init "${!init_var}")
    setting "train_$m" "${args[*]}"
    stage "train_$m" timeout -k 15 "$limit" "$PYTHON" -m backend.cli "${args[@]}"
}
read -ra models <<<"$MODELS"
THREADS=${THREADS:-$(( WORKERS / ${#models[@]} > 0 ? WORKERS / ${#models[@]} : 1 ))}
if [[ -s $WORK/train/real_manifest.json ]]; then
    if [[ $PARALLEL == 1 ]]; then
        limit=$(( $(remaining) - RESERVE_S ))
        for m in "${models[@]}"; do train_one "$m" "$limit" & done
        wait
    else
        for i in "${!models[@]}"; do
            train_one "${models[$i]}" $(( ($(remaining) - RESERVE_S) / (${#models[@]} - i) ))
        done
    fi
else
    say "== train: skipped, the build wrote no training set"
fi

# -- models (a run stopped early gives its last checkpoint), gpu_session.json, session.log
stage collect "$PYTHON" benchmarks/gpu_session_collect.py --work "$WORK" --out "$OUTDIR" --models "${models[@]}" \
    --seconds "$(( $(date +%s) - START ))"
say "gpu_session: done in $(( $(date +%s) - START )) s; $OUTDIR holds: $(cd "$OUTDIR" && ls | tr '\n' ' ')"
cp "$SESSION_LOG" "$WORK/logs/session_final.txt"
"$PYTHON" benchmarks/gpu_session_collect.py --work "$WORK" --out "$OUTDIR" --log-only
