namespace Lockstep.Layers;

/// <summary>
/// A sequential network on one backend, with a loss on top. Not thread-safe: one network, one thread at a time.
/// The network owns every activation it makes; they live until the next <see cref="Forward"/> or <see cref="Dispose"/>.
/// </summary>
public sealed class Network : IDisposable
{
    private readonly List<ITensor> _activations = [];
    private LossResult? _loss;
    private int _owner;   // the managed thread id of the caller inside the network, 0 when idle
    private int _depth;

    internal Network(NetworkDefinition definition, IBackend backend, DType dtype, IReadOnlyList<Layer> layers, ILoss loss)
    {
        Definition = definition;
        Backend = backend;
        DType = dtype;
        Layers = layers;
        Loss = loss;
        Parameters = layers.SelectMany(l => l.Parameters).ToArray();
    }

    public NetworkDefinition Definition { get; }
    public IBackend Backend { get; }
    public DType DType { get; }
    public IReadOnlyList<Layer> Layers { get; }
    public IReadOnlyList<Parameter> Parameters { get; }
    public ILoss Loss { get; }

    /// <summary>
    /// Class scores [N, classes] for x [N, C, H, W] (a grid [N, classes, H', W'] when the network ends in a CONV
    /// layer, e.g. after <see cref="ConvertFcToConv"/>); owned by the network.
    /// </summary>
    public ITensor Forward(ITensor x)
    {
        using var use = Enter("Forward");
        ArgumentNullException.ThrowIfNull(x);
        var expected = Definition.InputShape(x.Shape.Rank == 4 ? x.Shape.N : 0);
        if (x.Shape != expected)
        {
            throw new ArgumentException($"{Definition.Name}: input: expected {expected} ([N, C, H, W] with C×H×W from the definition), got {x.Shape}");
        }
        ReleaseActivations();
        var h = x;
        foreach (var layer in Layers)
        {
            h = layer.Forward(h);
            _activations.Add(h);
        }
        return h;
    }

    /// <summary>The loss of the last forward's scores against <paramref name="labels"/>; keeps dScores for <see cref="Backward"/>.</summary>
    public double ComputeLoss(ReadOnlySpan<int> labels)
    {
        using var use = Enter("ComputeLoss");
        if (_activations.Count == 0) throw new InvalidOperationException($"{Definition.Name}: compute the loss after a forward pass");
        _loss?.Dispose();
        _loss = Loss.Compute(Backend, _activations[^1], labels);
        return _loss.Loss;
    }

    /// <summary>Backpropagates the last loss; every parameter's Grad is set.</summary>
    public void Backward()
    {
        if (_loss is null) throw new InvalidOperationException($"{Definition.Name}: backward needs a loss; call ComputeLoss after Forward");
        Backward(_loss.DScores);
    }

    /// <summary>Backpropagates a given gradient of the scores (not disposed here).</summary>
    public void Backward(ITensor dScores)
    {
        using var use = Enter("Backward");
        ArgumentNullException.ThrowIfNull(dScores);
        var dy = dScores;
        for (int i = Layers.Count - 1; i >= 0; i--)
        {
            var dx = Layers[i].Backward(dy, needDx: i > 0);
            if (!ReferenceEquals(dy, dScores)) dy.Dispose();
            if (dx is null) break;
            dy = dx;
        }
    }

    /// <summary>One SGD-with-momentum step on every parameter.</summary>
    public void Step(double learningRate, double momentum = 0.9, double weightDecay = 0)
    {
        using var use = Enter("Step");
        foreach (var p in Parameters) p.Step(learningRate, momentum, weightDecay);
    }

    /// <summary>Forward, loss, backward and an SGD step; returns the loss.</summary>
    public double TrainStep(ITensor x, ReadOnlySpan<int> labels, double learningRate, double momentum = 0.9, double weightDecay = 0)
    {
        using var use = Enter("TrainStep");
        Forward(x);
        double loss = ComputeLoss(labels);
        Backward();
        Step(learningRate, momentum, weightDecay);
        return loss;
    }

    /// <summary>Copies every parameter value from <paramref name="other"/> (any backend, same definition) through the host.</summary>
    public void CopyParametersFrom(Network other)
    {
        using var use = Enter("CopyParametersFrom");
        ArgumentNullException.ThrowIfNull(other);
        if (other.Parameters.Count != Parameters.Count)
        {
            throw new ArgumentException($"{Definition.Name}: cannot copy parameters from {other.Definition.Name}: {other.Parameters.Count} parameters, expected {Parameters.Count}");
        }
        for (int i = 0; i < Parameters.Count; i++)
        {
            if (other.Parameters[i].Shape != Parameters[i].Shape)
            {
                throw new ArgumentException($"{Parameters[i].Name}: expected {Parameters[i].Shape}, the source has {other.Parameters[i].Shape}");
            }
            Parameters[i].Load(other.Parameters[i].Value.ToDoubles());
        }
    }

    /// <summary>
    /// The notes' FC→CONV conversion on this network's backend and dtype: FC layers become CONV layers with the same
    /// numbers (weights [out, C·H·W] read as [out, C, H, W]; see <see cref="NetworkDefinition.ConvertFcToConv"/>), on
    /// an input of <paramref name="height"/>×<paramref name="width"/> (default: this network's). Its output is a grid of
    /// class scores [N, classes, H', W']: the original network's scores on every crop at the network's total stride
    /// (exactly so when the CONV layers do not pad: a padded crop sees zeros where the larger image has pixels).
    /// For inference: the loss takes [N, classes].
    /// </summary>
    public Network ConvertFcToConv(int? height = null, int? width = null)
    {
        var definition = Definition.ConvertFcToConv(height, width);
        var converted = definition.Build(Backend, DType, seed: 0, Loss);
        try
        {
            for (int i = 0; i < Parameters.Count; i++) converted.Parameters[i].Load(Parameters[i].Value.ToDoubles());
        }
        catch
        {
            converted.Dispose();
            throw;
        }
        return converted;
    }

    /// <summary>
    /// Marks the network in use by the calling thread. A second thread that calls in meanwhile gets a clear error
    /// instead of corrupting the cached activations; nested calls from the same thread (TrainStep → Forward) pass.
    /// </summary>
    private Use Enter(string op)
    {
        int me = Environment.CurrentManagedThreadId;
        int owner = Interlocked.CompareExchange(ref _owner, me, 0);
        if (owner != 0 && owner != me)
        {
            throw new InvalidOperationException(
                $"{Definition.Name}: {op} was called on thread {me} while thread {owner} is using this network; " +
                "a Network is not thread-safe: build one network per thread (networks may share a backend)");
        }
        _depth++;
        return new Use(this);
    }

    private readonly struct Use(Network network) : IDisposable
    {
        public void Dispose()
        {
            if (--network._depth == 0) Volatile.Write(ref network._owner, 0);
        }
    }

    private void ReleaseActivations()
    {
        foreach (var a in _activations) a.Dispose();
        _activations.Clear();
        _loss?.Dispose();
        _loss = null;
    }

    public void Dispose()
    {
        ReleaseActivations();
        foreach (var layer in Layers) layer.Dispose();
    }
}
