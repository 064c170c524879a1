using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Spectre.Console;

namespace Lockstep.Bench;

/// <summary>
/// <c>lockstep bdn [--short] [--filter PATTERN]</c>: the BenchmarkDotNet suite (<see cref="OpBenchmarks"/>) in this
/// process (no child build, so it runs wherever the CLI runs), with the memory diagnoser. --short is the CI smoke job
/// (one warm-up, three iterations); without it, BenchmarkDotNet's default job for figures.
/// </summary>
public static class BdnCommand
{
    public const string Help = """
        usage: lockstep bdn [--short] [--filter PATTERN]

          --short           smoke job for CI: 1 warm-up and 3 iterations per benchmark (figures need the full job)
          --filter PATTERN  BenchmarkDotNet's glob over benchmark names, e.g. '*Conv*' (default: all)

        Benchmarks: Conv2d, Conv2dBackward, Pool2d, Pool2dBackward, Linear, LinearBackward, Relu, ReluBackward on each
        backend (managed, torch) and shape, float32, at the configured threads, and each with "Into" (Conv2dInto, …):
        the destination overload writing into tensors made once. 'Allocated' is GC-heap bytes per op: each op disposes
        what it returns, so a warm managed backend reuses every buffer; the Into forms allocate no result objects either.
        Control: a ~2.5 ms spin that allocates nothing — what the diagnoser reads in this process for no allocation (it
        can count one event of a few KB per measured iteration whatever the op; read an op's cell against it).
        Results also go to BenchmarkDotNet.Artifacts/ (markdown, CSV).
        """;

    public static int Run(string[] args, IAnsiConsole console)
    {
        bool smoke = args.Contains("--short");
        var line = CommandLine.Parse("bdn", args.Where(a => a != "--short").ToArray(), ["--filter"]);
        if (line.Help)
        {
            console.Profile.Out.Writer.WriteLine(Help);
            return Cli.Success;
        }
        var job = (smoke ? Job.ShortRun.WithWarmupCount(1).WithIterationCount(3).WithLaunchCount(1) : Job.Default)
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithId(smoke ? "short" : "full");
        var config = ManualConfig.CreateMinimumViable()
            .AddJob(job)
            .AddDiagnoser(MemoryDiagnoser.Default)
            .WithOptions(ConfigOptions.DisableOptimizationsValidator);
        string[] bdnArgs = line.Get("--filter") is { } filter ? ["--filter", filter] : ["--filter", "*"];
        var summaries = BenchmarkSwitcher.FromTypes([typeof(OpBenchmarks)]).Run(bdnArgs, config);
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? Cli.Failure : Cli.Success;
    }
}
