using System.Globalization;
using Lockstep.Configuration;
using Lockstep.Layers;
using Spectre.Console;

namespace Lockstep.Bench;

/// <summary>
/// <c>lockstep compare</c>: per-layer forward and backward time, GFLOP/s and agreement between backends, then a
/// whole training step. Exit 0; 1 when two backends disagree beyond the tolerance; 2 for bad input.
/// </summary>
public static class CompareCommand
{
    public const string Help = """
        usage: lockstep compare [--net NAME|SPEC] [--backends a,b] [--batch N] [--dtype f32|f64] [--threads N]
                                [--repeats R] [--warmup W] [--seed S] [--tolerance T] [--json FILE] [--plot FILE.png]

          --net NAME|SPEC   network: cifar (default), lenet, alexnet, zfnet, vgg16, or a spec in the notes' notation,
                            e.g. "INPUT 32x32x3 -> [CONV3-16 -> RELU -> POOL2]*2 -> FC-10" (see 'lockstep summary')
          --backends a,b    backends to run side by side, the first is the reference (default: managed,torch);
                            torch:DEVICE picks torch's device for that entry, e.g. managed,torch,torch:cuda
          --batch N         images per batch (default 16)
          --dtype f32|f64   element type (default: Lockstep:DType, Float32)
          --threads N       threads of every backend: Lockstep:Managed:Threads and Lockstep:Torch:Threads (0 = all cores)
          --repeats R       rounds over all layers, each timing every layer once; medians over the rounds, with min–max (default 15)
          --warmup W        untimed calls of each layer (and of the step) before the rounds (default: as many as fit in 0.5 s)
          --seed S          seed for weights, input, labels and upstream gradients (default 1)
          --tolerance T     largest relative difference accepted between backends
                            (default 1e-4 for f32, 1e-10 for f64)
          --json FILE       also write the report as JSON
          --plot FILE.png   also draw per-layer GFLOP/s by backend and phase, with the measured peak as a line
        and the configuration switches of 'lockstep --help' (--gemm, --device, --Lockstep:Managed:Threads 1, ...).

        Each layer runs alone on every backend from the same host input and the same upstream gradient; its
        forward output and gradients (dx, dw, db) are compared as max|a - b| / max|b| (b: the first backend).
        Backward is timed whole (dx, dw, db) and for the weights alone (dw, db); backward-data is the difference.
        Speed-up: another backend's time / the first backend's (above 1: the first is faster).
        Exit status: 0, 1 when a layer's difference exceeds the tolerance, 2 for bad input.
        """;

    private static readonly string[] Options =
        ["--net", "--backends", "--batch", "--threads", "--repeats", "--warmup", "--seed", "--tolerance", "--json", "--plot"];

    public static int Run(string[] args, IAnsiConsole console, BackendRegistry registry)
    {
        var line = CommandLine.Parse("compare", args, Options);
        if (line.Help)
        {
            console.Profile.Out.Writer.WriteLine(Help);
            return Cli.Success;
        }

        var configArgs = new List<string>(line.ConfigurationArgs);
        if (line.Get("--threads") is not null)
        {
            string threads = line.GetInt("--threads", 0, minimum: 0).ToString(CultureInfo.InvariantCulture);
            configArgs.AddRange(["--Lockstep:Managed:Threads", threads, "--Lockstep:Torch:Threads", threads]);
        }
        var options = LockstepConfiguration.Bind(LockstepConfiguration.Build([.. configArgs]));
        var net = NamedNetworks.Get(line.GetString("--net", "cifar"));
        var specs = ParseBackends(line.GetString("--backends", "managed,torch"), registry);
        string[] names = specs.Select(b => b.Spec).ToArray();
        int batch = line.GetInt("--batch", 16);
        int repeats = line.GetInt("--repeats", 15);
        int? warmupCalls = line.Get("--warmup") is null ? null : line.GetInt("--warmup", 0, minimum: 0);
        int seed = line.GetInt("--seed", 1, minimum: 0);
        double tolerance = ParseTolerance(line.Get("--tolerance"), options.DType);
        string? jsonPath = line.Get("--json");
        string? plotPath = line.Get("--plot");
        foreach (var (option, path) in new[] { ("--json", jsonPath), ("--plot", plotPath) })
        {
            if (path is not null && Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir && !Directory.Exists(dir))
            {
                throw new UsageException($"{option}: the directory '{dir}' does not exist");
            }
        }
        if (plotPath is not null && !plotPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"--plot: the file must end in .png, got '{plotPath}'");
        }
        net.Shapes(batch);   // the geometry, checked before any backend loads

