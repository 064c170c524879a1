using Lockstep.Configuration;
using Lockstep.Conformance.Reference;

// The CLI swaps Console.Out while a backend loads (TorchSharp prints its load trace there): one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Lockstep.Bench.Tests;

/// <summary>What one run of the CLI returned and wrote.</summary>
public sealed record CliResult(int ExitCode, string Output, string Error)
{
    /// <summary>The non-empty lines of standard error.</summary>
    public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Output}\n--- stderr ---\n{Error}";
}

/// <summary>Runs <see cref="Cli.Run"/> in process with string writers and a registry that also knows the naive backend.</summary>
internal static class CliRunner
{
    public static CliResult Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var registry = Cli.DefaultRegistry().Register(new NaiveBackendFactory());
        int code = Cli.Run(args, output, error, registry);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    /// <summary>The loop-only reference backend, fast on tiny networks and free of native libraries.</summary>
    private sealed class NaiveBackendFactory : IBackendFactory
    {
        public string Name => "naive";

        public IBackend Create(LockstepOptions options) => new NaiveBackend();
    }
}
