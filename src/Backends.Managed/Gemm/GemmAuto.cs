using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Lockstep.Backends.Managed.Gemm;

/// <summary>
/// How <c>Gemm: auto</c> decides between the native providers that load: by measurement, never by vendor name.
/// Each candidate multiplies a few convolution-shaped sgemms the way the managed backend calls it (one BLAS thread per
/// worker, <c>parallelism</c> workers at once, so the environment it actually runs in counts — OPENBLAS_CORETYPE
/// included); the fastest wins. The verdict is cached outside the repository, keyed by the CPU model, each library's
/// version and path, the thread counts and the environment variables that change a library's kernels, so a machine
/// measures once and a changed setting measures again. A verdict measured under heavy load (1-minute load average at
/// least the core count) is measured again by the next process that finds the machine quieter.
/// </summary>
public sealed class GemmAuto
{
    /// <summary>Environment variables that change which kernels a provider runs; part of the cache key.</summary>
    public static readonly IReadOnlyList<string> KernelEnvironment =
        ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE", "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE", "MKL_CBWR"];

    /// <summary>The product shapes timed (M, N, K): VGG conv3-64 at 56×56, AlexNet conv1 per image, a deep 14×14 layer.</summary>
    public static readonly IReadOnlyList<(int M, int N, int K)> Shapes = [(64, 3136, 576), (96, 3025, 363), (256, 196, 2304)];

    private readonly Func<IGemmProvider, int, double> _measure;
    private readonly Func<double> _loadAverage;

    /// <param name="cachePath">Where verdicts are kept; null: <see cref="DefaultCachePath"/>; "" keeps none.</param>
    /// <param name="measure">GFLOP/s of a provider with a given parallelism; null: <see cref="Measure"/>.</param>
    /// <param name="loadAverage">The machine's load now; null: <see cref="LoadAverage"/>.</param>
    public GemmAuto(string? cachePath = null, Func<IGemmProvider, int, double>? measure = null, Func<double>? loadAverage = null)
    {
        CachePath = cachePath ?? DefaultCachePath();
        _measure = measure ?? Measure;
        _loadAverage = loadAverage ?? LoadAverage;
    }

    public string CachePath { get; }

    /// <summary>$LOCKSTEP_GEMM_CACHE, else $XDG_CACHE_HOME/lockstep/gemm-auto.json, else ~/.cache/lockstep/gemm-auto.json.</summary>
    public static string DefaultCachePath()
    {
        if (Environment.GetEnvironmentVariable("LOCKSTEP_GEMM_CACHE") is { Length: > 0 } explicitPath) return explicitPath;
        string? root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (string.IsNullOrEmpty(root))
        {
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (string.IsNullOrEmpty(home)) return "";
            root = Path.Combine(home, ".cache");
        }
        return Path.Combine(root, "lockstep", "gemm-auto.json");
    }

