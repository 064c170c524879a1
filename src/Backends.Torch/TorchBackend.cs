using System.Runtime.InteropServices;
using Lockstep.Configuration;
using TorchSharp;
using static TorchSharp.torch.nn.functional;

namespace Lockstep.Backends.Torch;

/// <summary>
/// The primitive ops on libtorch through TorchSharp, on the CPU or a CUDA GPU.
/// Shapes: N batch, C channels, H×W input size, K filters, F_h×F_w kernel, H'×W' output size.
/// Each op validates through <see cref="OpChecks"/>, then runs inside a TorchSharp dispose scope so that every
/// temporary is freed when it returns; only the results leave the scope, owned by their <see cref="TorchTensor"/>.
/// </summary>
public sealed class TorchBackend : IBackend, IMemoryStatistics
{
    private readonly torch.Device _device;
    private readonly Lock _memoryGate = new();
    private long _liveBytes;
    private long _peakLiveBytes;

    /// <summary>Loads libtorch and picks the device from <paramref name="options"/> (cpu | cuda | cuda:N | auto).</summary>
    public TorchBackend(TorchOptions? options = null)
    {
        options ??= new TorchOptions();
        if (options.Threads < 0) throw new ArgumentException($"torch: Threads must be ≥ 0 (0 = all cores), got {options.Threads}");
        LibTorch.EnsureLoaded();
        (_device, string deviceLabel) = LibTorch.SelectDevice(options.Device);
        // libtorch's intra-op pool is process-wide: the last backend created sets it.
        torch.set_num_threads(options.Threads == 0 ? Environment.ProcessorCount : options.Threads);
        // Process-wide settings, made by every backend (the last one created wins, as for threads).
        LibTorch.SetDeterministicAlgorithms(options.Deterministic);
        if (options.Deterministic && IsCuda) LibTorch.SetCublasWorkspaceConfig();
        LibTorch.SetTf32(options.AllowTF32);
        LibTorch.SetCuDnn(options.CuDnn);
        int threads = torch.get_num_threads();
        // TF32 matters only on a GPU, where the report always says which; on the CPU only a request for it is noted.
        string tf32 = IsCuda ? (options.AllowTF32 ? ", tf32 allowed" : ", tf32 off")
            : options.AllowTF32 ? ", tf32 allowed (no effect on cpu)" : "";
        string cudnn = options.CuDnn ? "" : IsCuda ? ", cudnn off" : ", cudnn off (no effect on cpu)";
        // The libtorch in the process; where it is not the one TorchSharp's glue was built for (a PyTorch install's,
        // with TorchVariant=cuda), both.
        string loaded = LibTorch.LoadedVersion ?? LibTorch.Version;
        string libtorch = loaded == LibTorch.Version ? loaded : $"{loaded}, glue built for {LibTorch.Version}";
        Description = $"torch ({deviceLabel}, libtorch {libtorch}, {threads} thread{(threads == 1 ? "" : "s")}" +
                      $"{(options.Deterministic ? ", deterministic" : "")}{tf32}{cudnn})";
        Name = IsCuda ? $"torch:{_device}" : "torch";
    }

    /// <summary>"torch" on the CPU; "torch:cuda" (or "torch:cuda:N") on a GPU, so that reports tell the two apart.</summary>
    public string Name { get; }

    public string Description { get; }

    /// <summary>The device this backend's tensors live on.</summary>
    public string Device => _device.ToString();

    private bool IsCuda => _device.type == DeviceType.CUDA;

    public ITensor Upload<T>(ReadOnlySpan<T> data, Shape shape) where T : unmanaged
    {
        var dtype = OpChecks.Upload<T>(data.Length, shape);
        using var scope = torch.NewDisposeScope();
        var host = torch.empty(Dims(shape), TorchTensor.ToScalarType(dtype), torch.CPU);
        if (data.Length > 0) MemoryMarshal.AsBytes(data).CopyTo(host.bytes);
        return Wrap(IsCuda ? host.to(_device) : host);
    }

    public void Download<T>(ITensor tensor, Span<T> destination) where T : unmanaged
    {
        OpChecks.Download<T>(this, tensor, destination.Length);
        if (destination.Length == 0) return;
        using var scope = torch.NewDisposeScope();
        var host = Value(tensor).cpu().contiguous();
        MemoryMarshal.Cast<byte, T>(host.bytes).CopyTo(destination);
    }

