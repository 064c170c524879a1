namespace Lockstep;

/// <summary>
/// A handle to data owned by the backend that made it (a host array, a libtorch tensor on a CPU or GPU).
/// Data crosses to the host only through <see cref="IBackend.Upload{T}"/> and <see cref="IBackend.Download{T}"/>.
/// </summary>
public interface ITensor : IDisposable
{
    Shape Shape { get; }
    DType DType { get; }
    IBackend Backend { get; }
    bool IsDisposed { get; }
}
