namespace Lockstep.Tests;

/// <summary>
/// A deliberately broken backend: <paramref name="inner"/> in every op, except that the convolution's weight
/// gradient dw has <see cref="Perturbation"/> added to its first element. The conformance kit must catch it.
/// </summary>
internal sealed class PerturbedBackend(IBackend inner) : IBackend
{
    public const double Perturbation = 1e-3;

    public string Name => $"broken({inner.Name})";
    public string Description => $"{inner.Description}, dw[0] + {Perturbation}";

    public ConvGradients Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx)
    {
        var g = inner.Conv2dBackward(dy, x, w, spec, needDx);
        var dw = g.Dw.ToDoubles();
        dw[0] += Perturbation;
        var perturbed = inner.Upload(dw, g.Dw.Shape, g.Dw.DType);
        g.Dw.Dispose();
        return g with { Dw = perturbed };
    }

    public ITensor Upload<T>(ReadOnlySpan<T> data, Shape shape) where T : unmanaged => inner.Upload(data, shape);
    public void Download<T>(ITensor tensor, Span<T> destination) where T : unmanaged => inner.Download(tensor, destination);
    public ITensor Zeros(Shape shape, DType dtype) => inner.Zeros(shape, dtype);
    public void Copy(ITensor source, ITensor destination) => inner.Copy(source, destination);
    public ITensor Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec) => inner.Conv2d(x, w, b, spec);
    public PoolResult Pool2d(ITensor x, PoolSpec spec) => inner.Pool2d(x, spec);
    public ITensor Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec) => inner.Pool2dBackward(dy, x, forward, spec);
    public ITensor Linear(ITensor x, ITensor w, ITensor? b) => inner.Linear(x, w, b);
    public LinearGradients LinearBackward(ITensor dy, ITensor x, ITensor w, bool needDx) => inner.LinearBackward(dy, x, w, needDx);
    public ITensor Relu(ITensor x) => inner.Relu(x);
    public ITensor ReluBackward(ITensor dy, ITensor x) => inner.ReluBackward(dy, x);
    public LossResult SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels) => inner.SoftmaxCrossEntropy(scores, labels);
    public LossResult MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels) => inner.MulticlassSvm(scores, labels);

    public void SgdStep(ITensor param, ITensor grad, ITensor velocity, double learningRate, double momentum, double weightDecay) =>
        inner.SgdStep(param, grad, velocity, learningRate, momentum, weightDecay);

    public void Synchronize() => inner.Synchronize();
    public void Dispose() => inner.Dispose();
}
