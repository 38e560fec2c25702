"""The numpy peer of the init-scale training loop: R deep linear networks trained by online SGD.

Reads one JSON object on stdin ({widths, replicaScales, steps, batch, learningRate, V, sigmaX,
sigmaEps, seed}: weights N(0, scale²) per replica, x ~ N(0, Σ_x), y = V x + ε with ε ~ N(0, Σ_ε)) and prints one JSON object ({seconds, steps, finalLoss, noiseFloor}) on stdout.
Vectorised over replicas (batched matmul); the random numbers are drawn in blocks of steps so the
Python loop pays only for the products. Only the training is timed (no measurements, no start-up).
"""

import json
import sys
import time

import numpy as np

BLOCK = 1000  # steps of random draws at a time


def main() -> None:
    p = json.load(sys.stdin)
    widths = p["widths"]
    scales = np.asarray(p["replicaScales"], dtype=np.float32)
    replicas, steps, batch, lr = len(scales), p["steps"], p["batch"], p["learningRate"]
    rng = np.random.default_rng(p["seed"])
    V = np.asarray(p["V"], dtype=np.float32)
    input_factor = np.linalg.cholesky(np.asarray(p["sigmaX"], dtype=np.float64)).astype(np.float32)
    sigma_eps = np.asarray(p["sigmaEps"], dtype=np.float64)
    noise_factor = np.linalg.cholesky(sigma_eps).astype(np.float32)
    weights = [
        (rng.standard_normal((replicas, widths[i + 1], widths[i])) * scales[:, None, None]).astype(np.float32)
        for i in range(len(widths) - 1)
    ]
    depth = len(weights)
    loss = float("nan")
    start = time.perf_counter()
    for first in range(0, steps, BLOCK):
        n = min(BLOCK, steps - first)
        xs = rng.standard_normal((n, replicas, batch, widths[0]), dtype=np.float32) @ input_factor.T
        noise = rng.standard_normal((n, replicas, batch, widths[-1]), dtype=np.float32) @ noise_factor.T
        ys = xs @ V.T + noise
        for k in range(n):
            activations = [xs[k]]
            for W in weights:
                activations.append(activations[-1] @ W.transpose(0, 2, 1))
            residual = activations[-1] - ys[k]
            # L = 1/(2B) Σ‖f − y‖²: dL/df = residual / B; each layer's gradient before its update.
            upstream = residual / batch
            for i in range(depth - 1, -1, -1):
                grad = upstream.transpose(0, 2, 1) @ activations[i]
                if i > 0:
                    upstream = upstream @ weights[i]
                weights[i] -= lr * grad
        loss = float(0.5 * np.mean(np.sum(residual**2, axis=2)))
    seconds = time.perf_counter() - start
    noise_floor = float(0.5 * np.trace(sigma_eps))
    json.dump({"seconds": seconds, "steps": steps, "finalLoss": loss, "noiseFloor": noise_floor}, sys.stdout)


if __name__ == "__main__":
    main()
