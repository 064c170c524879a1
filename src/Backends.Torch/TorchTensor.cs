using TorchSharp;

namespace Lockstep.Backends.Torch;

/// <summary>
/// A libtorch tensor owned by a <see cref="TorchBackend"/>. It is detached from every TorchSharp dispose scope,
/// so exactly one owner frees it: <see cref="Dispose"/>.
/// </summary>
public sealed class TorchTensor : ITensor
{
    private readonly TorchBackend _backend;
    private readonly long _bytes;
    private torch.Tensor? _value;

    internal TorchTensor(TorchBackend backend, torch.Tensor value)
    {
        Backend = _backend = backend;
        _value = value.DetachFromDisposeScope();
        Shape = new Shape(Array.ConvertAll(value.shape, d => checked((int)d)));
        DType = ToDType(value.dtype);
        _bytes = value.NumberOfElements * value.ElementSize;
        backend.Track(_bytes);
    }

    public Shape Shape { get; }

    public DType DType { get; }

    public IBackend Backend { get; }

    public bool IsDisposed => _value is null;

    /// <summary>The libtorch tensor; it stays owned by this handle.</summary>
    internal torch.Tensor Value => _value ?? throw new ObjectDisposedException(nameof(TorchTensor), "the torch tensor was disposed");

    public void Dispose()
    {
        var value = Interlocked.Exchange(ref _value, null);
        if (value is null) return;
        value.Dispose();
        _backend.Track(-_bytes);
    }

    public override string ToString() => $"TorchTensor {Shape} {DType}{(IsDisposed ? " (disposed)" : "")}";

    internal static torch.ScalarType ToScalarType(DType dtype) => dtype switch
    {
        DType.Float32 => torch.ScalarType.Float32,
        DType.Float64 => torch.ScalarType.Float64,
        DType.Int64 => torch.ScalarType.Int64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "no libtorch scalar type for this dtype"),
    };

    internal static DType ToDType(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float32 => DType.Float32,
        torch.ScalarType.Float64 => DType.Float64,
        torch.ScalarType.Int64 => DType.Int64,
        _ => throw new NotSupportedException($"torch: a {type} tensor has no Lockstep dtype (Float32, Float64, Int64)"),
    };
}
