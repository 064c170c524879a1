namespace Lockstep.Layers;

/// <summary>
/// A sequential network on one backend, with a loss on top. Not thread-safe: one network, one thread at a time.
/// The network owns every tensor a step uses — each layer's output, the gradients flowing between layers, dScores —
/// and keeps them across steps: they are made for a batch shape (on the first <see cref="Forward"/>, again when the
/// input's shape changes) and overwritten by every step through the backend's destination ops, so that a training
/// step on a backend that implements those natively (managed) allocates nothing on the GC heap once warm.
/// They are released with the network (<see cref="Dispose"/>) or when the batch shape changes.
/// </summary>
public sealed class Network : IDisposable
{
    private Shape? _inputShape;          // the input shape the buffers below are made for
    private ITensor[] _outputs = [];     // layer i's output, [batch shape of layer i]
    private ITensor?[] _gradients = [];  // the gradient of layer i's output (i < last), made on the first backward
    private readonly List<ITensor> _owned = [];
    private ITensor? _dScores;
    private bool _forwarded;
    private bool _hasLoss;
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
    /// layer, e.g. after <see cref="ConvertFcToConv"/>); owned by the network and overwritten by the next forward.
    /// </summary>
    public ITensor Forward(ITensor x)
    {
        using var use = Enter("Forward");
        ArgumentNullException.ThrowIfNull(x);
        if (x.DType != DType) throw new ArgumentException($"{Definition.Name}: input: expected {DType}, got {x.DType}");
        if (x.Shape != _inputShape) Prepare(x.Shape);
        _forwarded = _hasLoss = false;
        var h = x;
        for (int i = 0; i < Layers.Count; i++)
        {
            Layers[i].Forward(h, _outputs[i]);
            h = _outputs[i];
        }
        _forwarded = true;
        return h;
    }

    /// <summary>Checks the input shape and makes each layer's output for it (the gradients follow on the first backward).</summary>
    private void Prepare(Shape input)
    {
        var expected = Definition.InputShape(input.Rank == 4 ? input.N : 0);
        if (input != expected)
        {
            throw new ArgumentException($"{Definition.Name}: input: expected {expected} ([N, C, H, W] with C×H×W from the definition), got {input}");
        }
        ReleaseBuffers();
        var shapes = Definition.Shapes(input.N);
        _outputs = new ITensor[shapes.Count];
        for (int i = 0; i < shapes.Count; i++) _outputs[i] = Own(Backend.Zeros(shapes[i], DType));
        _gradients = new ITensor?[shapes.Count];
        _inputShape = input;
    }

    /// <summary>
    /// The gradients between layers: the gradient of layer i's output is needed only by layer i's backward, so outputs
    /// of one shape share a tensor, alternating by position so that a layer never reads and writes the same one.
    /// </summary>
    private void PrepareGradients()
    {
        if (_gradients.Length == 0 || _gradients[0] is not null || _gradients.Length == 1) return;
        var shared = new Dictionary<(Shape, int), ITensor>();
        for (int i = 0; i < _outputs.Length - 1; i++)
        {
            var key = (_outputs[i].Shape, i % 2);
            if (!shared.TryGetValue(key, out var gradient)) shared[key] = gradient = Own(Backend.Zeros(_outputs[i].Shape, DType));
            _gradients[i] = gradient;
        }
    }

    private ITensor Own(ITensor tensor)
    {
        _owned.Add(tensor);
        return tensor;
    }

    /// <summary>The loss of the last forward's scores against <paramref name="labels"/>; keeps dScores for <see cref="Backward()"/>.</summary>
    public double ComputeLoss(ReadOnlySpan<int> labels)
    {
        using var use = Enter("ComputeLoss");
        if (!_forwarded) throw new InvalidOperationException($"{Definition.Name}: compute the loss after a forward pass");
        var scores = _outputs[^1];
        _dScores ??= Own(Backend.Zeros(scores.Shape, DType));
        _hasLoss = false;
        double loss = Loss.Compute(Backend, scores, labels, _dScores);
        _hasLoss = true;
        return loss;
    }

    /// <summary>Backpropagates the last loss; every parameter's Grad is set.</summary>
    public void Backward()
    {
        if (!_hasLoss) throw new InvalidOperationException($"{Definition.Name}: backward needs a loss; call ComputeLoss after Forward");
        Backward(_dScores!);
    }

    /// <summary>Backpropagates a given gradient of the scores (not disposed here) through the last forward.</summary>
    public void Backward(ITensor dScores)
    {
        using var use = Enter("Backward");
        ArgumentNullException.ThrowIfNull(dScores);
        if (!_forwarded) throw new InvalidOperationException($"{Definition.Name}: backward before forward; call Forward first");
        PrepareGradients();
        var dy = dScores;
        for (int i = Layers.Count - 1; i >= 0; i--)
        {
            var dx = i > 0 ? _gradients[i - 1] : null;
            Layers[i].Backward(dy, dx);
            if (dx is null) break;
            dy = dx;
        }
    }

    /// <summary>One SGD-with-momentum step on every parameter.</summary>
    public void Step(double learningRate, double momentum = 0.9, double weightDecay = 0)
    {
        using var use = Enter("Step");
        for (int i = 0; i < Parameters.Count; i++) Parameters[i].Step(learningRate, momentum, weightDecay);
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

    private void ReleaseBuffers()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        _outputs = [];
        _gradients = [];
        _dScores = null;
        _inputShape = null;
        _forwarded = _hasLoss = false;
    }

    public void Dispose()
    {
        ReleaseBuffers();
        foreach (var layer in Layers) layer.Dispose();
    }
}
