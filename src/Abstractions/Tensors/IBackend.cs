namespace Lockstep;

/// <summary>
/// The primitive operations a compute backend provides, each with an explicit backward.
/// Shapes: N batch, C input channels, H×W input size, K filters, F_h×F_w kernel, H'×W' output size.
/// Every op validates its arguments through <see cref="OpChecks"/> before touching data.
/// Results are new tensors owned by the caller. Each op also has a destination overload (TensorPrimitives'
/// <c>destination</c>, PyTorch's <c>out=</c>) that overwrites caller-owned tensors of this backend, of the op's dtype and
/// output shape, and of none of its inputs (RELU alone may run in place): a training step that keeps its tensors
/// allocates nothing per op. Their default implementations run the allocating op and <see cref="Copy"/> its result over,
/// so a backend that implements only the allocating ops still gets them; a backend overrides them to write directly.
/// (Upload has a destination form too: host data into an existing tensor.)
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>The registry name ("managed", "torch"), qualified by the device where it is not the CPU ("torch:cuda").</summary>
    string Name { get; }

    /// <summary>What runs, for reports: e.g. "managed (gemm: mkl 2020.4, 2 threads)".</summary>
    string Description { get; }

    /// <summary>Copies host data (float, double or long) into a new tensor of this backend.</summary>
    ITensor Upload<T>(ReadOnlySpan<T> data, Shape shape) where T : unmanaged;

    /// <summary>Copies host data into <paramref name="destination"/> (of <typeparamref name="T"/>'s dtype, as many elements).</summary>
    void Upload<T>(ReadOnlySpan<T> data, ITensor destination) where T : unmanaged
    {
        OpChecks.Upload<T>(this, data.Length, destination);
        using var t = Upload(data, destination.Shape);
        Copy(t, destination);
    }

    /// <summary>Copies a tensor's data to the host; <typeparamref name="T"/> must match its dtype.</summary>
    void Download<T>(ITensor tensor, Span<T> destination) where T : unmanaged;

    /// <summary>A new tensor of zeros.</summary>
    ITensor Zeros(Shape shape, DType dtype);

    /// <summary>destination = source (both of this backend, same shape and dtype; Int64 included).</summary>
    void Copy(ITensor source, ITensor destination);

    /// <summary>y[n,k] = b[k] + Σ_c w[k,c] ⋆ x[n,c]  (cross-correlation; x [N,C,H,W], w [K,C,F_h,F_w], b [K] → y [N,K,H',W']).</summary>
    ITensor Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec);

    /// <summary>Conv2d into <paramref name="destination"/> [N,K,H',W'].</summary>
    void Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec, ITensor destination)
    {
        OpChecks.Conv2d(this, x, w, b, spec, destination);
        using var y = Conv2d(x, w, b, spec);
        Copy(y, destination);
    }

    /// <summary>dx = convᵀ(dy, w) (when <paramref name="needDx"/>), dw = dy ⋆ x, db = Σ_{n,h,w} dy.</summary>
    ConvGradients Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx);

    /// <summary>Conv2dBackward into <paramref name="destination"/>'s tensors; no dx is computed when its Dx is null.</summary>
    void Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, ConvGradients destination)
    {
        OpChecks.Conv2dBackward(this, dy, x, w, spec, destination);
        using var g = Conv2dBackward(dy, x, w, spec, destination.Dx is not null);
        if (destination.Dx is not null) Copy(g.Dx!, destination.Dx);
        Copy(g.Dw, destination.Dw);
        Copy(g.Db, destination.Db);
    }

    /// <summary>y = pool over each F_h×F_w window (max, average or L2); max records its switches.</summary>
    PoolResult Pool2d(ITensor x, PoolSpec spec);

    /// <summary>Pool2d into <paramref name="destination"/>: Y, and Switches for max pooling (null for average and L2).</summary>
    void Pool2d(ITensor x, PoolSpec spec, PoolResult destination)
    {
        OpChecks.Pool2d(this, x, spec, destination);
        using var r = Pool2d(x, spec);
        Copy(r.Y, destination.Y);
        if (r.Switches is not null) Copy(r.Switches, destination.Switches!);
    }

    /// <summary>dx: dy routed through the switches (max), spread evenly (average), or dy·x/y (L2).</summary>
    ITensor Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec);

    /// <summary>Pool2dBackward into <paramref name="destination"/> (x's shape).</summary>
    void Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec, ITensor destination)
    {
        OpChecks.Pool2dBackward(this, dy, x, forward, spec, destination);
        using var dx = Pool2dBackward(dy, x, forward, spec);
        Copy(dx, destination);
    }

    /// <summary>y = x·Wᵀ + b  (x [N, in] or [N, C, H, W] flattened to in = C·H·W; w [out, in]; b [out] → y [N, out]).</summary>
    ITensor Linear(ITensor x, ITensor w, ITensor? b);

    /// <summary>Linear into <paramref name="destination"/> [N, out].</summary>
    void Linear(ITensor x, ITensor w, ITensor? b, ITensor destination)
    {
        OpChecks.Linear(this, x, w, b, destination);
        using var y = Linear(x, w, b);
        Copy(y, destination);
    }

    /// <summary>dx = dy·W (in x's shape, when <paramref name="needDx"/>), dw = dyᵀ·x, db = Σ_n dy.</summary>
    LinearGradients LinearBackward(ITensor dy, ITensor x, ITensor w, bool needDx);

    /// <summary>LinearBackward into <paramref name="destination"/>'s tensors; no dx is computed when its Dx is null.</summary>
    void LinearBackward(ITensor dy, ITensor x, ITensor w, LinearGradients destination)
    {
        OpChecks.LinearBackward(this, dy, x, w, destination);
        using var g = LinearBackward(dy, x, w, destination.Dx is not null);
        if (destination.Dx is not null) Copy(g.Dx!, destination.Dx);
        Copy(g.Dw, destination.Dw);
        Copy(g.Db, destination.Db);
    }

    /// <summary>y = max(0, x); NaN stays NaN.</summary>
    ITensor Relu(ITensor x);

    /// <summary>Relu into <paramref name="destination"/> (x's shape); <paramref name="destination"/> may be x itself (in place).</summary>
    void Relu(ITensor x, ITensor destination)
    {
        OpChecks.Unary(this, x, "RELU", destination);
        using var y = Relu(x);
        Copy(y, destination);
    }

    /// <summary>dx = dy where x &gt; 0, else 0.</summary>
    ITensor ReluBackward(ITensor dy, ITensor x);

    /// <summary>ReluBackward into <paramref name="destination"/> (x's shape); <paramref name="destination"/> may be dy itself (in place).</summary>
    void ReluBackward(ITensor dy, ITensor x, ITensor destination)
    {
        OpChecks.UnaryBackward(this, dy, x, "RELU", destination);
        using var dx = ReluBackward(dy, x);
        Copy(dx, destination);
    }

    /// <summary>L = mean_n −log softmax(s_n)[y_n] (stable: the row max subtracted); dS = (softmax(s) − onehot(y)) / N.</summary>
    LossResult SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels);

    /// <summary>SoftmaxCrossEntropy with dS written into <paramref name="dScores"/> (scores' shape); returns L.</summary>
    double SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels, ITensor dScores)
    {
        OpChecks.Loss(this, scores, labels, "SOFTMAX", dScores);
        using var r = SoftmaxCrossEntropy(scores, labels);
        Copy(r.DScores, dScores);
        return r.Loss;
    }

    /// <summary>L = mean_n Σ_{j≠y_n} max(0, s_j − s_{y_n} + 1) (the notes' multiclass SVM); dS its subgradient / N.</summary>
    LossResult MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels);

    /// <summary>MulticlassSvm with dS written into <paramref name="dScores"/> (scores' shape); returns L.</summary>
    double MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels, ITensor dScores)
    {
        OpChecks.Loss(this, scores, labels, "SVM", dScores);
        using var r = MulticlassSvm(scores, labels);
        Copy(r.DScores, dScores);
        return r.Loss;
    }

    /// <summary>In place: v = momentum·v − lr·(g + weightDecay·p); p = p + v.</summary>
    void SgdStep(ITensor param, ITensor grad, ITensor velocity, double learningRate, double momentum, double weightDecay);

    /// <summary>Waits until queued work is finished (a no-op on synchronous devices).</summary>
    void Synchronize();
}

