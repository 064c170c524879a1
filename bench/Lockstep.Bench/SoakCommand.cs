using System.Globalization;
using System.Text.Json;
using Lockstep.Configuration;
using Lockstep.Layers;
using Spectre.Console;

namespace Lockstep.Bench;

/// <summary>
/// <c>lockstep soak</c>: many training steps of a small network per backend, sampling the process's resident memory,
/// the managed heap and the backend's own live bytes; after warm-up none of them may grow by more than 1%.
/// </summary>
public static class SoakCommand
{
    public const string Help = """
        usage: lockstep soak [--steps N] [--every K] [--warmup W] [--backends a,b] [--net NAME|SPEC] [--batch N] [--lr LR]
                             [--json FILE]

          --steps N         training steps per backend (default 10000)
          --every K         a memory sample every K steps (default 500)
          --warmup W        steps before the baseline sample (default a fifth of --steps, at least 1000): caches,
                            pools, the GC's budgets and the JIT settle first
          --backends a,b    backends to soak, one after the other (default managed,torch)
          --net NAME|SPEC   the network (default "INPUT 16x16x3 -> CONV3-8 -> RELU -> POOL2 -> FC-10")
          --batch N         images per step (default 16)
          --lr LR           SGD's learning rate (momentum 0.9; default 0.01); the steps train one batch over and over,
                            and a deep network without normalisation (vgg16) needs a smaller one, e.g. 0.0005
          --json FILE       the samples and verdicts as JSON

        Samples: RSS (VmRSS of the process), managed heap (live objects after a full collection; and the memory the GC has
        committed, for reference), the backend's live
        bytes (IMemoryStatistics, when it has them), and bytes allocated on the GC heap per step since the last sample;
        the last line per backend gives the GC-heap bytes per step after warm-up (managed: 0 once warm).
        Growth, for RSS, heap and live bytes: the highest sample of the second half of the measured run against the
        highest of the first half (a leak climbs; a value that wavers does not); above 1% and above 64 KiB fails (exit 1):
        a few KB of objects alive at one sample and not the next are not a leak, while one object left per step would
        add far more than 64 KiB over the run.
        """;

    private const string DefaultNet = "INPUT 16x16x3 -> CONV3-8 -> RELU -> POOL2 -> FC-10";
    private const double Limit = 0.01;

    /// <summary>Growth below this many bytes never fails: on torch's 0.3 MB heap, 1% is 3 KB, less than the objects one sample may catch alive.</summary>
    private const long MinLeakBytes = 64 * 1024;
    private static readonly string[] Options = ["--steps", "--every", "--warmup", "--backends", "--net", "--batch", "--lr", "--json", "--seed"];

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private sealed record Sample(int Step, long RssBytes, long HeapBytes, long CommittedBytes, long? LiveBytes, double AllocatedPerStep, long JitMethods, long JitBytes);

    private sealed record Verdict(string Backend, string Description, IReadOnlyList<Sample> Samples, double RssGrowth, double HeapGrowth,
        double? LiveGrowth, double AllocatedPerStep, double AllocatedPerStepMax, bool Passed)
    {
        public long RssGrowthBytes { get; init; }
        public long HeapGrowthBytes { get; init; }
        public long? LiveGrowthBytes { get; init; }
    }

