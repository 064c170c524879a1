namespace Lockstep.Layers;

/// <summary>
/// A layer on some backend: it holds its parameters as backend tensors, caches what backward needs, and calls
/// only <see cref="IBackend"/>. It never knows which backend runs it.
/// Ownership: Forward's result belongs to the caller; the layer keeps a reference to its input, which the caller
/// must keep alive until Backward. Backward's dx belongs to the caller; parameter gradients stay in <see cref="Parameters"/>.
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

    /// <summary>Gradients of the parameters (stored in <see cref="Parameters"/>) and, when asked for, dx.</summary>
    public abstract ITensor? Backward(ITensor dy, bool needDx);

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