/// <summary>
/// Gradients of a convolution: dx (null when not asked for) [N,C,H,W], dw [K,C,F_h,F_w], db [K]. As a destination,
/// three caller-owned tensors (Dx null: no dx computed); dispose them through the record or one by one.
/// </summary>
public sealed record ConvGradients(ITensor? Dx, ITensor Dw, ITensor Db) : IDisposable
{
    public void Dispose()
    {
        Dx?.Dispose();
        Dw.Dispose();
        Db.Dispose();
    }
}

/// <summary>
/// Gradients of a linear layer: dx (null when not asked for) in x's shape, dw [out, in], db [out]. As a destination,
/// caller-owned tensors (Dx null: no dx computed).
/// </summary>
public sealed record LinearGradients(ITensor? Dx, ITensor Dw, ITensor Db) : IDisposable
{
    public void Dispose()
    {
        Dx?.Dispose();
        Dw.Dispose();
        Db.Dispose();
    }
}

/// <summary>
/// A pooling result: y [N,C,H',W'] and, for max pooling, the switches [N,C,H',W'] (Int64): for each output,
/// the index h·W + w of the chosen element within its input plane (libtorch's convention). The first maximum in
/// row-major window order wins; a NaN in the window wins over any number. As a destination, caller-owned tensors:
/// Switches an Int64 tensor of Y's shape for max pooling, null for average and L2 pooling.
/// </summary>
public sealed record PoolResult(ITensor Y, ITensor? Switches) : IDisposable
{
    public void Dispose()
    {
        Y.Dispose();
        Switches?.Dispose();
    }
}

/// <summary>A loss value (mean over the batch) and its gradient with respect to the scores [N, classes].</summary>
public sealed record LossResult(double Loss, ITensor DScores) : IDisposable
{
    public void Dispose() => DScores.Dispose();
}
