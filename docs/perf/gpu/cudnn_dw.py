import torch, sys
torch.manual_seed(1)
def run(label):
    x = torch.rand(2, 48, 27, 27, dtype=torch.float64) * 2 - 1
    w = torch.rand(64, 48, 5, 5, dtype=torch.float64) * 2 - 1
    dy = torch.rand(2, 64, 27, 27, dtype=torch.float64) * 2 - 1
    ref = torch.nn.grad.conv2d_weight(x, w.shape, dy, padding=2)
    xc, wc, dyc = x.float().cuda().requires_grad_(), w.float().cuda().requires_grad_(), dy.float().cuda()
    y = torch.nn.functional.conv2d(xc, wc, padding=2)
    y.backward(dyc)
    err = ((wc.grad.double().cpu() - ref).abs().max() / ref.abs().max()).item()
    yref = torch.nn.functional.conv2d(x, w, padding=2)
    yerr = ((y.detach().double().cpu() - yref).abs().max() / yref.abs().max()).item()
    print(f"{label}: dw rel err {err:.2e}, y rel err {yerr:.2e}")
print(torch.__version__, torch.backends.cudnn.version())
print("allow_tf32 matmul", torch.backends.cuda.matmul.allow_tf32, "cudnn", torch.backends.cudnn.allow_tf32)
try: print("fp32_precision conv", torch.backends.cudnn.conv.fp32_precision, "matmul", torch.backends.cuda.matmul.fp32_precision)
except Exception as e: print("no fp32_precision", e)
run("defaults")
torch.backends.cudnn.allow_tf32 = False; torch.backends.cuda.matmul.allow_tf32 = False
run("allow_tf32 False")
try:
    torch.backends.cudnn.conv.fp32_precision = "ieee"; torch.backends.cuda.matmul.fp32_precision = "ieee"
    run("fp32_precision ieee")
except Exception as e: print("fp32_precision failed", e)
torch.backends.cudnn.deterministic = True
run("ieee + deterministic")
torch.backends.cudnn.enabled = False
run("cudnn disabled")
