"""cudnn_dw.py: the weight gradient of one wide 5x5 layer on CUDA, float32, against a float64 CPU reference.

    python3 cudnn_dw.py [--log DIR]

The layer of the torch tests' failing case (F5 P2, 27x27, C48 -> K64, N2). Each line is one setting of PyTorch's
cuDNN flags, applied in order in this process (they accumulate as printed), with the relative error of dw and y and
the median time of one forward + backward. The cuDNN heuristics' mode B (TORCH_CUDNN_USE_HEURISTIC_MODE_B) is read
once per process, so it runs in a child process. With --log DIR, a last child runs the TF32-off backward once with
cuDNN's API log on (CUDNN_LOGLEVEL_DBG=3) and writes DIR/cudnn-api.log, to tell which engine cuDNN ran.
"""
import os
import statistics
import subprocess
import sys
import time

import torch


def run(label):
    torch.manual_seed(1)
    x = torch.rand(2, 48, 27, 27, dtype=torch.float64) * 2 - 1
    w = torch.rand(64, 48, 5, 5, dtype=torch.float64) * 2 - 1
    dy = torch.rand(2, 64, 27, 27, dtype=torch.float64) * 2 - 1
    ref = torch.nn.grad.conv2d_weight(x, w.shape, dy, padding=2)
    yref = torch.nn.functional.conv2d(x, w, padding=2)
    xc, wc, dyc = x.float().cuda().requires_grad_(), w.float().cuda().requires_grad_(), dy.float().cuda()

    def step():
        y = torch.nn.functional.conv2d(xc, wc, padding=2)
        (dw,) = torch.autograd.grad([y], [wc], [dyc])
        return y, dw

    y, dw = step()
    times = []
    for _ in range(20):
        torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    err = ((dw.double().cpu() - ref).abs().max() / ref.abs().max()).item()
    yerr = ((y.detach().double().cpu() - yref).abs().max() / yref.abs().max()).item()
    print(f"{label}: dw rel err {err:.2e}, y rel err {yerr:.2e}, fwd+bwd {statistics.median(times):.3f} ms", flush=True)


def main():
    if "--child" in sys.argv:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        run(sys.argv[sys.argv.index("--child") + 1])
        return
    print(torch.__version__, "cuDNN", torch.backends.cudnn.version(), torch.cuda.get_device_name(0))
    print("allow_tf32 matmul", torch.backends.cuda.matmul.allow_tf32, "cudnn", torch.backends.cudnn.allow_tf32)
    try:
        print("fp32_precision conv", torch.backends.cudnn.conv.fp32_precision, "matmul", torch.backends.cuda.matmul.fp32_precision)
    except Exception as e:
        print("no fp32_precision", e)
    run("defaults")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    run("allow_tf32 False")
    try:
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        run("fp32_precision ieee")
    except Exception as e:
        print("fp32_precision failed", e)
    torch.backends.cudnn.deterministic = True
    run("ieee + deterministic")
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = True
    run("ieee + benchmark (autotuning)")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.enabled = False
    run("ieee + cudnn disabled")
    env = dict(os.environ, TORCH_CUDNN_USE_HEURISTIC_MODE_B="1")
    subprocess.run([sys.executable, __file__, "--child", "TF32 off + heuristic mode B (child process)"], env=env, check=False)
    if "--log" in sys.argv:
        log = os.path.join(sys.argv[sys.argv.index("--log") + 1], "cudnn-api.log")
        env = dict(os.environ, CUDNN_LOGLEVEL_DBG="3", CUDNN_LOGDEST_DBG=log)
        subprocess.run([sys.executable, __file__, "--child", "TF32 off, cuDNN API log on (child process)"], env=env, check=False)


if __name__ == "__main__":
    main()