    /// <summary>
    /// Picks the fastest of <paramref name="candidates"/> (all loaded); the others are disposed. The reason names every
    /// candidate's GFLOP/s and whether the verdict was measured now or read from the cache.
    /// </summary>
    public GemmSelection Choose(IReadOnlyList<IGemmProvider> candidates, int parallelism, string prefix = "auto")
    {
        ArgumentOutOfRangeException.ThrowIfZero(candidates.Count);
        string lead = prefix.Contains(':', StringComparison.Ordinal) ? prefix + "; " : prefix + ": ";
        if (candidates.Count == 1) return new(candidates[0], $"{lead}{candidates[0].Name} loaded");
        string key = Key(candidates, parallelism);
        double load = _loadAverage();
        Dictionary<string, double> scores;
        string source;
        lock (Gate)
        {
            var cache = Load();
            if (cache[key] is JsonObject entry && Scores(entry, candidates) is { } cached && !Stale(entry, load))
            {
                scores = cached;
                source = $"measured {entry["measured"]?.GetValue<string>() ?? "earlier"}, cached in {CachePath}";
            }
            else
            {
                scores = MeasureAll(candidates, parallelism);
                source = $"measured now at load {load.ToString("0.0", CultureInfo.InvariantCulture)}";
                cache[key] = new JsonObject
                {
                    ["measured"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
                    ["load_average"] = Math.Round(load, 2),
                    ["gflops"] = new JsonObject(scores.Select(s => KeyValuePair.Create(s.Key, (JsonNode?)Math.Round(s.Value, 1)))),
                    ["winner"] = scores.MaxBy(s => s.Value).Key,
                };
                string? saved = Save(cache);
                source += saved is null ? $", cached in {CachePath}" : $" (not cached: {saved})";
            }
        }
        var winner = candidates.MaxBy(c => scores[c.Name])!;
        foreach (var other in candidates) if (!ReferenceEquals(other, winner)) other.Dispose();
        string table = string.Join(", ", candidates.OrderByDescending(c => scores[c.Name])
            .Select(c => $"{c.Name} {c.Version} {scores[c.Name].ToString("0", CultureInfo.InvariantCulture)}"));
        return new(winner, $"{lead}{winner.Name} fastest on conv-shaped sgemm, GFLOP/s at {parallelism} thread{(parallelism == 1 ? "" : "s")}: {table} ({source})");
    }

    private static readonly Lock Gate = new();

    // Rounds alternate between the candidates and each keeps its best, so that a burst of load from other processes
    // hits every candidate alike instead of deciding the verdict.
    private Dictionary<string, double> MeasureAll(IReadOnlyList<IGemmProvider> candidates, int parallelism)
    {
        var scores = candidates.ToDictionary(c => c.Name, _ => 0.0);
        for (int round = 0; round < 3; round++)
        {
            foreach (var c in candidates) scores[c.Name] = Math.Max(scores[c.Name], _measure(c, parallelism));
        }
        return scores;
    }

    // A verdict measured on a busy machine (load ≥ cores) is provisional: measured again once the machine is quieter.
    private static bool Stale(JsonObject entry, double loadNow)
    {
        if (entry["load_average"] is not JsonValue v || !v.TryGetValue(out double then)) return false;
        return then >= Environment.ProcessorCount && loadNow < then / 2;
    }

    /// <summary>The 1-minute load average (/proc/loadavg), 0 where unknown.</summary>
    public static double LoadAverage()
    {
        try
        {
            string text = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg") : "";
            return double.TryParse(text.Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double load) ? load : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static Dictionary<string, double>? Scores(JsonObject entry, IReadOnlyList<IGemmProvider> candidates)
    {
        if (entry["gflops"] is not JsonObject g) return null;
        var scores = new Dictionary<string, double>();
        foreach (var c in candidates)
        {
            if (g[c.Name] is not JsonValue v || !v.TryGetValue(out double s)) return null;
            scores[c.Name] = s;
        }
        return scores;
    }

    /// <summary>What decides the verdict: CPU, libraries (version and where loaded), threads, kernel-selecting environment.</summary>
    public static string Key(IReadOnlyList<IGemmProvider> candidates, int parallelism)
    {
        var parts = new List<string> { $"cpu={CpuModel()}", $"parallelism={parallelism}" };
        parts.AddRange(candidates.OrderBy(c => c.Name, StringComparer.Ordinal).Select(c => $"{c.Name}={c.Version} [{c.Details}] threads={c.Threads}"));
        parts.AddRange(KernelEnvironment.Select(v => $"{v}={Environment.GetEnvironmentVariable(v)}"));
        return string.Join(" | ", parts);
    }

    private JsonObject Load()
    {
        if (CachePath.Length == 0 || !File.Exists(CachePath)) return [];
        try
        {
            return JsonNode.Parse(File.ReadAllText(CachePath)) as JsonObject ?? [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return [];   // an unreadable or corrupt cache is measured again and rewritten
        }
    }

    // Null when saved, else why not. Written to a temporary file and renamed, so a concurrent reader never sees half.
    private string? Save(JsonObject cache)
    {
        if (CachePath.Length == 0) return "no cache path";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(CachePath))!);
            string temp = $"{CachePath}.{Environment.ProcessId}.tmp";
            File.WriteAllText(temp, cache.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Move(temp, CachePath, overwrite: true);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// GFLOP/s of <paramref name="provider"/> on <see cref="Shapes"/> (float32): <paramref name="parallelism"/> threads
    /// each run the same product on their own operands at once; after two untimed rounds, the best of five (the run
    /// least disturbed by other processes). The score is the geometric mean over the shapes.
    /// </summary>
    public static double Measure(IGemmProvider provider, int parallelism)
    {
        ArgumentNullException.ThrowIfNull(provider);
        double logSum = 0;
        foreach (var (m, n, k) in Shapes)
        {
            var a = new float[m * k];
            var b = new float[k * n];
            var c = new float[parallelism * m * n];
            for (int i = 0; i < a.Length; i++) a[i] = (i % 7) * 0.1f;
            for (int i = 0; i < b.Length; i++) b[i] = (i % 5) * 0.1f;
            var samples = new double[7];
            for (int r = 0; r < samples.Length; r++)
            {
                var clock = Stopwatch.StartNew();
                Parallel.For(0, parallelism, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, t =>
                    provider.Sgemm(false, false, m, n, k, 1f, a, k, b, n, 0f, c.AsSpan(t * m * n, m * n), n));
                samples[r] = clock.Elapsed.TotalSeconds;
            }
            double best = samples.Skip(2).Min();
            logSum += Math.Log(2.0 * m * n * k * parallelism / best / 1e9);
        }
        return Math.Exp(logSum / Shapes.Count);
    }

    private static string CpuModel()
    {
        try
        {
            const string path = "/proc/cpuinfo";
            if (File.Exists(path))
            {
                string? line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
                if (line is not null) return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }
        }
        catch (IOException)
        {
        }
        return $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} cores";
    }
}
