using System.Numerics;
using Lockstep.Backends.Managed.Gemm;
using Lockstep.Backends.Managed.Kernels;
using Lockstep.Backends.Managed.Tensors;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Backends.Managed;

/// <summary>
/// The managed backend: C# kernels on host arrays (im2col / col2im, pooling with switches), matrix products on a
/// native BLAS through <see cref="IGemmProvider"/>. The semantic reference of the project: simple loops first.
/// One threading policy (PERF-NOTES pitfall 1): the backend's <see cref="Threads"/> workers split each kernel and
/// each matrix product, and the BLAS runs at one thread inside every piece, so the two never compete for the cores.
/// </summary>
public sealed class ManagedBackend : IBackend, IMemoryStatistics
{
    private readonly BufferPool _pool = new();
    private readonly WorkerPool _workers;
    private readonly ParallelGemm _gemm;
    private readonly bool _specialized;
    private bool _disposed;

    /// <summary>
    /// A backend on <paramref name="gemm"/>, which it owns (and disposes), with <paramref name="threads"/> workers
    /// (0 = all cores). More than one worker needs a provider at one BLAS thread: the workers are the parallelism.
    /// </summary>
    public ManagedBackend(IGemmProvider gemm, string? gemmReason = null, int threads = 1, string convolution = "auto")
    {
        ArgumentNullException.ThrowIfNull(gemm);
        ArgumentNullException.ThrowIfNull(convolution);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        if (threads == 0) threads = Environment.ProcessorCount;
        if (threads > 1 && gemm.Threads > 1)
        {
            throw new ArgumentException(
                $"managed: {threads} workers over a GEMM provider at {gemm.Threads} threads would oversubscribe the cores; " +
                "give the provider one thread (the workers split each product)");
        }
        Convolution = convolution.Trim().ToLowerInvariant() switch
        {
            "auto" => "auto",
            "im2col" => "im2col",
            _ => throw new ArgumentException($"managed: unknown convolution algorithm '{convolution}'; known: auto, im2col"),
        };
        _specialized = Convolution == "auto";
        Gemm = gemm;
        GemmReason = gemmReason ?? $"{gemm.Name}: given";
        _workers = new WorkerPool(threads);
        _gemm = new ParallelGemm(gemm, _workers);
    }

    /// <summary>
    /// A backend on the GEMM provider named <paramref name="gemm"/> (auto | mkl | openblas | managed), at one BLAS
    /// thread, with <paramref name="threads"/> workers (0 = all cores).
    /// </summary>
    public ManagedBackend(string gemm = "auto", int threads = 0, string convolution = "auto")
        : this(GemmProviders.Select(gemm, 1, Workers(threads)), Workers(threads), convolution) { }

    private ManagedBackend(GemmSelection selection, int threads, string convolution) : this(selection.Provider, selection.Reason, threads, convolution) { }

    private static int Workers(int threads) => threads == 0 ? Environment.ProcessorCount : threads;

    public string Name => "managed";

    public string Description =>
        $"managed (gemm: {Gemm.Name} {Gemm.Version}, {Threads} thread{(Threads == 1 ? "" : "s")}{(_specialized ? "" : ", convolution: im2col")})";

    /// <summary>The convolution algorithm asked for: auto (Winograd or the direct kernel where they apply, else im2col) or im2col.</summary>
    public string Convolution { get; }

    /// <summary>The matrix-product provider in use (at one BLAS thread when there are several workers).</summary>
    public IGemmProvider Gemm { get; }

    /// <summary>Workers that run the kernels and split the products, the calling thread included.</summary>
    public int Threads => _workers.Threads;

    /// <summary>
    /// The GEMM phase of the kernels since the last <see cref="ResetGemmStatistics"/>: floating-point operations of
    /// every product (2·M·N·K) and the wall time spent in them, so a benchmark can set the products alone against
    /// the machine's peak.
    /// </summary>
    public (double Flops, TimeSpan Elapsed) GemmStatistics => _gemm.Statistics;

    public void ResetGemmStatistics() => _gemm.ResetStatistics();

