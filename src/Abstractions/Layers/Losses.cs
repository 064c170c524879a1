namespace Lockstep.Layers;

/// <summary>A loss on top of the class scores [N, classes].</summary>
public interface ILoss
{
    string Name { get; }
    LossResult Compute(IBackend backend, ITensor scores, ReadOnlySpan<int> labels);
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
}
