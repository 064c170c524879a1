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

    private long _writes;

    /// <summary>
    /// The libtorch tensor, for an operation that writes into it: counts the write first (<see cref="Writes"/>). Every
    /// in-place write of the backend goes through here, so that a <see cref="ConvTape"/> of older data is never used
    /// (libtorch's autograd would abort the process on it: a C++ exception through TorchSharp's native glue).
    /// </summary>
    internal torch.Tensor Mutable
    {
        get
        {
            var value = Value;
            Interlocked.Increment(ref _writes);
            return value;
        }
    }

    /// <summary>How many times the backend has written into this tensor in place.</summary>
    internal long Writes => Interlocked.Read(ref _writes);

    public void Dispose()
    {
        var value = Interlocked.Exchange(ref _value, null);
        if (value is null) return;
        Interlocked.Exchange(ref _tape, null)?.Dispose();
        value.Dispose();
        _backend.Track(-_bytes);
    }

    private ConvTape? _tape;

    /// <summary>
    /// The autograd record of the last convolution that read this tensor as its input (see <see cref="ConvTape"/>);
    /// a new one replaces (and frees) the old.
    /// </summary>
    internal ConvTape? Tape => Volatile.Read(ref _tape);

    internal void Record(ConvTape tape)
    {
        if (IsDisposed)
        {
            tape.Dispose();
            return;
        }
        Interlocked.Exchange(ref _tape, tape)?.Dispose();
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

/// <summary>
/// What libtorch's autograd recorded for one convolution: the input and weights as leaves and the output with its
/// graph (kept for repeated backward calls). Conv2dBackward uses it, as PyTorch's own backward does, instead of running
/// the convolution again (TorchSharp exposes no convolution_backward). The leaves share the tensors' storage: the
/// record copies nothing. Owned by the input's handle: freed when a later convolution reads that input, or with it.
/// </summary>
internal sealed class ConvTape(TorchTensor x, TorchTensor weights, ConvSpec spec, torch.Tensor input, torch.Tensor weightLeaf, torch.Tensor output)
    : IDisposable
{
    public TorchTensor Weights { get; } = weights;
    /// <summary>The input's and the weights' write counts when the convolution ran.</summary>
    public (long Input, long Weights) Writes { get; } = (x.Writes, weights.Writes);
    public ConvSpec Spec { get; } = spec;
    public torch.Tensor Input { get; } = input.DetachFromDisposeScope();
    public torch.Tensor WeightLeaf { get; } = weightLeaf.DetachFromDisposeScope();
    public torch.Tensor Output { get; } = output.DetachFromDisposeScope();

    public void Dispose()
    {
        Output.Dispose();
        WeightLeaf.Dispose();
        Input.Dispose();
    }
}