    public static int Run(string[] args, IAnsiConsole console, BackendRegistry registry)
    {
        var line = CommandLine.Parse("soak", args, Options);
        var w = console.Profile.Out.Writer;
        if (line.Help)
        {
            w.WriteLine(Help);
            return Cli.Success;
        }
        int steps = line.GetInt("--steps", 10_000);
        int every = line.GetInt("--every", 500);
        int warmup = line.GetInt("--warmup", Math.Max(1000, steps / 5), minimum: 0);
        int batch = line.GetInt("--batch", 16);
        int seed = line.GetInt("--seed", 1, minimum: 0);
        double lr = line.GetDouble("--lr", 0.01);
        if (!(lr > 0)) throw new UsageException($"--lr must be positive, got {lr.ToString(CultureInfo.InvariantCulture)}");
        if (warmup + every > steps) throw new UsageException($"--steps ({steps}) must leave at least one sample (--every {every}) after --warmup ({warmup})");
        var def = NamedNetworks.Get(line.GetString("--net", DefaultNet));
        string[] names = line.GetString("--backends", "managed,torch").ToLowerInvariant()
            .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        foreach (string name in names)
        {
            if (!registry.Contains(name)) throw new UsageException($"--backends: unknown backend '{name}'; known backends: {string.Join(", ", registry.Names)}");
        }
        var options = LockstepConfiguration.Bind(LockstepConfiguration.Build([.. line.ConfigurationArgs]));

        w.WriteLine($"lockstep soak: {def.Name} ({def.Spec ?? NetworkSpec.Format(def)}), batch {batch}, {options.DType}, " +
                    $"{steps:N0} steps per backend, a sample every {every}, baseline after {warmup} steps");
        var verdicts = names.Select(name => Soak(console, registry, options, name, def, batch, steps, every, warmup, seed, lr)).ToList();

        string? json = line.Get("--json");
        if (json is not null)
        {
            File.WriteAllText(json, JsonSerializer.Serialize(
                new { steps, every, warmup, batch, lr, net = def.Spec ?? NetworkSpec.Format(def), limit = Limit, backends = verdicts }, JsonOptions));
        }
        return verdicts.All(v => v.Passed) ? Cli.Success : Cli.Failure;
    }

    private static Verdict Soak(IAnsiConsole console, BackendRegistry registry, LockstepOptions options, string name,
        NetworkDefinition def, int batch, int steps, int every, int warmup, int seed, double lr)
    {
        using var backend = Backends.Create(registry, options, name);
        using var net = def.Build(backend, options.DType, seed);
        var shape = def.InputShape(batch);
        var rng = new Random(seed);
        var data = new double[shape.Count];
        for (int i = 0; i < data.Length; i++) data[i] = 2 * rng.NextDouble() - 1;
        var labels = Enumerable.Range(0, batch).Select(_ => rng.Next(def.Classes)).ToArray();
        using var x = backend.Upload(data, shape, options.DType);
        var stats = backend as IMemoryStatistics;

        var samples = new List<Sample>();
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        int last = 0;
        void TakeSample(int step)
        {
            backend.Synchronize();
            long now = GC.GetTotalAllocatedBytes(precise: true);
            double perStep = step == last ? 0 : (double)(now - allocated) / (step - last);
            long heap = LiveHeapBytes();
            samples.Add(new Sample(step, ResidentBytes(), heap, GC.GetGCMemoryInfo().TotalCommittedBytes, stats?.LiveBytes, perStep,
                System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompiledILBytes()));
            allocated = GC.GetTotalAllocatedBytes(precise: true);
            last = step;
        }

        void Train(ProgressTask? task)
        {
            // The sampler's own code, and the runtime's housekeeping after each full collection it forces (array-pool
            // trimming, finalizer callbacks), must reach their final JIT tier now: re-JIT after ~30 samples showed up
            // as RSS growth halfway through the run.
            for (int i = 0; i < 64; i++)
            {
                _ = (ResidentBytes(), LiveHeapBytes(), GC.GetGCMemoryInfo().TotalCommittedBytes,
                    GC.GetTotalAllocatedBytes(precise: true), System.Runtime.JitInfo.GetCompiledMethodCount());
            }
            TakeSample(0);
            for (int step = 1; step <= steps; step++)
            {
                double loss = net.TrainStep(x, labels, learningRate: lr, momentum: 0.9);
                if (!double.IsFinite(loss))
                {
                    throw new InvalidOperationException(
                        $"soak: {name}: the loss became {loss} at step {step} at --lr {lr.ToString(CultureInfo.InvariantCulture)}; a smaller --lr keeps it finite");
                }
                if (step % every == 0) TakeSample(step);
                task?.Increment(1);
            }
        }

        if (console.Profile.Capabilities.Interactive)
        {
            console.Progress().Start(ctx => Train(ctx.AddTask($"{name}", maxValue: steps)));
        }
        else
        {
            Train(null);
        }

        // Growth compares the highest sample of the second half of the measured run with the highest of the first
        // half: a leak climbs, while a value that only wavers (a few KB of objects alive at one sample, not the next)
        // does not count as growth, as it would in a plain last-minus-first.
        var measured = samples.Where(s => s.Step >= warmup).ToList();
        var early = measured.Take((measured.Count + 1) / 2).ToList();
        var late = measured.Skip(measured.Count / 2).ToList();
        long Bytes(Func<Sample, long> value) => late.Max(value) - early.Max(value);
        double Growth(Func<Sample, long> value)
        {
            long a = early.Max(value);
            return a <= 0 ? 0 : (double)Bytes(value) / a;
        }
        static bool Leaks(double growth, long bytes) => growth > Limit && bytes > MinLeakBytes;
        double rss = Growth(s => s.RssBytes);
        double heap = Growth(s => s.HeapBytes);
        bool hasLive = measured.All(s => s.LiveBytes is not null);
        double? live = hasLive ? Growth(s => s.LiveBytes!.Value) : null;
        long rssBytes = Bytes(s => s.RssBytes), heapBytes = Bytes(s => s.HeapBytes);
        long? liveBytes = hasLive ? Bytes(s => s.LiveBytes!.Value) : null;
        bool passed = !Leaks(rss, rssBytes) && !Leaks(heap, heapBytes) && !(live is double l && Leaks(l, liveBytes!.Value));
        // GC-heap bytes per step over the intervals that start after warm-up (the sampler's own allocations excluded).
        var steady = samples.Where(s => s.Step - every >= warmup && s.Step > 0).ToList();
        double perStep = steady.Count == 0 ? double.NaN : steady.Average(s => s.AllocatedPerStep);
        double perStepMax = steady.Count == 0 ? double.NaN : steady.Max(s => s.AllocatedPerStep);
        var verdict = new Verdict(name, backend.Description, samples, rss, heap, live, perStep, perStepMax, passed)
        {
            RssGrowthBytes = rssBytes,
            HeapGrowthBytes = heapBytes,
            LiveGrowthBytes = liveBytes,
        };
        Print(console, verdict, warmup);
        return verdict;
    }

