"""A stand-in for the ``vllm`` package (which needs a CUDA torch): it records every call and returns
canned token ids, so the vLLM engine's requests can be checked on a CPU.

Each ``LLM.generate`` call appends one JSON line to the file named by ``$FAKE_VLLM_LOG``: the
``LLM`` arguments, the files of the model folder at that moment, every prompt's token ids, every
request's ``SamplingParams``, the process id and vLLM's reproducibility environment variables. Request i gets the canned output
``$FAKE_VLLM_OUTPUT[i % len]`` (a JSON list of token-id lists). With ``$FAKE_VLLM_HANG_AT_EXIT``
set, an ``LLM`` leaves a non-daemonic thread behind that keeps its process from exiting for an hour
(an engine that hangs at shutdown).
"""
import json
import os
import threading
import time

__version__ = "0.0-fake"


class SamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class _Completion:
    def __init__(self, token_ids):
        self.token_ids = token_ids


class _RequestOutput:
    def __init__(self, token_ids):
        self.outputs = [_Completion(token_ids)]


class LLM:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.model_files = sorted(os.listdir(kwargs["model"]))
        if os.environ.get("FAKE_VLLM_HANG_AT_EXIT"):
            threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()

    def generate(self, prompts, sampling_params, use_tqdm=True):
        record = {"llm": self.kwargs, "model_files": self.model_files, "pid": os.getpid(),
                  "launch_env": sorted(k for k in ("RANK", "WORLD_SIZE", "MASTER_PORT") if k in os.environ),
                  "env": {k: os.environ.get(k) for k in ("VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_BATCH_INVARIANT")},
                  "prompts": [p["prompt_token_ids"] for p in prompts], "params": [p.kwargs for p in sampling_params]}
        with open(os.environ["FAKE_VLLM_LOG"], "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        canned = json.loads(os.environ["FAKE_VLLM_OUTPUT"])
        return [_RequestOutput(list(canned[i % len(canned)])) for i in range(len(prompts))]
