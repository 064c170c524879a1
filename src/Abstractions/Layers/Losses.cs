namespace Lockstep.Layers;

/// <summary>A loss on top of the class scores [N, classes].</summary>
public interface ILoss
{
    string Name { get; }
    LossResult Compute(IBackend backend, ITensor scores, ReadOnlySpan<int> labels);

    /// <summary>The loss, with its gradient written into <paramref name="dScores"/> (the caller's, of the scores' shape).</summary>
    double Compute(IBackend backend, ITensor scores, ReadOnlySpan<int> labels, ITensor dScores)
    {
        ArgumentNullException.ThrowIfNull(backend);
        using var result = Compute(backend, scores, labels);
        backend.Copy(result.DScores, dScores);
        return result.Loss;
    }
}

/// <summary>Softmax cross-entropy: L = mean_n −log softmax(s_n)[y_n].</summary>
public sealed class SoftmaxCrossEntropy : ILoss
{
    public string Name => "softmax";

    public LossResult Compute(IBackend backend, ITensor scores, ReadOnlySpan<int> labels)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return backend.SoftmaxCrossEntropy(scores, labels);
    }

    public double Compute(IBackend backend, ITensor scores, ReadOnlySpan<int> labels, ITensor dScores)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return backend.SoftmaxCrossEntropy(scores, labels, dScores);
    }
}

/// <summary>The notes' multiclass SVM: L = mean_n Σ_{j≠y} max(0, s_j − s_y + 1).</summary>
public sealed class MulticlassSvm : ILoss
{
    public string Name => "svm";

    public LossResult Compute(IBackend backend, ITensor scores, ReadOnlySpan<int> labels)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return backend.MulticlassSvm(scores, labels);
    }

    public double Compute(IBackend backend, ITensor scores, ReadOnlySpan<int> labels, ITensor dScores)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return backend.MulticlassSvm(scores, labels, dScores);
    }
}