    private static void Print(IAnsiConsole console, Verdict v, int warmup)
    {
        var table = new Table().Title($"{v.Backend}: {v.Description}")
            .AddColumns("step", "RSS MB", "heap MB", "GC committed MB", "live MB", "allocated B/step", "JIT methods");
        foreach (var s in v.Samples)
        {
            string mark = s.Step >= warmup ? "" : " (warm-up)";
            table.AddRow(s.Step.ToString("N0", CultureInfo.InvariantCulture) + mark, Mb(s.RssBytes), Mb(s.HeapBytes), Mb(s.CommittedBytes),
                s.LiveBytes is long live ? Mb(live) : "–", s.AllocatedPerStep.ToString("N0", CultureInfo.InvariantCulture),
                s.JitMethods.ToString("N0", CultureInfo.InvariantCulture));
        }
        console.Write(table);
        string Pct(double g) => g.ToString("+0.00%;-0.00%;0.00%", CultureInfo.InvariantCulture);
        string Kb(long b) => (b / 1024.0).ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + " KiB";
        console.Profile.Out.Writer.WriteLine(
            $"{v.Backend}: growth after warm-up: RSS {Pct(v.RssGrowth)} ({Kb(v.RssGrowthBytes)}), heap {Pct(v.HeapGrowth)} ({Kb(v.HeapGrowthBytes)})" +
            (v.LiveGrowth is double lg ? $", live {Pct(lg)} ({Kb(v.LiveGrowthBytes ?? 0)})" : "") +
            $" (fails above {Pct(Limit)} and {MinLeakBytes / 1024} KiB): {(v.Passed ? "pass" : "FAIL")}");
        console.Profile.Out.Writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{v.Backend}: GC heap allocated after warm-up: {v.AllocatedPerStep:N1} B/step (mean; highest interval {v.AllocatedPerStepMax:N1} B/step)"));
    }

    // The managed heap's live objects: full blocking collections with the finalizers run in between, twice, then the
    // heap's size. (GC.GetTotalMemory(true) stops collecting once two readings lie within 5% of each other, so on a
    // 0.3 MB heap it could leave ~9 KB of finalizable objects — TorchSharp's undisposed handles — in one sample and
    // not the next.)
    private static long LiveHeapBytes()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: false);
    }

    private static string Mb(long bytes) => (bytes / 1e6).ToString("0.000", CultureInfo.InvariantCulture);

    /// <summary>VmRSS from /proc/self/status (Linux); the working set elsewhere.</summary>
    private static long ResidentBytes()
    {
        if (File.Exists("/proc/self/status"))
        {
            foreach (string l in File.ReadLines("/proc/self/status"))
            {
                if (!l.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                var parts = l.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        return Environment.WorkingSet;
    }
}