    public ITensor Zeros(Shape shape, DType dtype)
    {
        OpChecks.Zeros(shape, dtype);
        using var scope = torch.NewDisposeScope();
        return Wrap(torch.zeros(Dims(shape), TorchTensor.ToScalarType(dtype), _device));
    }

    /// <summary>destination = source (libtorch's copy_, on the device).</summary>
    public void Copy(ITensor source, ITensor destination)
    {
        OpChecks.Copy(this, source, destination);
        using var scope = torch.NewDisposeScope();
        ((TorchTensor)destination).Mutable.copy_(Value(source));
    }

    /// <summary>
    /// y = conv2d(x, w, b) with the spec's stride, padding, dilation and groups: one libtorch call, recorded by autograd
    /// as PyTorch records a training forward (x and w as leaves sharing their storage; the record stays with x, see
    /// <see cref="ConvTape"/>), so that Conv2dBackward need not run the convolution again.
    /// </summary>
    public ITensor Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec)
    {
        var shape = OpChecks.Conv2d(this, x, w, b, spec);
        using var scope = torch.NewDisposeScope();
        try
        {
            using var gradMode = torch.enable_grad();
            var (xLeaf, wLeaf, recorded) = ConvolveLeaves(x, w, b, spec, inputGradient: true);
            var y = Wrap(recorded.detach(), shape, spec.Name);
            ((TorchTensor)x).Record(new ConvTape((TorchTensor)x, (TorchTensor)w, spec, xLeaf, wLeaf, recorded));
            return y;
        }
        catch (ExternalException e) when (IsAllocationFailure(e))
        {
            throw OutOfMemory(spec.Name, "output " + shape, e);
        }
    }

    /// <summary>libtorch's allocator refusing a request ("DefaultCPUAllocator: can't allocate memory …", "CUDA out of memory").</summary>
    private static bool IsAllocationFailure(ExternalException e) =>
        e.Message.Contains("allocate", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase);

    private static InsufficientMemoryException OutOfMemory(string layer, string what, ExternalException e) =>
        new($"{layer}: libtorch could not allocate the {what}: {e.Message.Split('\n')[0].Trim()}; use a smaller batch or input", e);

    /// <summary>libtorch's conv2d pads both sides alike; padding that differs per side is applied first, explicitly (zeros).</summary>
    private static torch.Tensor Convolve(torch.Tensor x, torch.Tensor w, torch.Tensor? b, ConvSpec spec)
    {
        var p = spec.Padding;
        return p.IsSymmetric
            ? conv2d(x, w, b, Stride(spec), [p.Top, p.Left], Dilation(spec), spec.Groups)
            : conv2d(pad(x, [p.Left, p.Right, p.Top, p.Bottom]), w, b, Stride(spec), [0, 0], Dilation(spec), spec.Groups);
    }

    /// <summary>
    /// dx, dw by libtorch's autograd through conv2d (its convolution_backward) — through the graph the forward recorded
    /// where there is one for x, w and the spec, else through the convolution run again; db = Σ_{n,h,w} dy.
    /// </summary>
    public ConvGradients Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx)
    {
        OpChecks.Conv2dBackward(this, dy, x, w, spec);
        using var scope = torch.NewDisposeScope();
        using var gradMode = torch.enable_grad();
        IList<torch.Tensor> grads;
        try
        {
            var taped = FromTape(dy, x, w, spec, needDx);
            Interlocked.Increment(ref taped is null ? ref _convRecomputed : ref _convFromTape);
            grads = taped ?? Recompute(dy, x, w, spec, needDx);
        }
        catch (ExternalException e) when (IsAllocationFailure(e))
        {
            throw OutOfMemory(spec.Name, "gradients' workspace", e);
        }
        var db = Value(dy).sum([0, 2, 3]);
        return new ConvGradients(
            needDx ? Wrap(grads[0], x.Shape, spec.Name) : null,
            Wrap(grads[needDx ? 1 : 0], w.Shape, spec.Name),
            Wrap(db, new Shape(w.Shape[0]), spec.Name));
    }

    private long _convFromTape, _convRecomputed;

    /// <summary>Conv2dBackward calls that used the forward's record, and those that ran the convolution again.</summary>
    internal (long FromTape, long Recomputed) ConvBackwardPaths => (Interlocked.Read(ref _convFromTape), Interlocked.Read(ref _convRecomputed));

    // The gradients through the graph Conv2d recorded for this x, these weights and this spec — unless x's record is of
    // another convolution, or x or w were written in place since (an SGD step between forward and backward).
    private static IList<torch.Tensor>? FromTape(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx)
    {
        var input = (TorchTensor)x;
        if (input.Tape is not { } tape || !ReferenceEquals(tape.Weights, w) || tape.Weights.IsDisposed || tape.Spec != spec
            || tape.Writes != (input.Writes, tape.Weights.Writes))
        {
            return null;
        }
        return torch.autograd.grad([tape.Output], needDx ? [tape.Input, tape.WeightLeaf] : [tape.WeightLeaf], [Value(dy)], retain_graph: true);
    }

    // Without a record: the convolution again.
    private static IList<torch.Tensor> Recompute(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx)
    {
        var (xLeaf, wLeaf, y) = ConvolveLeaves(x, w, null, spec, inputGradient: needDx);
        return torch.autograd.grad([y], needDx ? [xLeaf, wLeaf] : [wLeaf], [Value(dy)]);
    }

    // The convolution on leaves that share x's and w's storage but not the caller's autograd state (grad mode on).
    private static (torch.Tensor X, torch.Tensor W, torch.Tensor Y) ConvolveLeaves(ITensor x, ITensor w, ITensor? b, ConvSpec spec, bool inputGradient)
    {
        var xLeaf = Value(x).detach().requires_grad_(inputGradient);
        var wLeaf = Value(w).detach().requires_grad_(true);
        return (xLeaf, wLeaf, Convolve(xLeaf, wLeaf, b is null ? null : Value(b), spec));
    }

    /// <summary>y = max (with switches h·W + w per plane), mean, or sqrt(Σ x²) over each window.</summary>
    public PoolResult Pool2d(ITensor x, PoolSpec spec)
    {
        var shape = OpChecks.Pool2d(this, x, spec);
        using var scope = torch.NewDisposeScope();
        var input = Value(x);
        bool ceil = spec.Rule == SizeRule.Ceil;
        bool native = IsNative(spec);
        switch (spec.Mode)
        {
            case PoolMode.Max:
                var (y, switches) = native
                    ? max_pool2d_with_indices(input, Kernel(spec), Stride(spec), Padding(spec), Dilation(spec), ceil)
                    : MaxPoolExplicitly(input, spec, shape);
                return new PoolResult(Wrap(y, shape, spec.Name), Wrap(switches, shape, spec.Name));
            case PoolMode.Average:
                var mean = native
                    ? avg_pool2d(input, Kernel(spec), Stride(spec), Padding(spec), ceil, spec.CountIncludePad)
                    : WindowSum(input, spec, shape).div_(Divisor(input, spec, x.Shape, shape));
                return new PoolResult(Wrap(mean, shape, spec.Name), null);
            default:
                // The window sum of squares (divisor 1; padding adds zeros), then its square root.
                var sumOfSquares = native
                    ? avg_pool2d(input.square(), Kernel(spec), Stride(spec), Padding(spec), ceil, count_include_pad: true, divisor_override: 1)
                    : WindowSum(input.square(), spec, shape);
                return new PoolResult(Wrap(sumOfSquares.sqrt_(), shape, spec.Name), null);
        }
    }

    /// <summary>dx: dy scattered through the switches (max), avg_pool2d_backward (average), or Σ dy·x/y, 0 where y = 0 (L2).</summary>
    public ITensor Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec)
    {
        var shape = OpChecks.Pool2dBackward(this, dy, x, forward, spec);
        using var scope = torch.NewDisposeScope();
        var input = Value(x);
        var outputGradient = Value(dy);
        bool ceil = spec.Rule == SizeRule.Ceil;
        bool native = IsNative(spec);
        switch (spec.Mode)
        {
            case PoolMode.Max:
                var switches = Value(forward.Switches!);
                var (n, c, h, w) = (x.Shape.N, x.Shape.C, x.Shape.H, x.Shape.W);
                // dx[n,c,s] += dy[n,c,o] for s = switch[n,c,o], outputs in row-major order: exactly the recorded route.
                var dx = torch.zeros([n, c, (long)h * w], outputGradient.dtype, _device);
                dx.scatter_add_(2, switches.reshape(n, c, -1), outputGradient.reshape(n, c, -1));
                return Wrap(dx.view(n, c, h, w), x.Shape, spec.Name);
            case PoolMode.Average:
                var spread = native
                    ? avg_pool2d_backward(outputGradient, input, Kernel(spec), Stride(spec), Padding(spec), ceil, spec.CountIncludePad)
                    : WindowSumTransposed(outputGradient.div(Divisor(input, spec, x.Shape, shape)), input, spec, shape);
                return Wrap(spread, x.Shape, spec.Name);
            default:
                var y = Value(forward.Y);
                using (Scalar zero = 0.0.ToScalar())
                {
                    // g = dy / y, and 0 where y = 0 (every x in the window is 0, so dy·x/y → 0); NaN in y stays NaN.
                    var g = outputGradient.div(y).masked_fill_(y.eq(zero), zero);
                    var sums = native
                        ? avg_pool2d_backward(g, input, Kernel(spec), Stride(spec), Padding(spec), ceil, count_include_pad: true, divisor_override: 1)
                        : WindowSumTransposed(g, input, spec, shape);
                    return Wrap(sums.mul_(input), x.Shape, spec.Name);
                }
        }
    }

    /// <summary>
    /// Whether libtorch's own pooling kernels take the spec: they pad both sides alike and at most half the window,
    /// and avg_pool2d has no dilation. Anything else is pooled explicitly: padded to cover the windows exactly,
    /// then max_pool2d without padding, or window sums as a depthwise convolution with a kernel of ones.
    /// </summary>
    private static bool IsNative(PoolSpec spec) =>
        spec.Padding.IsSymmetric && 2 * spec.PadH <= spec.KernelH && 2 * spec.PadW <= spec.KernelW &&
        (spec.Mode == PoolMode.Max || (spec.DilationH == 1 && spec.DilationW == 1));

    /// <summary>
    /// Pads <paramref name="t"/> with <paramref name="value"/> (P_top rows above, P_left columns left) and pads or crops
    /// below and right, so that the windows of the output <paramref name="y"/> cover it exactly, with no padding left to libtorch.
    /// </summary>
    private static torch.Tensor PadToWindows(torch.Tensor t, long top, long left, PoolSpec spec, Shape y, double value)
    {
        long height = (long)(y.H - 1) * spec.StrideH + spec.EffectiveKernelH, width = (long)(y.W - 1) * spec.StrideW + spec.EffectiveKernelW;
        return pad(t, [left, width - t.shape[3] - left, top, height - t.shape[2] - top], PaddingModes.Constant, value);
    }

    /// <summary>
    /// Max pooling on input padded with −∞. Switches come back in the padded plane and are mapped to the input's; a window
    /// whose maximum is −∞ keeps libtorch's initial index, its first tap (maybe padding), and is given the first tap
    /// inside the input instead, as the managed kernel does.
    /// </summary>
    private (torch.Tensor Y, torch.Tensor Switches) MaxPoolExplicitly(torch.Tensor input, PoolSpec spec, Shape y)
    {
        var padded = PadToWindows(input, spec.PadH, spec.PadW, spec, y, double.NegativeInfinity);
        var (values, indices) = max_pool2d_with_indices(padded, Kernel(spec), Stride(spec), [0, 0], Dilation(spec));
        long paddedWidth = padded.shape[3], width = input.shape[3];
        var rows = indices.div(paddedWidth, torch.RoundingMode.floor).sub_(spec.PadH);
        var columns = indices.remainder(paddedWidth).sub_(spec.PadW);
        var switches = rows.mul_(width).add_(columns);
        var first = FirstTaps(spec, (int)input.shape[2], (int)width, y);
        return (values, torch.where(values.isneginf(), first, switches));
    }

    /// <summary>For each output of a plane [H', W'], the index h·W + w of its window's first tap inside the input.</summary>
    private torch.Tensor FirstTaps(PoolSpec spec, int h, int w, Shape y)
    {
        var first = new long[y.H * y.W];
        for (int oh = 0; oh < y.H; oh++)
        for (int ow = 0; ow < y.W; ow++)
        {
            first[oh * y.W + ow] = (long)FirstTap(oh * spec.StrideH - spec.PadH, spec.DilationH) * w + FirstTap(ow * spec.StrideW - spec.PadW, spec.DilationW);
        }
        return torch.tensor(first, [y.H, y.W], device: _device);

        static int FirstTap(int start, int d) => start >= 0 ? start : start + (-start + d - 1) / d * d;
    }

    /// <summary>Σ over each window of x, padding counted as 0: a depthwise convolution of the padded input with ones.</summary>
    private static torch.Tensor WindowSum(torch.Tensor x, PoolSpec spec, Shape y)
    {
        long channels = x.shape[1];
        var ones = torch.ones([channels, 1, spec.KernelH, spec.KernelW], x.dtype, x.device);
        return conv2d(PadToWindows(x, spec.PadH, spec.PadW, spec, y, 0), ones, null, Stride(spec), [0, 0], Dilation(spec), channels);
    }

    /// <summary>The transpose of <see cref="WindowSum"/> applied to <paramref name="g"/> [N, C, H', W'] (each window's value spread over its taps), by autograd.</summary>
    private static torch.Tensor WindowSumTransposed(torch.Tensor g, torch.Tensor input, PoolSpec spec, Shape y)
    {
        using var gradMode = torch.enable_grad();
        var leaf = input.detach().requires_grad_(true);
        return torch.autograd.grad([WindowSum(leaf, spec, y)], [leaf], [g])[0];
    }

    /// <summary>
    /// The average's divisor per output [1, 1, H', W']: the window taps on the input, or with CountIncludePad on the
    /// padded extent (not on what ceil mode adds past it) — the window sums of a mask of ones.
    /// </summary>
    private static torch.Tensor Divisor(torch.Tensor input, PoolSpec spec, Shape x, Shape y)
    {
        var p = spec.Padding;
        var mask = torch.ones([1, 1, x.H, x.W], input.dtype, input.device);
        if (spec.CountIncludePad) mask = pad(mask, [p.Left, p.Right, p.Top, p.Bottom], PaddingModes.Constant, 1);
        var (top, left) = spec.CountIncludePad ? (0L, 0L) : (p.Top, (long)p.Left);
        var padded = PadToWindows(mask, top, left, spec, y, 0);
        var ones = torch.ones([1, 1, spec.KernelH, spec.KernelW], input.dtype, input.device);
        return conv2d(padded, ones, null, Stride(spec), [0, 0], Dilation(spec));
    }

    /// <summary>y = x·Wᵀ + b, x flattened to [N, in].</summary>
    public ITensor Linear(ITensor x, ITensor w, ITensor? b)
    {
        var shape = OpChecks.Linear(this, x, w, b);
        using var scope = torch.NewDisposeScope();
        return Wrap(linear(Value(x).flatten(1), Value(w), b is null ? null : Value(b)), shape, "FC");
    }

    /// <summary>dx = dy·W (in x's shape), dw = dyᵀ·x, db = Σ_n dy.</summary>
    public LinearGradients LinearBackward(ITensor dy, ITensor x, ITensor w, bool needDx)
    {
        OpChecks.LinearBackward(this, dy, x, w);
        using var scope = torch.NewDisposeScope();
        var outputGradient = Value(dy);
        var dx = needDx ? outputGradient.mm(Value(w)).reshape(Dims(x.Shape)) : null;
        var dw = outputGradient.t().mm(Value(x).flatten(1));
        var db = outputGradient.sum(0L); // 0L: a plain 0 would bind to sum(ScalarType) as Byte
        return new LinearGradients(
            dx is null ? null : Wrap(dx, x.Shape, "FC"),
            Wrap(dw, w.Shape, "FC"),
            Wrap(db, new Shape(w.Shape[0]), "FC"));
    }

    /// <summary>
    /// LinearBackward into <paramref name="destination"/>: dx and dw by addmm_ with β = 0 straight into them (libtorch's
    /// mm is that very call, so the same bits), where the allocating form's result and a copy would take a new tensor of
    /// dw's size each call — VGG16's fc1 dw is 411 MB, which glibc maps anew and the kernel faults in page by page.
    /// </summary>
    public void LinearBackward(ITensor dy, ITensor x, ITensor w, LinearGradients destination)
    {
        OpChecks.LinearBackward(this, dy, x, w, destination);
        using var scope = torch.NewDisposeScope();
        var outputGradient = Value(dy);
        if (destination.Dx is not null) ((TorchTensor)destination.Dx).Mutable.flatten(1).addmm_(outputGradient, Value(w), beta: 0, alpha: 1);
        ((TorchTensor)destination.Dw).Mutable.addmm_(outputGradient.t(), Value(x).flatten(1), beta: 0, alpha: 1);
        ((TorchTensor)destination.Db).Mutable.copy_(outputGradient.sum(0L));
    }

    /// <summary>y = max(0, x); NaN stays NaN, and −0 gives +0.</summary>
    public ITensor Relu(ITensor x)
    {
        OpChecks.Unary(this, x, "RELU");
        using var scope = torch.NewDisposeScope();
        using Scalar zero = 0.0.ToScalar();
        // libtorch's relu keeps NaN but maps −0 to −0; + 0 turns only −0 into +0 (IEEE max(0, −0) as the managed
        // backend computes it), so ReLU agrees bit for bit.
        return Wrap(Value(x).relu().add_(zero), x.Shape, "RELU");
    }

    /// <summary>dx = dy where x &gt; 0, else 0 (a select, not dy·[x &gt; 0], so a NaN in dy elsewhere gives no NaN).</summary>
    public ITensor ReluBackward(ITensor dy, ITensor x)
    {
        OpChecks.UnaryBackward(this, dy, x, "RELU");
        using var scope = torch.NewDisposeScope();
        using Scalar zero = 0.0.ToScalar();
        // dy where x > 0, else 0 (NaN in x gives 0, NaN in dy where x ≤ 0 gives 0): two kernels, where masked_fill of
        // the negated comparison took three (2 threads, float32, medians of 31: 8×96×55×55 5.1 against 5.4–7.7 ms,
        // 2×64×224×224 14.1 against 15.2). TorchSharp 0.107 has no threshold_backward, libtorch's one kernel for it.
        var dx = torch.where(Value(x).gt(zero), Value(dy), 0.0);
        return Wrap(dx, x.Shape, "RELU");
    }

    /// <summary>L = mean_n −log softmax(s_n)[y_n]; dS = (softmax(s) − onehot(y)) / N.</summary>
    public LossResult SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels)
    {
        const string op = "SOFTMAX";
        OpChecks.Loss(this, scores, labels, op);
        using var scope = torch.NewDisposeScope();
        // In float64 whatever the dtype, rounded once at the end, as the managed backend does, so that the two agree
        // to the last bit or so in float32 too; the tensor is only [N, classes].
        var s = Value(scores).to_type(torch.ScalarType.Float64);
        var y = Labels(labels);
        using Scalar batch = labels.Length.ToScalar();
        // log_softmax and softmax subtract the row maximum (libtorch's stable kernels).
        double loss = ToDouble(nll_loss(s.log_softmax(1), y));
        var dScores = s.softmax(1).sub_(one_hot(y, s.shape[1]).to_type(s.dtype)).div_(batch).to_type(Value(scores).dtype);
        return new LossResult(loss, Wrap(dScores, scores.Shape, op));
    }

    /// <summary>L = mean_n Σ_{j≠y_n} max(0, s_j − s_{y_n} + 1); dS_j = [margin_j &gt; 0] / N, dS_{y_n} = −Σ_j [margin_j &gt; 0] / N.</summary>
    public LossResult MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels)
    {
        const string op = "SVM";
        OpChecks.Loss(this, scores, labels, op);
        using var scope = torch.NewDisposeScope();
        using Scalar zero = 0.0.ToScalar();
        using Scalar one = 1.0.ToScalar();
        using Scalar batch = labels.Length.ToScalar();
        var s = Value(scores);
        var y = Labels(labels).unsqueeze(1);
        var margins = s.sub(s.gather(1, y)).add_(one);
        margins.scatter_(1, y, torch.zeros_like(y, s.dtype)).clamp_min_(zero);
        double loss = ToDouble(margins.sum(torch.ScalarType.Float64)) / labels.Length;
        var active = margins.gt(zero).to_type(s.dtype);
        var dScores = active.scatter_(1, y, active.sum(1, keepdim: true).neg_()).div_(batch);
        return new LossResult(loss, Wrap(dScores, scores.Shape, op));
    }

    /// <summary>
    /// In place: v = momentum·v − lr·(g + weightDecay·p); p = p + v. Each step is one rounded operation in the
    /// tensors' dtype, in this order: t = weightDecay·p; t = g + t; t = lr·t; v = momentum·v; v = v − t; p = p + v
    /// (libtorch rounds the scalars to the dtype first; no fused add-with-alpha, whose FMA would round differently).
    /// </summary>
    public void SgdStep(ITensor param, ITensor grad, ITensor velocity, double learningRate, double momentum, double weightDecay)
    {
        OpChecks.Sgd(this, param, grad, velocity, learningRate, momentum, weightDecay);
        using var scope = torch.NewDisposeScope();
        using Scalar decay = weightDecay.ToScalar();
        using Scalar rate = learningRate.ToScalar();
        using Scalar keep = momentum.ToScalar();
        var p = ((TorchTensor)param).Mutable;
        var v = ((TorchTensor)velocity).Mutable;
        var step = p.mul(decay).add_(Value(grad)).mul_(rate);
        v.mul_(keep).sub_(step);
        p.add_(v);
    }

    public void Synchronize()
    {
        if (IsCuda) torch.cuda.synchronize(_device);
    }

    public void Dispose()
    {
        // Tensors own their memory; the backend holds nothing native.
    }

    public override string ToString() => Description;

    /// <summary>
    /// Bytes of the tensors this backend has handed out and that are not yet disposed (numel × element size).
    /// libtorch's temporaries inside an op, freed before the op returns, and its caching allocator are not counted.
    /// </summary>
    public long LiveBytes { get { lock (_memoryGate) return _liveBytes; } }

    /// <summary>The most <see cref="LiveBytes"/> has been since the backend was made or <see cref="ResetPeak"/>.</summary>
    public long PeakLiveBytes { get { lock (_memoryGate) return _peakLiveBytes; } }

    public void ResetPeak()
    {
        lock (_memoryGate) _peakLiveBytes = _liveBytes;
    }

    internal void Track(long bytes)
    {
        lock (_memoryGate)
        {
            _liveBytes += bytes;
            _peakLiveBytes = Math.Max(_peakLiveBytes, _liveBytes);
        }
    }

    private TorchTensor Wrap(torch.Tensor value) => new(this, value);

    /// <summary>Wraps a result after checking libtorch agreed with Abstractions on its shape (e.g. ceil-mode sizes).</summary>
    private TorchTensor Wrap(torch.Tensor value, Shape expected, string op)
    {
        var result = new TorchTensor(this, value);
        if (result.Shape != expected)
        {
            result.Dispose();
            throw new InvalidOperationException($"{op}: libtorch produced {result.Shape}, Lockstep's geometry says {expected}");
        }
        return result;
    }

    private static torch.Tensor Value(ITensor tensor) => ((TorchTensor)tensor).Value;

    private torch.Tensor Labels(ReadOnlySpan<int> labels)
    {
        var host = torch.empty([labels.Length], torch.ScalarType.Int64, torch.CPU);
        var destination = MemoryMarshal.Cast<byte, long>(host.bytes);
        for (int i = 0; i < labels.Length; i++) destination[i] = labels[i];
        return IsCuda ? host.to(_device) : host;
    }

    private static double ToDouble(torch.Tensor scalar) => scalar.to_type(torch.ScalarType.Float64).cpu().item<double>();

    private static long[] Dims(Shape shape) => shape.Dims.Select(d => (long)d).ToArray();

    private static long[] Kernel(PoolSpec spec) => [spec.KernelH, spec.KernelW];

    private static long[] Stride(PoolSpec spec) => [spec.StrideH, spec.StrideW];

    private static long[] Padding(PoolSpec spec) => [spec.PadH, spec.PadW];

    private static long[] Dilation(PoolSpec spec) => [spec.DilationH, spec.DilationW];

    private static long[] Stride(ConvSpec spec) => [spec.StrideH, spec.StrideW];

    private static long[] Dilation(ConvSpec spec) => [spec.DilationH, spec.DilationW];
}
