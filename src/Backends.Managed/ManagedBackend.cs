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
    /// db partial sum per extra worker, or the whole batch's columns where the weight gradient is one product over the batch.
    /// As Kernels/Convolution.cs rents them. Where the direct kernel takes the forward
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
        // The weight gradient as one product over the batch (Kernels/Convolution.cs) rents the batch's columns instead,
        // where Winograd does not take it.
        if (specialized && !Winograd.AppliesToWeights(spec, x.N, x.C, filters, h, w))
            im2col = Math.Max(im2col, Kernels.Convolution.BatchedWeightsElements(x, filters, spec, h, w));
        // Conv2d on the direct path rents a padded band per worker and the repacked weights instead (the dtype is not
        // known here: the larger of float's and double's); a Winograd convolution rents its own buffers, after
        // (backward) or instead of (forward) the columns.
        long direct = 0;
        foreach (int lanes in (ReadOnlySpan<int>)[DirectConvolution.Lanes<float>(), DirectConvolution.Lanes<double>()])
        {
            if (specialized && DirectConvolution.Applies(x, filters, spec, w, lanes))
                direct = Math.Max(direct, DirectConvolution.WorkspaceElements(x, filters, spec, h, w, threads, lanes));
            if (specialized && DirectConvolution.AppliesToData(x, filters, spec))
                direct = Math.Max(direct, DirectConvolution.DataWorkspaceElements(x, spec, h, w, threads, lanes));
        }
        long winogradElements = specialized && Winograd.Applies(spec, x.N, x.C, filters, h, w)
            ? Winograd.WorkspaceElements(spec.KernelH, x.N, x.C, filters, h, w, threads) : 0;
        if (specialized && Winograd.AppliesToWeights(spec, x.N, x.C, filters, h, w))
            winogradElements = Math.Max(winogradElements, Winograd.WeightsWorkspaceElements(spec.KernelH, x.N, x.C, filters, h, w, threads));
        return Math.Max(im2col, Math.Max(direct, winogradElements));
    }

    public ITensor Upload<T>(ReadOnlySpan<T> data, Shape shape) where T : unmanaged
    {
        OpChecks.Upload<T>(data.Length, shape);
        var t = ManagedTensor.Rent<T>(this, _pool, shape, clear: false);
        data.CopyTo(t.Span<T>());
        return t;
    }

    public void Upload<T>(ReadOnlySpan<T> data, ITensor destination) where T : unmanaged
    {
        OpChecks.Upload<T>(this, data.Length, destination);
        data.CopyTo(Out<T>(destination));
    }

    public void Download<T>(ITensor tensor, Span<T> destination) where T : unmanaged
    {
        OpChecks.Download<T>(this, tensor, destination.Length);
        ((ManagedTensor)tensor).Read<T>().CopyTo(destination);
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

    /// <summary>destination = source (a copy of the host array).</summary>
    public void Copy(ITensor source, ITensor destination)
    {
        OpChecks.Copy(this, source, destination);
        switch (source.DType)
        {
            case DType.Float32: Data<float>(source).CopyTo(Out<float>(destination)); break;
            case DType.Float64: Data<double>(source).CopyTo(Out<double>(destination)); break;
            default: Data<long>(source).CopyTo(Out<long>(destination)); break;
        }
    }

    // Each op has one kernel path: the allocating overload rents its outputs and runs the destination path into them.

    /// <summary>y[n,k] = b[k] + Σ_c w[k,c] ⋆ x[n,c], directly for small first layers, else by im2col + GEMM.</summary>
    public ITensor Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec)
    {
        var yShape = OpChecks.Conv2d(this, x, w, b, spec);
        return x.DType == DType.Float32 ? Conv2d<float>(x, w, b, spec, yShape, null) : Conv2d<double>(x, w, b, spec, yShape, null);
    }

    /// <summary>y[n,k] = b[k] + Σ_c w[k,c] ⋆ x[n,c] into <paramref name="destination"/>.</summary>
    public void Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec, ITensor destination)
    {
        var yShape = OpChecks.Conv2d(this, x, w, b, spec, destination);
        var y = (ManagedTensor)destination;
        if (x.DType == DType.Float32) Conv2d<float>(x, w, b, spec, yShape, y);
        else Conv2d<double>(x, w, b, spec, yShape, y);
    }

    private ManagedTensor Conv2d<T>(ITensor x, ITensor w, ITensor? b, ConvSpec spec, Shape yShape, ManagedTensor? destination)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        long workspace = ConvWorkspaceElements(x.Shape, spec, w.Shape[0], _workers.Threads, _specialized);
        long output = destination is null ? yShape.Count : 0;
        if (destination is null) MemoryBudget.Require<T>(spec.Name, "output", yShape, yShape.Count, workspace);
        MemoryBudget.Require<T>(spec.Name, "convolution workspace", workspace, output);
        var y = destination ?? Rent<T>(yShape);
        Kernels.Convolution.Forward<T>(_gemm, _workers, _pool, Data<T>(x), x.Shape, Data<T>(w), w.Shape[0], b is null ? default : Data<T>(b), spec,
            yShape.H, yShape.W, y.Span<T>(), _specialized, (ManagedTensor)w);
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

    /// <summary>dw, db and (when destination.Dx is given) dx into <paramref name="destination"/>'s tensors.</summary>
    public void Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, ConvGradients destination)
    {
        var yShape = OpChecks.Conv2dBackward(this, dy, x, w, spec, destination);
        if (x.DType == DType.Float32) Conv2dBackwardInto<float>(dy, x, w, spec, yShape, destination, rented: false);
        else Conv2dBackwardInto<double>(dy, x, w, spec, yShape, destination, rented: false);
    }

    private ConvGradients Conv2dBackward<T>(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx, Shape yShape)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        long workspace = ConvWorkspaceElements(x.Shape, spec, w.Shape[0], _workers.Threads, _specialized);
        long gradients = (needDx ? x.Shape.Count : 0) + w.Shape.Count + w.Shape[0];
        MemoryBudget.Require<T>(spec.Name, "convolution workspace", workspace, gradients);
        if (needDx) MemoryBudget.Require<T>(spec.Name, "input gradient", x.Shape, x.Shape.Count, workspace);
        var grads = new ConvGradients(needDx ? Rent<T>(x.Shape) : null, Rent<T>(w.Shape), Rent<T>(OpChecks.Bias(w.Shape)));
        try
        {
            Conv2dBackwardInto<T>(dy, x, w, spec, yShape, grads, rented: true);
        }
        catch
        {
            grads.Dispose();
            throw;
        }
        return grads;
    }

    private void Conv2dBackwardInto<T>(ITensor dy, ITensor x, ITensor w, ConvSpec spec, Shape yShape, ConvGradients g, bool rented)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // The allocating overload has checked the workspace with its gradients before renting them.
        if (!rented) MemoryBudget.Require<T>(spec.Name, "convolution workspace", ConvWorkspaceElements(x.Shape, spec, w.Shape[0], _workers.Threads, _specialized));
        Kernels.Convolution.Backward<T>(_gemm, _workers, _pool, Data<T>(dy), Data<T>(x), x.Shape, Data<T>(w), w.Shape[0], spec, yShape.H, yShape.W,
            g.Dx is null ? default : Out<T>(g.Dx), Out<T>(g.Dw), Out<T>(g.Db), _specialized, (ManagedTensor)w);
    }

    /// <summary>y = max, mean or L2 norm over each window; max records its switches (Int64, index h·W + w in the plane).</summary>
    public PoolResult Pool2d(ITensor x, PoolSpec spec)
    {
        var yShape = OpChecks.Pool2d(this, x, spec);
        var result = x.DType == DType.Float32
            ? new PoolResult(Rent<float>(yShape), spec.Mode == PoolMode.Max ? ManagedTensor.Rent<long>(this, _pool, yShape, clear: false) : null)
            : new PoolResult(Rent<double>(yShape), spec.Mode == PoolMode.Max ? ManagedTensor.Rent<long>(this, _pool, yShape, clear: false) : null);
        if (x.DType == DType.Float32) Pool2d<float>(x, spec, yShape, result);
        else Pool2d<double>(x, spec, yShape, result);
        return result;
    }

    /// <summary>Pooling into <paramref name="destination"/>: Y, and the switches for max pooling.</summary>
    public void Pool2d(ITensor x, PoolSpec spec, PoolResult destination)
    {
        var yShape = OpChecks.Pool2d(this, x, spec, destination);
        if (x.DType == DType.Float32) Pool2d<float>(x, spec, yShape, destination);
        else Pool2d<double>(x, spec, yShape, destination);
    }

    private void Pool2d<T>(ITensor x, PoolSpec spec, Shape yShape, PoolResult destination) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var s = x.Shape;
        int planes = s.N * s.C;
        var kernel = spec.Mode switch { PoolMode.Max => PoolKernel.MaxForward, PoolMode.Average => PoolKernel.AverageForward, _ => PoolKernel.L2Forward };
        var switches = spec.Mode == PoolMode.Max ? Out<long>(destination.Switches!) : default;
        PoolingJob<T>.Run(_workers, kernel, spec, planes, s.H, s.W, yShape.H, yShape.W, Data<T>(x), Out<T>(destination.Y), switches, default, default);
    }

    /// <summary>dx: dy routed through the switches (max), spread evenly over the window (average), or dy·x/y (L2).</summary>
    public ITensor Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec)
    {
        var yShape = OpChecks.Pool2dBackward(this, dy, x, forward, spec);
        var dx = x.DType == DType.Float32 ? Rent<float>(x.Shape) : Rent<double>(x.Shape);
        Pool2dBackwardInto(dy, x, forward, spec, yShape, dx);
        return dx;
    }

    /// <summary>Pooling's backward into <paramref name="destination"/> (x's shape).</summary>
    public void Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec, ITensor destination)
    {
        var yShape = OpChecks.Pool2dBackward(this, dy, x, forward, spec, destination);
        Pool2dBackwardInto(dy, x, forward, spec, yShape, (ManagedTensor)destination);
    }

    private void Pool2dBackwardInto(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec, Shape yShape, ManagedTensor dx)
    {
        if (x.DType == DType.Float32) Pool2dBackward<float>(dy, x, forward, spec, yShape, dx);
        else Pool2dBackward<double>(dy, x, forward, spec, yShape, dx);
    }

    private void Pool2dBackward<T>(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec, Shape yShape, ManagedTensor dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var s = x.Shape;
        int planes = s.N * s.C;
        // The kernel takes y and the switches as spans it may write (one signature for forward and backward); backward only reads them.
        var kernel = spec.Mode switch { PoolMode.Max => PoolKernel.MaxBackward, PoolMode.Average => PoolKernel.AverageBackward, _ => PoolKernel.L2Backward };
        var switches = spec.Mode == PoolMode.Max ? Out<long>(forward.Switches!) : default;
        var y = spec.Mode == PoolMode.L2 ? Out<T>(forward.Y) : default;
        PoolingJob<T>.Run(_workers, kernel, spec, planes, s.H, s.W, yShape.H, yShape.W, Data<T>(x), y, switches, Data<T>(dy), dx.Span<T>());
    }

    /// <summary>y = x·Wᵀ + b by GEMM, a rank-4 x flattened to [N, C·H·W].</summary>
    public ITensor Linear(ITensor x, ITensor w, ITensor? b)
    {
        var yShape = OpChecks.Linear(this, x, w, b);
        var y = x.DType == DType.Float32 ? Rent<float>(yShape) : Rent<double>(yShape);
        LinearInto(x, w, b, yShape, y);
        return y;
    }

    /// <summary>y = x·Wᵀ + b into <paramref name="destination"/>.</summary>
    public void Linear(ITensor x, ITensor w, ITensor? b, ITensor destination)
    {
        var yShape = OpChecks.Linear(this, x, w, b, destination);
        LinearInto(x, w, b, yShape, (ManagedTensor)destination);
    }

    private void LinearInto(ITensor x, ITensor w, ITensor? b, Shape yShape, ManagedTensor y)
    {
        if (x.DType == DType.Float32) Linear<float>(x, w, b, yShape, y);
        else Linear<double>(x, w, b, yShape, y);
    }

    private void Linear<T>(ITensor x, ITensor w, ITensor? b, Shape yShape, ManagedTensor y) where T : unmanaged, IFloatingPointIeee754<T> =>
        Kernels.Linear.Forward<T>(_gemm, _workers, Data<T>(x), Data<T>(w), b is null ? default : Data<T>(b), yShape[0], w.Shape[1], w.Shape[0], y.Span<T>());

    /// <summary>dx = dy·W (in x's shape), dw = dyᵀ·x, db = Σ_n dy.</summary>
    public LinearGradients LinearBackward(ITensor dy, ITensor x, ITensor w, bool needDx)
    {
        var yShape = OpChecks.LinearBackward(this, dy, x, w);
        var grads = x.DType == DType.Float32
            ? new LinearGradients(needDx ? Rent<float>(x.Shape) : null, Rent<float>(w.Shape), Rent<float>(OpChecks.Bias(w.Shape)))
            : new LinearGradients(needDx ? Rent<double>(x.Shape) : null, Rent<double>(w.Shape), Rent<double>(OpChecks.Bias(w.Shape)));
        LinearBackwardInto(dy, x, w, yShape, grads);
        return grads;
    }

    /// <summary>dw, db and (when destination.Dx is given) dx into <paramref name="destination"/>'s tensors.</summary>
    public void LinearBackward(ITensor dy, ITensor x, ITensor w, LinearGradients destination)
    {
        var yShape = OpChecks.LinearBackward(this, dy, x, w, destination);
        LinearBackwardInto(dy, x, w, yShape, destination);
    }

    private void LinearBackwardInto(ITensor dy, ITensor x, ITensor w, Shape yShape, LinearGradients g)
    {
        if (x.DType == DType.Float32) LinearBackward<float>(dy, x, w, yShape, g);
        else LinearBackward<double>(dy, x, w, yShape, g);
    }

    private void LinearBackward<T>(ITensor dy, ITensor x, ITensor w, Shape yShape, LinearGradients g) where T : unmanaged, IFloatingPointIeee754<T> =>
        Kernels.Linear.Backward<T>(_gemm, _workers, _pool, Data<T>(dy), Data<T>(x), Data<T>(w), yShape[0], w.Shape[1], w.Shape[0],
            g.Dx is null ? default : Out<T>(g.Dx), Out<T>(g.Dw), Out<T>(g.Db));

    /// <summary>y = max(0, x); NaN stays NaN.</summary>
    public ITensor Relu(ITensor x)
    {
        OpChecks.Unary(this, x, "RELU");
        var y = x.DType == DType.Float32 ? Rent<float>(x.Shape) : Rent<double>(x.Shape);
        ReluInto(x, y);
        return y;
    }

    /// <summary>y = max(0, x) into <paramref name="destination"/>, which may be x (in place: elementwise, each element read before it is written).</summary>
    public void Relu(ITensor x, ITensor destination)
    {
        OpChecks.Unary(this, x, "RELU", destination);
        ReluInto(x, (ManagedTensor)destination);
    }

    private void ReluInto(ITensor x, ManagedTensor y)
    {
        if (x.DType == DType.Float32) ActivationJob<float>.Run(_workers, default, Data<float>(x), y.Span<float>());
        else ActivationJob<double>.Run(_workers, default, Data<double>(x), y.Span<double>());
    }

    /// <summary>dx = dy where x &gt; 0, else 0.</summary>
    public ITensor ReluBackward(ITensor dy, ITensor x)
    {
        OpChecks.UnaryBackward(this, dy, x, "RELU");
        var dx = x.DType == DType.Float32 ? Rent<float>(x.Shape) : Rent<double>(x.Shape);
        ReluBackwardInto(dy, x, dx);
        return dx;
    }

    /// <summary>dx = dy where x &gt; 0, else 0, into <paramref name="destination"/>, which may be dy (in place).</summary>
    public void ReluBackward(ITensor dy, ITensor x, ITensor destination)
    {
        OpChecks.UnaryBackward(this, dy, x, "RELU", destination);
        ReluBackwardInto(dy, x, (ManagedTensor)destination);
    }

    private void ReluBackwardInto(ITensor dy, ITensor x, ManagedTensor dx)
    {
        if (x.DType == DType.Float32) ActivationJob<float>.Run(_workers, Data<float>(dy), Data<float>(x), dx.Span<float>());
        else ActivationJob<double>.Run(_workers, Data<double>(dy), Data<double>(x), dx.Span<double>());
    }

    /// <summary>L = mean_n −log softmax(s_n)[y_n] (row max subtracted; accumulated in double); dS = (softmax(s) − onehot(y)) / N.</summary>
    public LossResult SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels)
    {
        OpChecks.Loss(this, scores, labels, "SOFTMAX");
        var ds = scores.DType == DType.Float32 ? Rent<float>(scores.Shape) : Rent<double>(scores.Shape);
        return new LossResult(SoftmaxInto(scores, labels, ds), ds);
    }

    /// <summary>As <see cref="SoftmaxCrossEntropy(ITensor, ReadOnlySpan{int})"/>, dS into <paramref name="dScores"/>; returns L.</summary>
    public double SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels, ITensor dScores)
    {
        OpChecks.Loss(this, scores, labels, "SOFTMAX", dScores);
        return SoftmaxInto(scores, labels, (ManagedTensor)dScores);
    }

    private static double SoftmaxInto(ITensor scores, ReadOnlySpan<int> labels, ManagedTensor ds) =>
        scores.DType == DType.Float32
            ? Losses.SoftmaxCrossEntropy<float>(Data<float>(scores), labels, scores.Shape[1], ds.Span<float>())
            : Losses.SoftmaxCrossEntropy<double>(Data<double>(scores), labels, scores.Shape[1], ds.Span<double>());

    /// <summary>L = mean_n Σ_{j≠y_n} max(0, s_j − s_{y_n} + 1); dS its subgradient / N.</summary>
    public LossResult MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels)
    {
        OpChecks.Loss(this, scores, labels, "SVM");
        var ds = scores.DType == DType.Float32 ? Rent<float>(scores.Shape) : Rent<double>(scores.Shape);
        return new LossResult(SvmInto(scores, labels, ds), ds);
    }

    /// <summary>As <see cref="MulticlassSvm(ITensor, ReadOnlySpan{int})"/>, dS into <paramref name="dScores"/>; returns L.</summary>
    public double MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels, ITensor dScores)
    {
        OpChecks.Loss(this, scores, labels, "SVM", dScores);
        return SvmInto(scores, labels, (ManagedTensor)dScores);
    }

    private static double SvmInto(ITensor scores, ReadOnlySpan<int> labels, ManagedTensor ds) =>
        scores.DType == DType.Float32
            ? Losses.MulticlassSvm<float>(Data<float>(scores), labels, scores.Shape[1], ds.Span<float>())
            : Losses.MulticlassSvm<double>(Data<double>(scores), labels, scores.Shape[1], ds.Span<double>());

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
    private static ReadOnlySpan<T> Data<T>(ITensor tensor) where T : unmanaged => ((ManagedTensor)tensor).Read<T>();

    private static Span<T> Out<T>(ITensor tensor) where T : unmanaged => ((ManagedTensor)tensor).Span<T>();
}
