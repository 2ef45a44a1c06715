"""Benchmark runner for ONNX models: needs only numpy and onnxruntime (never explorer), so the
same file runs on the host and on a board.

    python onnx_runner.py MODEL.onnx SAMPLES.npz [REPEATS]

prints the JSON-lines protocol: ready, one result per sample (outputs, median time_ns of the
repeats), done.
"""

import json
import sys
import time

import numpy as np
import onnxruntime


def main() -> None:
    model, samples = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.load(samples)["x"].astype(np.float32)
    print(json.dumps({"event": "ready", "runtime": "onnxruntime", "version": onnxruntime.__version__,
                      "input_size": int(x[0].size)}), flush=True)
    session.run(None, {name: x[:1]})  # the first call allocates: keep it out of the timings
    for i, sample in enumerate(x):
        batch = sample[None]
        times = []
        for _ in range(repeats):
            start = time.perf_counter_ns()
            output = session.run(None, {name: batch})[0]
            times.append(time.perf_counter_ns() - start)
        print(json.dumps({"event": "result", "index": i, "output": output[0].reshape(-1).tolist(),
                          "time_ns": int(np.median(times))}), flush=True)
    print(json.dumps({"event": "done", "count": len(x)}), flush=True)


if __name__ == "__main__":
    main()