    /// <summary>Why <see cref="Gemm"/> was chosen, e.g. "auto: mkl not loadable (…); openblas loaded".</summary>
    public string GemmReason { get; }

    /// <summary>Bytes of disposed tensors kept for reuse.</summary>
    public long PooledBytes => _pool.RetainedBytes;

    /// <summary>Bytes of the arrays rented from the pool and not yet given back: live tensors and im2col columns.</summary>
    public long LiveBytes => _pool.LiveBytes;

    /// <summary>The most <see cref="LiveBytes"/> has been since the backend was made or <see cref="ResetPeak"/>.</summary>
    public long PeakLiveBytes => _pool.PeakLiveBytes;

    public void ResetPeak() => _pool.ResetPeak();

    /// <summary>
    /// Elements of the working buffers Conv2dBackward rents (Conv2d rents the columns only) for input <paramref name="x"/>
    /// and <paramref name="filters"/> filters on <paramref name="threads"/> workers: one im2col column buffer
    /// C·F_h·F_w × H'·W' per image in flight (for a band of output rows when that exceeds Convolution.ColumnTileElements)
    /// — min(threads, N) when several workers share a batch, else 1; none for a pointwise convolution — plus a dw and
    /// db partial sum per extra worker. As Kernels/Convolution.cs rents them. Where the direct kernel takes the forward
    /// (Kernels/DirectConvolution.cs), the larger of that and its padded bands and packed weights.
    /// </summary>
    public static long ConvWorkspaceElements(Shape x, ConvSpec spec, int filters, int threads, bool specialized = true)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(spec);
        int slots = threads > 1 && x.N > 1 ? Math.Min(threads, x.N) : 1;
        var (h, w) = spec.OutputSize(x.H, x.W);
        int cff = x.C * spec.KernelH * spec.KernelW;
        long columns = Kernels.Convolution.IsPointwise(spec) ? 0 : (long)cff * Kernels.Convolution.BandRowsFor(cff, h, w) * w;
        long partials = (long)filters * x.C / spec.Groups * spec.KernelH * spec.KernelW + filters;
        long im2col = slots * columns + (slots - 1) * partials;
        // Conv2d on the direct path rents a padded band per worker and the repacked weights instead (the dtype is not
        // known here: the larger of float's and double's); a Winograd convolution rents its own buffers, after
        // (backward) or instead of (forward) the columns.
        long direct = 0;
        foreach (int lanes in (ReadOnlySpan<int>)[DirectConvolution.Lanes<float>(), DirectConvolution.Lanes<double>()])
        {
            if (specialized && DirectConvolution.Applies(x, filters, spec, w, lanes))
                direct = Math.Max(direct, DirectConvolution.WorkspaceElements(x, filters, spec, h, w, threads, lanes));
        }
        long winogradElements = specialized && Winograd.Applies(spec, x.N, x.C, filters, h, w) ? Winograd.WorkspaceElements(x.N, x.C, filters, h, w, threads) : 0;
        return Math.Max(im2col, Math.Max(direct, winogradElements));
    }

    public ITensor Upload<T>(ReadOnlySpan<T> data, Shape shape) where T : unmanaged
    {
        OpChecks.Upload<T>(data.Length, shape);
        var t = ManagedTensor.Rent<T>(this, _pool, shape, clear: false);
        data.CopyTo(t.Span<T>());
        return t;
    }

    public void Download<T>(ITensor tensor, Span<T> destination) where T : unmanaged
    {
        OpChecks.Download<T>(this, tensor, destination.Length);
        ((ManagedTensor)tensor).Span<T>().CopyTo(destination);
    }

    public ITensor Zeros(Shape shape, DType dtype)
    {
        OpChecks.Zeros(shape, dtype);
        return dtype switch
        {
            DType.Float32 => ManagedTensor.Rent<float>(this, _pool, shape, clear: true),
            DType.Float64 => ManagedTensor.Rent<double>(this, _pool, shape, clear: true),
            DType.Int64 => ManagedTensor.Rent<long>(this, _pool, shape, clear: true),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Zeros: unknown dtype"),
        };
    }

    /// <summary>y[n,k] = b[k] + Σ_c w[k,c] ⋆ x[n,c], directly for small first layers, else by im2col + GEMM.</summary>
    public ITensor Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec)
    {
        var yShape = OpChecks.Conv2d(this, x, w, b, spec);
        return x.DType == DType.Float32 ? Conv2d<float>(x, w, b, spec, yShape) : Conv2d<double>(x, w, b, spec, yShape);
    }

    private ManagedTensor Conv2d<T>(ITensor x, ITensor w, ITensor? b, ConvSpec spec, Shape yShape) where T : unmanaged, IFloatingPointIeee754<T>
    {
        long workspace = ConvWorkspaceElements(x.Shape, spec, w.Shape[0], _workers.Threads, _specialized);
        MemoryBudget.Require<T>(spec.Name, "output", yShape, yShape.Count, workspace);
        MemoryBudget.Require<T>(spec.Name, "convolution workspace", workspace, yShape.Count);
        var y = Rent<T>(yShape);
        Kernels.Convolution.Forward<T>(_gemm, _workers, _pool, Data<T>(x), x.Shape, Data<T>(w), w.Shape[0], b is null ? default : Data<T>(b), spec,
            yShape.H, yShape.W, y.Span<T>(), _specialized);
        return y;
    }

    /// <summary>dw = Σ_n dy_n·cols_nᵀ, db = Σ dy, dx = col2im(Wᵀ·dy_n) when <paramref name="needDx"/>.</summary>
    public ConvGradients Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx)
    {
        var yShape = OpChecks.Conv2dBackward(this, dy, x, w, spec);
        return x.DType == DType.Float32
            ? Conv2dBackward<float>(dy, x, w, spec, needDx, yShape)
            : Conv2dBackward<double>(dy, x, w, spec, needDx, yShape);
    }

    private ConvGradients Conv2dBackward<T>(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx, Shape yShape)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        long workspace = ConvWorkspaceElements(x.Shape, spec, w.Shape[0], _workers.Threads, _specialized);
        long gradients = (needDx ? x.Shape.Count : 0) + w.Shape.Count + w.Shape[0];
        MemoryBudget.Require<T>(spec.Name, "convolution workspace", workspace, gradients);
        if (needDx) MemoryBudget.Require<T>(spec.Name, "input gradient", x.Shape, x.Shape.Count, workspace);
        var dx = needDx ? Rent<T>(x.Shape) : null;
        var dw = Rent<T>(w.Shape);
        var db = Rent<T>(OpChecks.Bias(w.Shape));
        Kernels.Convolution.Backward<T>(_gemm, _workers, _pool, Data<T>(dy), Data<T>(x), x.Shape, Data<T>(w), w.Shape[0], spec, yShape.H, yShape.W,
            dx is null ? default : dx.Span<T>(), dw.Span<T>(), db.Span<T>(), _specialized);
        return new ConvGradients(dx, dw, db);
    }

    /// <summary>y = max, mean or L2 norm over each window; max records its switches (Int64, index h·W + w in the plane).</summary>
    public PoolResult Pool2d(ITensor x, PoolSpec spec)
    {
        var yShape = OpChecks.Pool2d(this, x, spec);
        return x.DType == DType.Float32 ? Pool2d<float>(x, spec, yShape) : Pool2d<double>(x, spec, yShape);
    }

    private PoolResult Pool2d<T>(ITensor x, PoolSpec spec, Shape yShape) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var s = x.Shape;
        int planes = s.N * s.C;
        var y = Rent<T>(yShape);
        switch (spec.Mode)
        {
            case PoolMode.Max:
                var switches = ManagedTensor.Rent<long>(this, _pool, yShape, clear: false);
                PoolingJob<T>.Run(_workers, PoolKernel.MaxForward, spec, planes, s.H, s.W, yShape.H, yShape.W, Data<T>(x), y.Span<T>(),
                    switches.Span<long>(), default, default);
                return new PoolResult(y, switches);
            case PoolMode.Average:
                PoolingJob<T>.Run(_workers, PoolKernel.AverageForward, spec, planes, s.H, s.W, yShape.H, yShape.W, Data<T>(x), y.Span<T>(),
                    default, default, default);
                return new PoolResult(y, null);
            default:
                PoolingJob<T>.Run(_workers, PoolKernel.L2Forward, spec, planes, s.H, s.W, yShape.H, yShape.W, Data<T>(x), y.Span<T>(),
                    default, default, default);
                return new PoolResult(y, null);
        }
    }

    /// <summary>dx: dy routed through the switches (max), spread evenly over the window (average), or dy·x/y (L2).</summary>
    public ITensor Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec)
    {
        var yShape = OpChecks.Pool2dBackward(this, dy, x, forward, spec);
        if (spec.Mode == PoolMode.Max)
        {
            // OpChecks checks the switches' shape; their owner and dtype are this backend's concern.
            if (!ReferenceEquals(forward.Switches!.Backend, this) || forward.Switches.DType != DType.Int64)
            {
                throw new ArgumentException($"{spec.Name}: the switches must be an Int64 tensor of this backend, got {forward.Switches.DType} of '{forward.Switches.Backend.Name}'");
            }
        }
        else if (spec.Mode == PoolMode.L2)
        {
            OpChecks.Tensor(this, forward.Y, spec.Name, "forward output");
        }
        return x.DType == DType.Float32 ? Pool2dBackward<float>(dy, x, forward, spec, yShape) : Pool2dBackward<double>(dy, x, forward, spec, yShape);
    }

    private ManagedTensor Pool2dBackward<T>(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec, Shape yShape)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var s = x.Shape;
        int planes = s.N * s.C;
        var dx = Rent<T>(s);
        var kernel = spec.Mode switch { PoolMode.Max => PoolKernel.MaxBackward, PoolMode.Average => PoolKernel.AverageBackward, _ => PoolKernel.L2Backward };
        var switches = spec.Mode == PoolMode.Max ? ((ManagedTensor)forward.Switches!).Span<long>() : default;
        var y = spec.Mode == PoolMode.L2 ? ((ManagedTensor)forward.Y).Span<T>() : default;
        PoolingJob<T>.Run(_workers, kernel, spec, planes, s.H, s.W, yShape.H, yShape.W, Data<T>(x), y, switches, Data<T>(dy), dx.Span<T>());
        return dx;
    }

    /// <summary>y = x·Wᵀ + b by GEMM, a rank-4 x flattened to [N, C·H·W].</summary>
    public ITensor Linear(ITensor x, ITensor w, ITensor? b)
    {
        var yShape = OpChecks.Linear(this, x, w, b);
        return x.DType == DType.Float32 ? Linear<float>(x, w, b, yShape) : Linear<double>(x, w, b, yShape);
    }

    private ManagedTensor Linear<T>(ITensor x, ITensor w, ITensor? b, Shape yShape) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var y = Rent<T>(yShape);
        Kernels.Linear.Forward<T>(_gemm, _workers, Data<T>(x), Data<T>(w), b is null ? default : Data<T>(b), yShape[0], w.Shape[1], w.Shape[0], y.Span<T>());
        return y;
    }

    /// <summary>dx = dy·W (in x's shape), dw = dyᵀ·x, db = Σ_n dy.</summary>
    public LinearGradients LinearBackward(ITensor dy, ITensor x, ITensor w, bool needDx)
    {
        var yShape = OpChecks.LinearBackward(this, dy, x, w);
        return x.DType == DType.Float32 ? LinearBackward<float>(dy, x, w, needDx, yShape) : LinearBackward<double>(dy, x, w, needDx, yShape);
    }

    private LinearGradients LinearBackward<T>(ITensor dy, ITensor x, ITensor w, bool needDx, Shape yShape) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var dx = needDx ? Rent<T>(x.Shape) : null;
        var dw = Rent<T>(w.Shape);
        var db = Rent<T>(OpChecks.Bias(w.Shape));
        Kernels.Linear.Backward<T>(_gemm, _workers, Data<T>(dy), Data<T>(x), Data<T>(w), yShape[0], w.Shape[1], w.Shape[0],
            dx is null ? default : dx.Span<T>(), dw.Span<T>(), db.Span<T>());
        return new LinearGradients(dx, dw, db);
    }

    /// <summary>y = max(0, x); NaN stays NaN.</summary>
    public ITensor Relu(ITensor x)
    {
        OpChecks.Unary(this, x, "RELU");
        return x.DType == DType.Float32 ? Relu<float>(x) : Relu<double>(x);
    }

    private ManagedTensor Relu<T>(ITensor x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var y = Rent<T>(x.Shape);
        ActivationJob<T>.Run(_workers, default, Data<T>(x), y.Span<T>());
        return y;
    }

    /// <summary>dx = dy where x &gt; 0, else 0.</summary>
    public ITensor ReluBackward(ITensor dy, ITensor x)
    {
        OpChecks.UnaryBackward(this, dy, x, "RELU");
        return x.DType == DType.Float32 ? ReluBackward<float>(dy, x) : ReluBackward<double>(dy, x);
    }

    private ManagedTensor ReluBackward<T>(ITensor dy, ITensor x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var dx = Rent<T>(x.Shape);
        ActivationJob<T>.Run(_workers, Data<T>(dy), Data<T>(x), dx.Span<T>());
        return dx;
    }

    /// <summary>L = mean_n −log softmax(s_n)[y_n] (row max subtracted; accumulated in double); dS = (softmax(s) − onehot(y)) / N.</summary>
    public LossResult SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels)
    {
        OpChecks.Loss(this, scores, labels, "SOFTMAX");
        return scores.DType == DType.Float32 ? Softmax<float>(scores, labels) : Softmax<double>(scores, labels);
    }

    private LossResult Softmax<T>(ITensor scores, ReadOnlySpan<int> labels) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var ds = Rent<T>(scores.Shape);
        double loss = Losses.SoftmaxCrossEntropy<T>(Data<T>(scores), labels, scores.Shape[1], ds.Span<T>());
        return new LossResult(loss, ds);
    }

    /// <summary>L = mean_n Σ_{j≠y_n} max(0, s_j − s_{y_n} + 1); dS its subgradient / N.</summary>
    public LossResult MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels)
    {
        OpChecks.Loss(this, scores, labels, "SVM");
        return scores.DType == DType.Float32 ? Svm<float>(scores, labels) : Svm<double>(scores, labels);
    }

    private LossResult Svm<T>(ITensor scores, ReadOnlySpan<int> labels) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var ds = Rent<T>(scores.Shape);
        double loss = Losses.MulticlassSvm<T>(Data<T>(scores), labels, scores.Shape[1], ds.Span<T>());
        return new LossResult(loss, ds);
    }

    /// <summary>In place: v = momentum·v − lr·(g + weightDecay·p); p = p + v (computed in the tensors' type).</summary>
    public void SgdStep(ITensor param, ITensor grad, ITensor velocity, double learningRate, double momentum, double weightDecay)
    {
        OpChecks.Sgd(this, param, grad, velocity, learningRate, momentum, weightDecay);
        if (param.DType == DType.Float32)
        {
            Sgd.Step(((ManagedTensor)param).Span<float>(), Data<float>(grad), ((ManagedTensor)velocity).Span<float>(),
                (float)learningRate, (float)momentum, (float)weightDecay);
        }
        else
        {
            Sgd.Step(((ManagedTensor)param).Span<double>(), Data<double>(grad), ((ManagedTensor)velocity).Span<double>(),
                learningRate, momentum, weightDecay);
        }
    }

    /// <summary>Every op has finished when it returns.</summary>
    public void Synchronize() { }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _pool.Clear();
        _workers.Dispose();
        Gemm.Dispose();
    }

    public override string ToString() => Description;

    private ManagedTensor Rent<T>(Shape shape) where T : unmanaged => ManagedTensor.Rent<T>(this, _pool, shape, clear: false);

    // OpChecks has made sure the tensor is this backend's, alive, and of the op's dtype.
    private static ReadOnlySpan<T> Data<T>(ITensor tensor) where T : unmanaged => ((ManagedTensor)tensor).Span<T>();
}
