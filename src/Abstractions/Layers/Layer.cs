namespace Lockstep.Layers;

/// <summary>
/// A layer on some backend: it holds its parameters as backend tensors, caches what backward needs, and calls
/// only <see cref="IBackend"/>. It never knows which backend runs it.
/// Ownership: Forward's result belongs to the caller; the layer keeps a reference to its input, which the caller
/// must keep alive until Backward. Backward's dx belongs to the caller; parameter gradients stay in <see cref="Parameters"/>.
/// The destination forms (<see cref="Forward(ITensor, ITensor)"/>, <see cref="Backward(ITensor, ITensor)"/>) write into
/// tensors the caller owns and keeps across steps, and the parameter gradients into tensors the parameters keep: a
/// training step in this form allocates nothing per op (what <see cref="Network"/> does).
/// </summary>
public abstract class Layer : IDisposable
{
    protected Layer(IBackend backend, string name)
    {
        ArgumentNullException.ThrowIfNull(backend);
        Backend = backend;
        Name = name;
    }

    public IBackend Backend { get; }
    public string Name { get; }

    /// <summary>The notes' layer type: CONV, POOL, FC, RELU.</summary>
    public abstract string Kind { get; }

    public virtual IReadOnlyList<Parameter> Parameters => [];

    public abstract ITensor Forward(ITensor x);

    /// <summary>Forward into <paramref name="y"/> (the caller's, of the output's shape); the caller keeps x and y alive until Backward.</summary>
    public abstract void Forward(ITensor x, ITensor y);

    /// <summary>Gradients of the parameters (stored in <see cref="Parameters"/>) and, when asked for, dx.</summary>
    public abstract ITensor? Backward(ITensor dy, bool needDx);

    /// <summary>
    /// Gradients of the parameters, into the gradient tensors the parameters keep across steps, and dx into
    /// <paramref name="dx"/> (the caller's, of x's shape) unless it is null.
    /// </summary>
    public abstract void Backward(ITensor dy, ITensor? dx);

    protected ITensor Input() =>
        _input ?? throw new InvalidOperationException($"{Name}: backward before forward; call Forward first");

    private ITensor? _input;

    protected void Remember(ITensor x) => _input = x;

    public override string ToString() => $"{Name} ({Kind})";

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (!disposing) return;
        foreach (var p in Parameters) p.Dispose();
    }
}
