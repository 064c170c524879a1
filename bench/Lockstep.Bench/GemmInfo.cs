using Lockstep.Backends.Managed;

namespace Lockstep.Bench;

/// <summary>The GEMM provider a managed backend picked, for reports: "mkl 2020.4 (auto: mkl loaded)".</summary>
public static class GemmInfo
{
    public static string Of(IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return backend is ManagedBackend managed
            ? $"{managed.Gemm.Name} {managed.Gemm.Version} ({managed.GemmReason})"
            : $"none ({backend.Name} does not use a GEMM provider)";
    }
}
