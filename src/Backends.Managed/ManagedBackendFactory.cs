using Lockstep.Backends.Managed.Gemm;
using Lockstep.Configuration;

namespace Lockstep.Backends.Managed;

/// <summary>Registry entry "managed": a <see cref="ManagedBackend"/> on options.Managed.Gemm with options.Managed.Threads.</summary>
public sealed class ManagedBackendFactory : IBackendFactory
{
    public string Name => "managed";

    public IBackend Create(LockstepOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var selection = GemmProviders.Select(options.Managed.Gemm, options.Managed.Threads);
        return new ManagedBackend(selection.Provider, selection.Reason);
    }
}
