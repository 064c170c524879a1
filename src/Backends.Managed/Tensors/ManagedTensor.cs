namespace Lockstep.Backends.Managed.Tensors;

/// <summary>
/// A tensor of the managed backend: a host array (float[], double[], or long[] for max-pool switches) of exactly
/// Shape.Count elements, rented from the backend's <see cref="BufferPool"/> and given back on Dispose.
/// </summary>
internal sealed class ManagedTensor : ITensor
{
    // One gate for every tensor's derived data (a few instructions held; a gate per tensor would cost each wrapper an object).
    private static readonly Lock DerivedGate = new();
    private readonly BufferPool _pool;
    private Array? _data;
    private long _version;
    private Array? _derived;
    private long _derivedVersion;
    private int _derivedKind;

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

    /// <summary>
    /// The data, to write: counts as a write (<see cref="Version"/>), whether or not the caller writes.
    /// <typeparamref name="T"/> must be the tensor's element type.
    /// </summary>
    public Span<T> Span<T>() where T : unmanaged
    {
        var data = Array<T>();
        Interlocked.Increment(ref _version);
        return data;
    }

    /// <summary>The data, to read.</summary>
    public ReadOnlySpan<T> Read<T>() where T : unmanaged => Array<T>();

    /// <summary>Bumped by every <see cref="Span{T}"/>: data derived at one version is stale at the next.</summary>
    public long Version => Interlocked.Read(ref _version);

    private T[] Array<T>() where T : unmanaged =>
        _data switch
        {
            null => throw new ObjectDisposedException(nameof(ManagedTensor), $"tensor {Shape} was disposed"),
            T[] typed => typed,
            _ => throw new InvalidOperationException($"tensor {Shape} holds {DType}, not {typeof(T).Name}"),
        };

    /// <summary>
    /// The pooled array last offered with <see cref="OfferDerived{T}"/> (Winograd's transformed weights), when it was
    /// derived from the data as they are now and is of <paramref name="kind"/> (the caller's tag for what it holds: a
    /// layout); ownership passes to the caller, who offers it back or returns it to the pool. Null when there is none,
    /// or the tensor has been written since, or it is of another kind (either goes back to the pool).
    /// </summary>
    public T[]? TakeDerived<T>(int kind = 0) where T : unmanaged
    {
        lock (DerivedGate)
        {
            if (_derived is not T[] derived) return null;
            _derived = null;
            if (_derivedVersion == Version && _derivedKind == kind) return derived;
            Return(derived);
            return null;
        }
    }

    /// <summary>
    /// Keeps <paramref name="derived"/> (a pooled array computed from the data at <paramref name="version"/>, of
    /// <paramref name="kind"/>) for a later <see cref="TakeDerived{T}"/>, in place of the one kept before; returns it to
    /// the pool instead when the tensor has been written since or disposed. Either way the caller no longer owns it.
    /// </summary>
    public void OfferDerived<T>(T[] derived, long version, int kind = 0) where T : unmanaged
    {
        lock (DerivedGate)
        {
            if (_data is null || version != Version)
            {
                _pool.Return(derived);
                return;
            }
            if (_derived is not null) Return(_derived);
            (_derived, _derivedVersion, _derivedKind) = (derived, version, kind);
        }
    }

    public void Dispose()
    {
        var data = Interlocked.Exchange(ref _data, null);
        if (data is null) return;
        Return(data);
        lock (DerivedGate)
        {
            if (_derived is not null) Return(_derived);
            _derived = null;
        }
    }

    // Gives an array of any of the tensors' element types back to the pool.
    private void Return(Array array)
    {
        switch (array)
        {
            case float[] f: _pool.Return(f); break;
            case double[] d: _pool.Return(d); break;
            case long[] l: _pool.Return(l); break;
        }
    }

    public override string ToString() => $"managed {DType} {Shape}{(IsDisposed ? " (disposed)" : "")}";
}
