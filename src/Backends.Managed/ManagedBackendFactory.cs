using Lockstep.Configuration;

namespace Lockstep.Backends.Managed;

/// <summary>Registry entry "managed": a <see cref="ManagedBackend"/> on options.Managed.Gemm (at one BLAS thread) with options.Managed.Threads workers.</summary>
public sealed class ManagedBackendFactory : IBackendFactory
{
    public string Name => "managed";

    public IBackend Create(LockstepOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Managed.Threads < 0) throw new ArgumentException($"managed: Threads must be ≥ 0 (0 = all cores), got {options.Managed.Threads}");
        return new ManagedBackend(options.Managed.Gemm, options.Managed.Threads, options.Managed.Convolution);
    }
}
