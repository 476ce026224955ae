"""What both benchmarks measure their FLOP floor against: this machine's fp32 matmul rate, taken in the same run."""
import time


def matmul_rate(n: int = 2048, seconds: float = 3.0) -> float:
    "fp32 FLOP/s of a large square matmul: total FLOPs over total time in a window of `seconds`."
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b); k += 1
    return 2 * n ** 3 * k / (time.perf_counter() - t0)
