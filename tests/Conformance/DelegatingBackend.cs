namespace Lockstep.Conformance;

/// <summary>
/// A backend that forwards every op to another; override an op to observe or disturb it in a test
/// (a backend that blocks, fails or perturbs one result). Tensors stay the inner backend's. The destination overloads
/// forward to the inner backend's own (a network's training step uses them): override those to reach a step.
/// </summary>
public abstract class DelegatingBackend(IBackend inner) : IBackend
{
    protected IBackend Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    public virtual string Name => Inner.Name;
    public virtual string Description => Inner.Description;
    public virtual ITensor Upload<T>(ReadOnlySpan<T> data, Shape shape) where T : unmanaged => Inner.Upload(data, shape);
    public virtual void Upload<T>(ReadOnlySpan<T> data, ITensor destination) where T : unmanaged => Inner.Upload(data, destination);
    public virtual void Download<T>(ITensor tensor, Span<T> destination) where T : unmanaged => Inner.Download(tensor, destination);
    public virtual ITensor Zeros(Shape shape, DType dtype) => Inner.Zeros(shape, dtype);
    public virtual void Copy(ITensor source, ITensor destination) => Inner.Copy(source, destination);
    public virtual ITensor Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec) => Inner.Conv2d(x, w, b, spec);
    public virtual void Conv2d(ITensor x, ITensor w, ITensor? b, ConvSpec spec, ITensor destination) => Inner.Conv2d(x, w, b, spec, destination);
    public virtual ConvGradients Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, bool needDx) => Inner.Conv2dBackward(dy, x, w, spec, needDx);
    public virtual void Conv2dBackward(ITensor dy, ITensor x, ITensor w, ConvSpec spec, ConvGradients destination) =>
        Inner.Conv2dBackward(dy, x, w, spec, destination);
    public virtual PoolResult Pool2d(ITensor x, PoolSpec spec) => Inner.Pool2d(x, spec);
    public virtual void Pool2d(ITensor x, PoolSpec spec, PoolResult destination) => Inner.Pool2d(x, spec, destination);
    public virtual ITensor Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec) => Inner.Pool2dBackward(dy, x, forward, spec);
    public virtual void Pool2dBackward(ITensor dy, ITensor x, PoolResult forward, PoolSpec spec, ITensor destination) =>
        Inner.Pool2dBackward(dy, x, forward, spec, destination);
    public virtual ITensor Linear(ITensor x, ITensor w, ITensor? b) => Inner.Linear(x, w, b);
    public virtual void Linear(ITensor x, ITensor w, ITensor? b, ITensor destination) => Inner.Linear(x, w, b, destination);
    public virtual LinearGradients LinearBackward(ITensor dy, ITensor x, ITensor w, bool needDx) => Inner.LinearBackward(dy, x, w, needDx);
    public virtual void LinearBackward(ITensor dy, ITensor x, ITensor w, LinearGradients destination) => Inner.LinearBackward(dy, x, w, destination);
    public virtual ITensor Relu(ITensor x) => Inner.Relu(x);
    public virtual void Relu(ITensor x, ITensor destination) => Inner.Relu(x, destination);
    public virtual ITensor ReluBackward(ITensor dy, ITensor x) => Inner.ReluBackward(dy, x);
    public virtual void ReluBackward(ITensor dy, ITensor x, ITensor destination) => Inner.ReluBackward(dy, x, destination);
    public virtual LossResult SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels) => Inner.SoftmaxCrossEntropy(scores, labels);
    public virtual double SoftmaxCrossEntropy(ITensor scores, ReadOnlySpan<int> labels, ITensor dScores) => Inner.SoftmaxCrossEntropy(scores, labels, dScores);
    public virtual LossResult MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels) => Inner.MulticlassSvm(scores, labels);
    public virtual double MulticlassSvm(ITensor scores, ReadOnlySpan<int> labels, ITensor dScores) => Inner.MulticlassSvm(scores, labels, dScores);
    public virtual void SgdStep(ITensor param, ITensor grad, ITensor velocity, double learningRate, double momentum, double weightDecay) =>
        Inner.SgdStep(param, grad, velocity, learningRate, momentum, weightDecay);
    public virtual void Synchronize() => Inner.Synchronize();

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Inner.Dispose();
    }
}
