namespace Lockstep.Backends.Managed.Gemm;

/// <summary>A chosen GEMM provider and why it was chosen ("mkl: asked for by name", "auto: mkl loaded").</summary>
public sealed record GemmSelection(IGemmProvider Provider, string Reason);

/// <summary>
/// Picks a GEMM provider by name. An explicit name (mkl, openblas, managed) loads that provider or throws
/// <see cref="GemmProviderException"/>, never falling back; "auto" loads every native provider it can (MKL, OpenBLAS),
/// keeps the fastest by measurement (<see cref="GemmAuto"/>), falls back to the managed provider only when neither
/// loads, and records what it tried and measured.
/// </summary>
public static class GemmProviders
{
    public static IReadOnlyList<string> Names { get; } = ["auto", "mkl", "openblas", "managed"];

    /// <param name="name">auto | mkl | openblas | managed (case-insensitive).</param>
    /// <param name="threads">Threads for the library; 0 = <see cref="Environment.ProcessorCount"/>.</param>
    /// <param name="parallelism">How many callers will multiply at once (auto measures that way).</param>
    /// <param name="auto">How auto measures and caches; null: <see cref="GemmAuto"/>'s defaults.</param>
    public static GemmSelection Select(string name, int threads, int parallelism = 1, GemmAuto? auto = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        if (threads == 0) threads = Environment.ProcessorCount;
        switch (name.Trim().ToLowerInvariant())
        {
            case "mkl": return new(new MklGemmProvider(threads), "mkl: asked for by name");
            case "openblas": return new(new OpenBlasGemmProvider(threads), "openblas: asked for by name");
            case "managed": return new(new ManagedGemmProvider(threads), "managed: asked for by name");
            case "auto": return Auto(threads, Math.Max(1, parallelism), auto ?? new GemmAuto());
            default:
                throw new ArgumentException($"unknown GEMM provider '{name}'; known providers: {string.Join(", ", Names)}");
        }
    }

    private static GemmSelection Auto(int threads, int parallelism, GemmAuto auto)
    {
        var skipped = new List<string>();
        var loaded = new List<IGemmProvider>();
        try
        {
            loaded.Add(new MklGemmProvider(threads));
        }
        catch (GemmProviderException e)
        {
            skipped.Add($"mkl not loadable ({FirstReason(e)})");
        }
        try
        {
            loaded.Add(new OpenBlasGemmProvider(threads));
        }
        catch (GemmProviderException e)
        {
            skipped.Add($"openblas not loadable ({FirstReason(e)})");
        }
        string prefix = skipped.Count == 0 ? "auto" : $"auto: {string.Join("; ", skipped)}";
        if (loaded.Count == 0) return new(new ManagedGemmProvider(threads), $"{prefix}; managed provider used");
        return auto.Choose(loaded, parallelism, prefix);
    }

    // One line of the load trace: a library that loaded but lacked something (an export, the OpenMP runtime) says
    // most; otherwise the first attempt, the plain soname, says why as well as any.
    private static string FirstReason(GemmProviderException e)
    {
        var attempts = e.Message.Split(Environment.NewLine).Where(line => line.StartsWith("  ", StringComparison.Ordinal))
            .Select(line => line.Trim()).ToList();
        return attempts.LastOrDefault(line => line.Contains("loaded, but", StringComparison.Ordinal) || line.Contains("libiomp5", StringComparison.Ordinal))
            ?? attempts.FirstOrDefault() ?? e.Message;
    }
}
