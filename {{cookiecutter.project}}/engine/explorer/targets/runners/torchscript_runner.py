"""Benchmark runner for TorchScript models: needs only torch and numpy (never explorer), so the
same file runs on the host and on a Raspberry Pi.

    python torchscript_runner.py MODEL.ts SAMPLES.npz [REPEATS]

prints the JSON-lines protocol: ready, one result per sample (outputs, median time_ns of the
repeats), done.
"""

import json
import sys
import time

import numpy as np
import torch


def main() -> None:
    model_file, samples = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    torch.set_num_threads(1)
    model = torch.jit.load(model_file).eval()
    x = np.load(samples)["x"].astype(np.float32)
    print(json.dumps({"event": "ready", "runtime": "torchscript", "version": torch.__version__,
                      "input_size": int(x[0].size)}), flush=True)
    with torch.no_grad():
        for _ in range(3):  # TorchScript optimises on its first calls: keep them out of the timings
            model(torch.from_numpy(x[:1].copy()))
        for i, sample in enumerate(x):
            batch = torch.from_numpy(sample[None].copy())
            times = []
            for _ in range(repeats):
                start = time.perf_counter_ns()
                output = model(batch)
                times.append(time.perf_counter_ns() - start)
            print(json.dumps({"event": "result", "index": i, "output": output[0].reshape(-1).tolist(),
                              "time_ns": int(np.median(times))}), flush=True)
    print(json.dumps({"event": "done", "count": len(x)}), flush=True)


if __name__ == "__main__":
    main()
