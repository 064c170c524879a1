using System.Globalization;
using Lockstep.Configuration;
using Lockstep.Conformance;
using Lockstep.Conformance.Reference;
using Spectre.Console;

namespace Lockstep.Bench;

/// <summary>
/// <c>lockstep check</c>: the conformance kit's random sweep at run time, for a user validating a machine, a GPU
/// or a new backend — every op on every pair of backends, a table per op, a determinism probe. Exit 0 when all
/// agree; 1 on any disagreement; 2 for bad input.
/// </summary>
public static class CheckCommand
{
    public const string Help = """
        usage: lockstep check [--backends a,b] [--cases N] [--seed S] [--ops LIST] [--dtype f32|f64] [--case SEED]

          --backends a,b    the reference first, then the backend(s) checked against it (default: managed,torch);
                            'naive' is the kit's loop-only oracle
          --cases N         random cases per op, dtype and backend (default 300)
          --seed S          the sweep's seed (default 1): the same seed draws the same cases
          --ops LIST        any of conv,pool,fc,relu,loss,sgd (default: all)
          --dtype f32|f64   one dtype only (default: both)
          --case SEED       run only the case a failure printed (its seed), on the ops named by --ops
        and the configuration switches of 'lockstep --help' (--gemm, --device, --Lockstep:Torch:Threads 1, ...).

        Each case (a random valid geometry; generic, tie-heavy or kink-free inputs) runs on both backends from the
        same host data. Bounds (tests/Conformance/README.md): float64 within 1e-12 relative (norm-wise); float32
        within c·ε·√K of the reference's float64 result on the same inputs and 2·c·ε·√K of its float32 result
        (ε = 2^-23, K the output's reduction length); max pooling, its switches and ReLU bit for bit.
        The column err/(ε√K) is the measured quantity that the constant c bounds.
        A disagreement is shrunk to a small failing case and printed with its seed; in the test suite,
        LOCKSTEP_CONFORMANCE_SEED=SEED replays it. Last, each op's largest case runs twice per backend: is
        each backend bitwise reproducible run to run?
        Exit status: 0 all agree, 1 a disagreement, 2 bad input.
        """;

    private static readonly string[] Options = ["--backends", "--cases", "--seed", "--ops", "--case"];

