namespace Lockstep;

/// <summary>
/// The primitive operations a compute backend provides, each with an explicit backward.
/// Shapes: N batch, C input channels, H×W input size, K filters, F_h×F_w kernel, H'×W' output size.
/// Every op validates its arguments through <see cref="OpChecks"/> before touching data.
/// Results are new tensors owned by the caller.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>The registry name ("managed", "torch"), qualified by the device where it is not the CPU ("torch:cuda").</summary>
    string Name { get; }

    /// <summary>What runs, for reports: e.g. "managed (gemm: mkl 2020.4, 2 threads)".</summary>
    string Description { get; }

    /// <summary>Copies host data (float, double or long) into a new tensor of this backend.</summary>
    ITensor Upload<T>(ReadOnlySpan<T> data, Shape shape) where T : unmanaged;

    /// <summary>Copies a tensor's data to the host; <typeparamref name="T"/> must match its dtype.</summary>
    void Download<T>(ITensor tensor, Span<T> destination) where T : unmanaged;

    /// <summary>A new tensor of zeros.</summary>
    ITensor Zeros(Shape shape, DType dtype);

    /// <summary>y[n,k] = b[k] + Σ_c w[k,c] ⋆ x[n,c]  (cross-correlation; x [N,C,H,W], w [K,C,F_h,F_w], b [K] → y [N,K,H',W']).</summary>
    ITensor Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec);

    /// <summary>dx = convᵀ(dy, w) (when <paramref name="needDx"/>), dw = dy ⋆ x, db = Σ_{n,h,w} dy.</summary>
    ConvGradients Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx);

    /// <summary>y = pool over each F_h×F_w window (max, average or L2); max records its switches.</summary>
    PoolResult Pool2d(ITensor x, PoolSpec spec);

    /// <summary>dx: dy routed through the switches (max), spread evenly (average), or dy·x/y (L2).</summary>
    ITensor Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec);

    /// <summary>y = x·Wᵀ + b  (x [N, in] or [N, C, H, W] flattened to in = C·H·W; w [out, in]; b [out] → y [N, out]).</summary>
    ITensor Linear(ITensor x, ITensor w, ITensor? b);

    /// <summary>dx = dy·W (in x's shape, when <paramref name="needDx"/>), dw = dyᵀ·x, db = Σ_n dy.</summary>
    LinearGradients LinearBackward(ITensor dy, ITensor x, ITensor w, bool needDx);

    /// <summary>y = max(0, x); NaN stays NaN.</summary>
    ITensor Relu(ITensor x);

    /// <summary>dx = dy where x &gt; 0, else 0.</summary>
    ITensor ReluBackward(ITensor dy, ITensor x);

    /// <summary>L = mean_n −log softmax(s_n)[y_n] (stable: the row max subtracted); dS = (softmax(s) − onehot(y)) / N.</summary>
    LossResult SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels);

    /// <summary>L = mean_n Σ_{j≠y_n} max(0, s_j − s_{y_n} + 1) (the notes' multiclass SVM); dS its subgradient / N.</summary>
    LossResult MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels);

    /// <summary>In place: v = momentum·v − lr·(g + weightDecay·p); p = p + v.</summary>
    void SgdStep(ITensor param, ITensor grad, ITensor velocity, double learningRate, double momentum, double weightDecay);

    /// <summary>Waits until queued work is finished (a no-op on synchronous devices).</summary>
    void Synchronize();
}

/// <summary>Gradients of a convolution: dx (null when not asked for) [N,C,H,W], dw [K,C,F_h,F_w], db [K].</summary>
public sealed record ConvGradients(ITensor? Dx, ITensor Dw, ITensor Db) : IDisposable
{
    public void Dispose()
    {
        Dx?.Dispose();
        Dw.Dispose();
        Db.Dispose();
    }
}

/// <summary>Gradients of a linear layer: dx (null when not asked for) in x's shape, dw [out, in], db [out].</summary>
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
/// row-major window order wins; a NaN in the window wins over any number.
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
