namespace Lockstep.Backends.Managed.Tensors;

/// <summary>
/// A tensor of the managed backend: a host array (float[], double[], or long[] for max-pool switches) of exactly
/// Shape.Count elements, rented from the backend's <see cref="BufferPool"/> and given back on Dispose.
/// </summary>
internal sealed class ManagedTensor : ITensor
{
    private readonly BufferPool _pool;
    private Array? _data;

    private ManagedTensor(ManagedBackend backend, BufferPool pool, Array data, Shape shape, DType dtype)
    {
        Backend = backend;
        _pool = pool;
        _data = data;
        Shape = shape;
        DType = dtype;
    }

    /// <summary>A tensor over a pooled array (its contents as given: cleared or to be fully written).</summary>
    public static ManagedTensor Rent<T>(ManagedBackend backend, BufferPool pool, Shape shape, bool clear) where T : unmanaged =>
        new(backend, pool, pool.Rent<T>(checked((int)shape.Count), clear), shape, DTypes.Of<T>());

    public Shape Shape { get; }
    public DType DType { get; }
    public IBackend Backend { get; }
    public bool IsDisposed => _data is null;

    public int Length => checked((int)Shape.Count);

    /// <summary>The data; <typeparamref name="T"/> must be the tensor's element type.</summary>
    public Span<T> Span<T>() where T : unmanaged => Array<T>();

    public T[] Array<T>() where T : unmanaged =>
        _data switch
        {
            null => throw new ObjectDisposedException(nameof(ManagedTensor), $"tensor {Shape} was disposed"),
            T[] typed => typed,
            _ => throw new InvalidOperationException($"tensor {Shape} holds {DType}, not {typeof(T).Name}"),
        };

    public void Dispose()
    {
        var data = Interlocked.Exchange(ref _data, null);
        if (data is null) return;
        switch (data)
        {
            case float[] f: _pool.Return(f); break;
            case double[] d: _pool.Return(d); break;
            case long[] l: _pool.Return(l); break;
        }
    }

    public override string ToString() => $"managed {DType} {Shape}{(IsDisposed ? " (disposed)" : "")}";
}
