using Lockstep.Configuration;
using Spectre.Console;

namespace Lockstep.Bench;

/// <summary>
/// <c>lockstep info</c>: what would run, one "key: value" per line. Diagnostic: a backend other than the configured
/// one that cannot load is reported on its line and the rest still prints; the configured one failing is exit 1.
/// </summary>
public static class InfoCommand
{
    public const string Help = """
        usage: lockstep info [--backend NAME] [--dtype f32|f64] [--gemm NAME] [--device NAME] [--Lockstep:KEY VALUE]

        Prints, one per line: the configured backend and dtype, its description, the managed backend's GEMM
        provider, the torch backend (libtorch version and device, or why it cannot load), threads, and the CPU.
        Exit status: 0, or 1 when the configured backend cannot be created.
        """;

    public static int Run(string[] args, IAnsiConsole console, BackendRegistry registry)
    {
        var line = CommandLine.Parse("info", args, []);
        if (line.Help)
        {
            console.Profile.Out.Writer.WriteLine(Help);
            return Cli.Success;
        }
        var options = LockstepConfiguration.Bind(LockstepConfiguration.Build([.. line.ConfigurationArgs]));
        if (!registry.Contains(options.Backend))
        {
            throw new UsageException($"unknown backend '{options.Backend}'; known backends: {string.Join(", ", registry.Names)}");
        }

        var output = console.Profile.Out.Writer;
        var managed = TryCreate(registry, options, "managed");
        var torch = TryCreate(registry, options, "torch");
        var configured = options.Backend.ToLowerInvariant() switch
        {
            "managed" => managed,
            "torch" => torch,
            _ => TryCreate(registry, options, options.Backend),
        };
        try
        {
            output.WriteLine($"backend: {options.Backend}");
            output.WriteLine($"dtype: {options.DType}");
            output.WriteLine($"description: {configured.Describe()}");
            output.WriteLine($"gemm: {(managed.Backend is { } m ? GemmInfo.Of(m) : managed.Describe())}");
            output.WriteLine($"torch: {torch.Describe()}");
            output.WriteLine($"threads: {Threads(options)}");
            output.WriteLine($"cpu: {MachineInfo.CpuSummary}");
            output.Flush();
            if (configured.Error is not null)
            {
                // The configured backend was asked for by name: its failure is an error, not a note.
                throw configured.Error;
            }
            return Cli.Success;
        }
        finally
        {
            managed.Backend?.Dispose();
            torch.Backend?.Dispose();
            if (!ReferenceEquals(configured, managed) && !ReferenceEquals(configured, torch)) configured.Backend?.Dispose();
        }
    }

    private static string Threads(LockstepOptions options)
    {
        static string Of(int n) => n == 0 ? $"all {MachineInfo.LogicalCores}" : n.ToString();
        return $"managed {Of(options.Managed.Threads)}, torch {Of(options.Torch.Threads)} " +
               $"(Lockstep:Managed:Threads = {options.Managed.Threads}, Lockstep:Torch:Threads = {options.Torch.Threads}; " +
               $"{MachineInfo.LogicalCores} logical cores)";
    }

    private sealed record Attempt(IBackend? Backend, Exception? Error)
    {
        // One line: a loader's trace can run to dozens; the first line carries the reason.
        public string Describe() => Backend?.Description ?? $"unavailable: {FirstLine(Cli.Describe(Error!))}";

        private static string FirstLine(string text) =>
            text.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? text;
    }

    private static Attempt TryCreate(BackendRegistry registry, LockstepOptions options, string name)
    {
        if (!registry.Contains(name)) return new Attempt(null, new InvalidOperationException($"no backend named '{name}' is registered"));
        try
        {
            return new Attempt(Backends.Create(registry, options, name), null);
        }
        catch (Exception e)
        {
            return new Attempt(null, e);
        }
    }
}
