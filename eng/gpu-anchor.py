#!/usr/bin/env python3
"""gpu-anchor.py: the layers of a named network timed in plain PyTorch, the anchor for the torch backend's overhead.

    python3 gpu-anchor.py NET [--batch N] [--repeats R] [--device cuda] [--dtype f32|f64] [--json FILE]
                              [--compare LOCKSTEP_COMPARE.json] [--no-cudnn]

NET is alexnet or vgg16, written below in Lockstep's spec grammar (the same text as NamedNetworks.cs; a test checks
that they match). Each layer runs alone, as `lockstep compare` runs it: the forward call, then the backward call
(dx, dw, db from a fixed upstream gradient), each the median of R runs after as many untimed calls as fit in 0.5 s,
every run ending with torch.cuda.synchronize(). TF32 is off (the conformance setting), cuDNN autotuning off (libtorch's
default, as in TorchSharp). Backward is autograd's backward of a graph built once, which is how PyTorch code runs it.
--no-cudnn sets torch.backends.cudnn.enabled = False (the torch backend's Torch:CuDnn = false): what cuDNN's
algorithms are worth on each layer.

With --compare, the layers are matched by position with a `lockstep compare --json` report, and the table gains the
torch backend's times on the same device and their ratio to plain PyTorch (target: within 5% where a layer takes
longer than 1 ms).
"""
import argparse
import json
import re
import statistics
import sys
import time

NETS = {
    "alexnet": "INPUT 227x227x3 -> CONV11-96/S4/P0 -> RELU -> POOL3/S2 -> CONV5-256 -> RELU -> POOL3/S2 -> "
               "[CONV3-384 -> RELU]*2 -> CONV3-256 -> RELU -> POOL3/S2 -> [FC-4096 -> RELU]*2 -> FC-1000",
    "vgg16": "INPUT 224x224x3 -> [CONV3-64 -> RELU]*2 -> POOL2 -> [CONV3-128 -> RELU]*2 -> POOL2 -> "
             "[CONV3-256 -> RELU]*3 -> POOL2 -> [[CONV3-512 -> RELU]*3 -> POOL2]*2 -> [FC-4096 -> RELU]*2 -> FC-1000",
}


