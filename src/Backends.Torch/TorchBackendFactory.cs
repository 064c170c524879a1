using Lockstep.Configuration;

namespace Lockstep.Backends.Torch;

/// <summary>Registers the torch backend as "torch"; Create reads Lockstep:Torch (Device, Threads, Deterministic, AllowTF32, CuDnn).</summary>
public sealed class TorchBackendFactory : IBackendFactory
{
    public string Name => "torch";

    public IBackend Create(LockstepOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new TorchBackend(options.Torch);
    }
}