        var backends = new List<IBackend>();
        try
        {
            double? loadStart = MachineInfo.LoadAverage;
            foreach (var (name, device, _) in specs)
            {
                var entry = device is null ? options
                    : new LockstepOptions { Backend = options.Backend, DType = options.DType, Managed = options.Managed, Torch = options.Torch.WithDevice(device) };
                backends.Add(Backends.Create(registry, entry, name));
            }
            var clash = backends.GroupBy(b => b.Name).FirstOrDefault(g => g.Count() > 1);
            if (clash is not null) throw new UsageException($"--backends: two entries run as '{clash.Key}'; name each backend and device once");

            // What ran comes before any number.
            double? MeasurePeak() => MachineInfo.MeasurePeakGflops(options.DType, MachineInfo.LogicalCores, TimeSpan.FromSeconds(1));
            double? peak = MeasurePeak();
            var settings = new ComparisonSettings(net, backends, batch, options.DType, seed, repeats,
                warmupCalls is { } w ? new WarmUp(w, TimeSpan.Zero) : WarmUp.Default, tolerance, peak, peak is null ? null : MeasurePeak);
            var machine = new MachineReport(MachineInfo.CpuSummary, MachineInfo.LogicalCores, peak)
            {
                LoadAverageStart = loadStart,
                Environment = MachineInfo.PerformanceEnvironment,
                Date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
            };
            var config = new ConfigReport(net.Name, [.. net.Input.Dims.Skip(1)], batch, options.DType.ToString(), seed, repeats,
                settings.WarmUp.ToString(), tolerance, backends.Select(Describe).ToArray());
            PrintHeader(console, machine, config, options);

            var comparison = new Comparison(settings);
            var (layers, totals) = RunWithProgress(console, comparison);
            var report = new CompareReport(
                machine with { PeakGflops = comparison.Peak, PeakSamplesGflops = comparison.PeakSamples, LoadAverageEnd = MachineInfo.LoadAverage },
                config, layers, totals);
            CompareTables.Print(console, report);

            if (jsonPath is not null)
            {
                File.WriteAllText(jsonPath, report.ToJson());
                console.Profile.Out.Writer.WriteLine($"report: {Path.GetFullPath(jsonPath)}");
            }
            if (plotPath is not null)
            {
                ComparePlot.Save(report, plotPath);
                console.Profile.Out.Writer.WriteLine($"plot: {Path.GetFullPath(plotPath)}");
            }

            var failed = layers.Where(l => l.MaxRelDiff is { } d && !(d <= tolerance)).ToArray();
            if (failed.Length > 0)
            {
                console.Profile.Out.Writer.Flush();
                throw new ComparisonFailedException(
                    $"{string.Join(", ", failed.Select(l => $"{l.Name} differs by {l.MaxRelDiff:0.0e+0}"))} between " +
                    $"{names[0]} and {string.Join(", ", names.Skip(1))}; tolerance {tolerance:0.0e+0}");
            }
            return Cli.Success;
        }
        finally
        {
            foreach (var backend in backends) backend.Dispose();
        }
    }

    private static BackendInfo Describe(IBackend backend) => backend switch
    {
        Lockstep.Backends.Managed.ManagedBackend m => new BackendInfo(m.Name, m.Description, GemmInfo.Of(m), m.Threads),
        _ => new BackendInfo(backend.Name, backend.Description),
    };

    /// <summary>"managed,torch,torch:cuda" → (name, device or null, the entry as written, lower case).</summary>
    private static (string Name, string? Device, string Spec)[] ParseBackends(string text, BackendRegistry registry)
    {
        string[] entries = text.ToLowerInvariant().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (entries.Length == 0) throw new UsageException("--backends needs at least one backend name, e.g. managed,torch");
        var specs = new List<(string, string?, string)>();
        foreach (string entry in entries)
        {
            int colon = entry.IndexOf(':', StringComparison.Ordinal);
            string name = colon < 0 ? entry : entry[..colon];
            string? device = colon < 0 ? null : entry[(colon + 1)..];
            if (!registry.Contains(name))
            {
                throw new UsageException($"--backends: unknown backend '{name}'; known backends: {string.Join(", ", registry.Names)}");
            }
            if (device is not null && (name != "torch" || device.Length == 0))
            {
                throw new UsageException($"--backends: '{entry}': only torch takes a device (torch:cpu, torch:cuda, torch:auto)");
            }
            specs.Add((name, device, entry));
        }
        var duplicate = specs.GroupBy(s => s.Item3).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new UsageException($"--backends: '{duplicate.Key}' is named twice");
        return [.. specs];
    }

    private static double ParseTolerance(string? text, DType dtype)
    {
        if (text is null) return dtype == DType.Float64 ? 1e-10 : 1e-4;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double t) || !(t >= 0) || double.IsInfinity(t))
        {
            throw new UsageException($"--tolerance must be a non-negative number, got {text}");
        }
        return t;
    }

    /// <summary>A 1-minute load average of this many per logical core at the start draws a warning in the header.</summary>
    public const double BusyLoadPerCore = 1.5;

    /// <summary>The header's warning when the run starts on a busy machine (load ≥ <see cref="BusyLoadPerCore"/> per core); null otherwise.</summary>
    public static string? BusyWarning(double? loadAverage, int cores) =>
        loadAverage is { } load && load >= BusyLoadPerCore * cores
            ? FormattableString.Invariant($"the machine is busy (load {load:0.00} on {cores} logical cores): timings are unreliable, ") +
              "libtorch's most (its OpenMP threads wait for each other at every barrier: 10–30× slower at such loads); compare on a quiet machine"
            : null;

    private static void PrintHeader(IAnsiConsole console, MachineReport machine, ConfigReport config, LockstepOptions options)
    {
        var w = console.Profile.Out.Writer;
        w.WriteLine($"lockstep compare: {config.Net} (input {string.Join('×', config.InputShape.Reverse())} W×H×D), " +
                    $"batch {config.Batch}, {config.Dtype}, seed {config.Seed}");
        w.WriteLine($"  cpu:      {machine.Cpu}; {machine.Cores} logical cores; peak " +
                    (machine.PeakGflops is { } p ? $"{p:0.#} GFLOP/s ({config.Dtype} FMA on all cores; measured again after the warm-ups and after the rounds, the highest counts)" : "not measured (no hardware FMA)") +
                    (machine.LoadAverageStart is { } load ? $"; load average {load:0.00} at start" : ""));
        if (BusyWarning(machine.LoadAverageStart, machine.Cores) is { } warning) w.WriteLine($"  warning:  {warning}");
        foreach (var b in config.Backends)
        {
            w.WriteLine($"  {b.Name + ":",-9} {b.Description}");
            if (b.Gemm is not null) w.WriteLine($"  {"",-9} gemm: {b.Gemm}");
        }
        w.WriteLine($"  threads:  Lockstep:Managed:Threads = {options.Managed.Threads}, Lockstep:Torch:Threads = {options.Torch.Threads} " +
                    $"(0 = all {machine.Cores} logical cores)");
        w.WriteLine($"  env:      {(machine.Environment.Count == 0 ? "no GLIBC_TUNABLES, OPENBLAS_*, MKL_*, OMP_* or KMP_* set" : string.Join(", ", machine.Environment.Select(e => $"{e.Key}={e.Value}")))}");
        w.WriteLine($"  timing:   each layer warmed up ({config.Warmup}), then {config.Repeats} round{(config.Repeats == 1 ? "" : "s")}, in each every backend " +
                    $"in turn over all layers in order (side by side: each turn after a {Comparison.Handover.TotalMilliseconds:0} ms pause and an untimed round); " +
                    "medians over the rounds (min–max below them); " +
                    "each call ends with Synchronize(); the step likewise after its warm-up");
        w.WriteLine($"  agreement: max|a - b| / max|b| over y, dx, dw, db on the same inputs (b = {config.Backends[0].Name}); " +
                    $"tolerance {config.Tolerance:0.0e+0}");
        if (config.Backends.Count > 1)
        {
            w.WriteLine($"  speed-up: time of the other backend / time of {config.Backends[0].Name} (above 1: {config.Backends[0].Name} is faster); " +
                        "bwd-data = median over the rounds of bwd − bwd-weights (needDx: false)");
        }
        w.WriteLine();
        w.Flush();
    }

    private static (IReadOnlyList<LayerReport>, IReadOnlyDictionary<string, StepReport>) RunWithProgress(IAnsiConsole console, Comparison comparison)
    {
        if (!console.Profile.Capabilities.Interactive) return comparison.Run();
        (IReadOnlyList<LayerReport>, IReadOnlyDictionary<string, StepReport>) result = default;
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("measuring", maxValue: comparison.Steps);
                bool first = true;
                result = comparison.Run(step =>
                {
                    if (!first) task.Increment(1);
                    first = false;
                    task.Description = Markup.Escape(step);
                });
                task.Increment(1);
            });
        return result;
    }
}

/// <summary>Backends disagreed beyond the tolerance: exit 1, after the tables have printed.</summary>
public sealed class ComparisonFailedException(string message) : Exception(message);
