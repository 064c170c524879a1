using Lockstep.Configuration;

namespace Lockstep.Bench;

public static class Backends
{
    /// <summary>
    /// Creates a backend by name. TorchSharp writes its native-load trace to standard output when libtorch does not
    /// load, and puts the same trace in the exception it throws; the console copy is dropped here so that it cannot
    /// land in the middle of a report, and the exception reports it once.
    /// </summary>
    public static IBackend Create(BackendRegistry registry, LockstepOptions options, string name)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var stdout = Console.Out;
        Console.SetOut(TextWriter.Null);
        try
        {
            return registry.Create(options, name);
        }
        finally
        {
            Console.SetOut(stdout);
        }
    }
}