    private static readonly Dictionary<string, ConformanceOp[]> OpNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["conv"] = [ConformanceOp.Conv2d],
        ["pool"] = [ConformanceOp.Pool2d],
        ["fc"] = [ConformanceOp.Linear],
        ["relu"] = [ConformanceOp.Relu],
        ["loss"] = [ConformanceOp.SoftmaxCrossEntropy, ConformanceOp.MulticlassSvm],
        ["sgd"] = [ConformanceOp.SgdStep],
    };

    public static int Run(string[] args, IAnsiConsole console, BackendRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(registry);
        var line = CommandLine.Parse("check", args, Options);
        var output = console.Profile.Out.Writer;
        if (line.Help)
        {
            output.WriteLine(Help);
            return Cli.Success;
        }

        if (!registry.Contains("naive")) registry.Register(new NaiveBackendFactory());
        var options = LockstepConfiguration.Bind(LockstepConfiguration.Build([.. line.ConfigurationArgs]));
        string[] names = ParseBackends(line.GetString("--backends", "managed,torch"), registry);
        int cases = line.GetInt("--cases", ConformanceSettings.DefaultCases);
        int seed = line.GetInt("--seed", 1, minimum: 0);
        var ops = ParseOps(line.GetString("--ops", string.Join(',', OpNames.Keys)));
        bool dtypeGiven = line.ConfigurationArgs.Any(a => a.Equals("--dtype", StringComparison.OrdinalIgnoreCase)
                                                       || a.Equals("--Lockstep:DType", StringComparison.OrdinalIgnoreCase));
        DType[] dtypes = dtypeGiven ? [options.DType] : [DType.Float32, DType.Float64];
        string? caseSeed = line.Get("--case");
        if (caseSeed is not null)
        {
            foreach (var op in ops)
            {
                try
                {
                    Generators.Replay(op, caseSeed);
                }
                catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
                {
                    throw new UsageException($"--case: '{caseSeed}' is not a case seed (as a failure prints it, e.g. 0000000000e3)");
                }
            }
            cases = 1;
        }

        var backends = new List<IBackend>();
        try
        {
            foreach (string name in names) backends.Add(Backends.Create(registry, options, name));
            var reference = backends[0];
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"lockstep check: {string.Join(", ", names.Skip(1))} against {names[0]}; {cases} random cases per op, dtype and backend; seed {seed}"));
            foreach (var b in backends) output.WriteLine($"  {b.Name + ":",-9} {b.Description}");
            output.WriteLine(
                $"  bounds:   float64 ≤ {Tolerance.Float64:G2}; float32 ≤ {Tolerance.C:G3}·ε·√K vs float64, 2·{Tolerance.C:G3}·ε·√K between float32 results " +
                "(ε = 2^-23, K the reduction length); max pooling, switches, ReLU bit for bit");
            output.WriteLine();
            output.Flush();

            var jobs = (from op in ops from dtype in dtypes from candidate in backends.Skip(1) select (op, dtype, candidate)).ToArray();
            var results = new List<(IBackend Candidate, SweepResult Result)>();
            WithProgress(console, jobs.Length * cases, advance =>
            {
                foreach (var (op, dtype, candidate) in jobs)
                {
                    results.Add((candidate, Sweep.Run(candidate, reference, op, dtype, cases, (ulong)seed, caseSeed, advance)));
                }
            });

            console.Write(Table(results, reference.Name));
            console.WriteLine();
            foreach (var (candidate, result) in results.Where(r => r.Result.Failure is not null))
            {
                output.WriteLine(result.Failure!.Describe());
                output.WriteLine($"  replay: ./build.sh run -- check --backends {reference.Name},{candidate.Name} --ops {CliName(result.Op)} " +
                                 $"--dtype {(result.DType == DType.Float32 ? "f32" : "f64")} --case {result.Failure.Seed}");
                output.WriteLine();
            }

            output.WriteLine("determinism: each op's largest case run twice on each backend, compared bit for bit");
            foreach (var backend in backends) output.WriteLine($"  {backend.Name + ":",-9} {Determinism(backend, ops, dtypes)}");
            output.Flush();

            int failed = results.Count(r => !r.Result.Passed);
            if (failed > 0)
            {
                throw new CheckFailedException(
                    $"{failed} of {results.Count} sweeps found a disagreement: " +
                    string.Join(", ", results.Where(r => !r.Result.Passed).Select(r => $"{r.Result.Op} {r.Result.DType} ({r.Candidate.Name})")));
            }
            return Cli.Success;
        }
        finally
        {
            foreach (var backend in backends) backend.Dispose();
        }
    }

    private static Table Table(List<(IBackend Candidate, SweepResult Result)> results, string reference)
    {
        var table = new Table().Title($"against {Markup.Escape(reference)}");
        table.AddColumn("op").AddColumn("dtype").AddColumn("backend").AddColumn(new TableColumn("cases").RightAligned())
            .AddColumn(new TableColumn("worst rel. error").RightAligned())
            .AddColumn(new TableColumn("err/(ε√K)\nvs float64").RightAligned())
            .AddColumn(new TableColumn("err/(ε√K)\nfloat32 pair").RightAligned())
            .AddColumn("verdict");
        foreach (var (candidate, r) in results)
        {
            table.AddRow(r.Op.ToString(), r.DType.ToString(), Markup.Escape(candidate.Name), r.Cases.ToString(CultureInfo.InvariantCulture),
                Number(r.WorstRelativeError), Number(r.WorstVersusFloat64), Number(r.WorstPair),
                r.Passed ? "[green]agree[/]" : "[red]DISAGREE[/]");
        }
        return table;
    }

    private static string Number(double value) =>
        double.IsNaN(value) ? "–" : value == 0 ? "0" : value.ToString(value is >= 0.01 and < 1000 ? "0.###" : "0.0e+0", CultureInfo.InvariantCulture);

    /// <summary>Runs each op's probe case twice per dtype; "reproducible" or what differed.</summary>
    private static string Determinism(IBackend backend, IEnumerable<ConformanceOp> ops, DType[] dtypes)
    {
        var differences = new List<string>();
        foreach (var op in ops)
        foreach (var dtype in dtypes)
        {
            if (Sweep.Determinism(backend, ProbeCase(op), dtype) is { } difference) differences.Add($"{difference} ({dtype})");
        }
        return differences.Count == 0 ? "bitwise reproducible" : "NOT reproducible: " + string.Join("; ", differences);
    }

    /// <summary>Larger than the sweep's cases, so that multi-threaded kernels have work to split.</summary>
    private static OpCase ProbeCase(ConformanceOp op) => op switch
    {
        ConformanceOp.Conv2d => new ConvOpCase(new ConvCase(3, 1, 1, 16, 16, 8, 16, 4), InputKind.Generic, 1),
        ConformanceOp.Pool2d => new PoolOpCase(new PoolCase(PoolMode.Max, 3, 2, 0, 17, 17, 8, 4), InputKind.Generic, 2),
        ConformanceOp.Linear => new LinearOpCase(new LinearCase(16, 256, 64), InputKind.Generic, 3),
        ConformanceOp.Relu => new ReluOpCase(new VolumeCase(4, 8, 16, 16), InputKind.Generic, 4),
        ConformanceOp.SoftmaxCrossEntropy => new LossOpCase(new LossCase(LossKind.SoftmaxCrossEntropy, 32, 100, 4, 0), InputKind.Generic, 5),
        ConformanceOp.MulticlassSvm => new LossOpCase(new LossCase(LossKind.MulticlassSvm, 32, 100, 4, 0), InputKind.Generic, 6),
        _ => new SgdOpCase(new SgdCase(64, 64, 0.1, 0.9, 5e-4, 3), InputKind.Generic, 7),
    };

    private static void WithProgress(IAnsiConsole console, int total, Action<Action> work)
    {
        if (!console.Profile.Capabilities.Interactive)
        {
            work(() => { });
            return;
        }
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("checking", maxValue: total);
                work(() => task.Increment(1));
            });
    }

    private static string CliName(ConformanceOp op) => OpNames.First(p => p.Value.Contains(op)).Key;

    private static ConformanceOp[] ParseOps(string text)
    {
        var ops = new List<ConformanceOp>();
        foreach (string name in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!OpNames.TryGetValue(name, out var found))
            {
                throw new UsageException($"--ops: unknown op '{name}'; known ops: {string.Join(",", OpNames.Keys)}");
            }
            ops.AddRange(found.Where(o => !ops.Contains(o)));
        }
        if (ops.Count == 0) throw new UsageException($"--ops needs at least one op, e.g. conv,pool,fc");
        return [.. ops];
    }

    private static string[] ParseBackends(string text, BackendRegistry registry)
    {
        string[] names = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length < 2) throw new UsageException("--backends needs two or more backend names, the reference first, e.g. managed,torch");
        foreach (string name in names)
        {
            if (!registry.Contains(name))
            {
                throw new UsageException($"--backends: unknown backend '{name}'; known backends: {string.Join(", ", registry.Names)}");
            }
        }
        var duplicate = names.GroupBy(n => n, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new UsageException($"--backends: '{duplicate.Key}' is named twice");
        return names.Select(n => n.ToLowerInvariant()).ToArray();
    }
}

/// <summary>A backend disagreed with the reference: exit 1, after the table has printed.</summary>
public sealed class CheckFailedException(string message) : Exception(message);