def layers_of(spec):
    """The spec's layers in order: ("input", c, h, w), ("conv", f, k, s, p), ("pool", mode, f, s), ("fc", n), ("relu",)."""
    text = spec
    while "[" in text:
        expanded = re.sub(r"\[([^\[\]]*)\]\s*\*\s*(\d+)", lambda m: " -> ".join([m.group(1)] * int(m.group(2))), text)
        if expanded == text:
            raise ValueError(f"unbalanced brackets in {spec!r}")
        text = expanded
    out = []
    for token in (t.strip() for t in text.split("->")):
        if m := re.fullmatch(r"INPUT (\d+)x(\d+)x(\d+)", token):
            w, h, d = map(int, m.groups())
            out.append(("input", d, h, w))
        elif m := re.fullmatch(r"CONV(\d+)-(\d+)(?:/S(\d+))?(?:/P(\d+))?", token):
            f, k = int(m.group(1)), int(m.group(2))
            out.append(("conv", f, k, int(m.group(3) or 1), int(m.group(4)) if m.group(4) else (f - 1) // 2))
        elif m := re.fullmatch(r"(AVG|L2)?POOL(\d+)(?:/S(\d+))?", token):
            f = int(m.group(2))
            out.append(("pool", (m.group(1) or "MAX").lower(), f, int(m.group(3) or f)))
        elif m := re.fullmatch(r"FC-(\d+)", token):
            out.append(("fc", int(m.group(1))))
        elif token == "RELU":
            out.append(("relu",))
        else:
            raise ValueError(f"unknown layer {token!r} in {spec!r}")
    return out


def measure(torch, device, fn, repeats):
    """Median, min and max milliseconds of fn() over `repeats` runs, after untimed calls for 0.5 s (at least one)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    end = time.perf_counter() + 0.5
    while True:
        fn()
        sync()
        if time.perf_counter() >= end:
            break
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times), max(times)


def run(args):
    import torch
    import torch.nn.functional as F

    device = torch.device(args.device)
    dtype = torch.float64 if args.dtype == "f64" else torch.float32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.enabled = not args.no_cudnn
    torch.manual_seed(1)
    layers = layers_of(NETS[args.net])
    _, c, h, w = layers[0]
    shape = (args.batch, c, h, w)
    results = []
    for index, layer in enumerate(layers[1:]):
        kind = layer[0]
        x = torch.randn(shape, dtype=dtype, device=device, requires_grad=True)
        params = []
        if kind == "conv":
            _, f, k, s, p = layer
            weight = torch.randn((k, shape[1], f, f), dtype=dtype, device=device, requires_grad=True)
            bias = torch.zeros(k, dtype=dtype, device=device, requires_grad=True)
            params = [weight, bias]
            forward = lambda x=x, weight=weight, bias=bias, s=s, p=p: F.conv2d(x, weight, bias, stride=s, padding=p)
            label = f"CONV{f}-{k}/S{s}/P{p}"
        elif kind == "pool":
            _, mode, f, s = layer
            if mode == "max":
                forward = lambda x=x, f=f, s=s: F.max_pool2d(x, f, s)
            elif mode == "avg":
                forward = lambda x=x, f=f, s=s: F.avg_pool2d(x, f, s)
            else:
                forward = lambda x=x, f=f, s=s: F.lp_pool2d(x, 2, f, s)
            label = f"{mode.upper()}POOL{f}/S{s}"
        elif kind == "fc":
            _, n = layer
            inputs = shape[1] * shape[2] * shape[3]
            weight = torch.randn((n, inputs), dtype=dtype, device=device, requires_grad=True)
            bias = torch.zeros(n, dtype=dtype, device=device, requires_grad=True)
            params = [weight, bias]
            forward = lambda x=x, weight=weight, bias=bias: F.linear(x.flatten(1), weight, bias)
            label = f"FC-{n}"
        else:
            forward = lambda x=x: F.relu(x)
            label = "RELU"
        with torch.no_grad():
            y_shape = forward().shape
        dy = torch.randn(y_shape, dtype=dtype, device=device)
        fwd = measure(torch, device, lambda: forward().detach(), args.repeats)
        y = forward()
        bwd = measure(torch, device, lambda: torch.autograd.grad([y], [x] + params, [dy], retain_graph=True), args.repeats)
        out_shape = tuple(y_shape) if kind != "fc" else (args.batch, y_shape[1], 1, 1)
        results.append({"index": index, "kind": kind, "layer": label, "output_shape": list(out_shape),
                        "forward_ms": fwd[0], "forward_min_ms": fwd[1], "forward_max_ms": fwd[2],
                        "backward_ms": bwd[0], "backward_min_ms": bwd[1], "backward_max_ms": bwd[2]})
        del x, params, y, dy
        shape = out_shape
    info = {
        "net": args.net, "batch": args.batch, "dtype": args.dtype, "repeats": args.repeats, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "tf32": False, "cudnn_enabled": torch.backends.cudnn.enabled, "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "layers": results,
    }
    return info


def print_table(info, compare, backend):
    print(f"plain PyTorch {info['torch']} (CUDA {info['cuda']}, cuDNN {info['cudnn']}) on {info['device_name']}: "
          f"{info['net']}, batch {info['batch']}, {info['dtype']}, TF32 off{'' if info['cudnn_enabled'] else ', cuDNN disabled'}, "
          f"median of {info['repeats']} runs")
    csharp = None
    if compare is not None:
        csharp = compare["layers"]
        if len(csharp) != len(info["layers"]):
            print(f"--compare: the report has {len(csharp)} layers, the spec {len(info['layers'])}: not matched")
            csharp = None
        elif backend not in csharp[0]["results"]:
            print(f"--compare: the report has no backend '{backend}' (it has {', '.join(csharp[0]['results'])})")
            csharp = None
    header = f"{'layer':<22}{'output':>20}{'fwd ms':>10}{'bwd ms':>10}"
    if csharp:
        header += f"  {'name':<10}{backend + ' fwd':>16}{'ratio':>8}{backend + ' bwd':>16}{'ratio':>8}"
    print(header)
    within = []
    for i, layer in enumerate(info["layers"]):
        line = f"{layer['layer']:<22}{'x'.join(map(str, layer['output_shape'])):>20}{layer['forward_ms']:>10.3f}{layer['backward_ms']:>10.3f}"
        if csharp:
            r = csharp[i]["results"][backend]
            ratio_f, ratio_b = r["forward_ms"] / layer["forward_ms"], r["backward_ms"] / layer["backward_ms"]
            line += f"  {csharp[i]['name']:<10}{r['forward_ms']:>16.3f}{ratio_f:>8.2f}{r['backward_ms']:>16.3f}{ratio_b:>8.2f}"
            for ours, theirs in ((r["forward_ms"], layer["forward_ms"]), (r["backward_ms"], layer["backward_ms"])):
                if theirs > 1.0:
                    within.append(ours / theirs <= 1.05)
        print(line)
    if csharp:
        print(f"ratio = {backend} / plain PyTorch; calls longer than 1 ms within 5%: {sum(within)} of {len(within)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("net", choices=sorted(NETS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument("--compare", help="a `lockstep compare --json` report of the same net and batch")
    parser.add_argument("--backend", default="torch:cuda", help="the report's backend to set against PyTorch")
    parser.add_argument("--no-cudnn", action="store_true", help="torch.backends.cudnn.enabled = False")
    parser.add_argument("--parse-only", action="store_true", help="print the parsed layers and exit (no torch needed)")
    args = parser.parse_args()
    if args.parse_only:
        for layer in layers_of(NETS[args.net]):
            print(*layer)
        return 0
    info = run(args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
    compare = None
    if args.compare:
        with open(args.compare, encoding="utf-8") as f:
            compare = json.load(f)
    print_table(info, compare, args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
