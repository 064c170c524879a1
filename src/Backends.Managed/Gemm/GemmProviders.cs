namespace Lockstep.Backends.Managed.Gemm;

/// <summary>A chosen GEMM provider and why it was chosen ("mkl: asked for by name", "auto: mkl loaded").</summary>
public sealed record GemmSelection(IGemmProvider Provider, string Reason);

/// <summary>
/// Picks a GEMM provider by name. An explicit name (mkl, openblas, managed) loads that provider or throws
/// <see cref="GemmProviderException"/>, never falling back; "auto" tries MKL, then OpenBLAS, then the managed
/// provider, and records what it tried.
/// </summary>
public static class GemmProviders
{
    public static IReadOnlyList<string> Names { get; } = ["auto", "mkl", "openblas", "managed"];

    /// <param name="name">auto | mkl | openblas | managed (case-insensitive).</param>
    /// <param name="threads">Threads for the library; 0 = <see cref="Environment.ProcessorCount"/>.</param>
    public static GemmSelection Select(string name, int threads)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        if (threads == 0) threads = Environment.ProcessorCount;
        switch (name.Trim().ToLowerInvariant())
        {
            case "mkl": return new(new MklGemmProvider(threads), "mkl: asked for by name");
            case "openblas": return new(new OpenBlasGemmProvider(threads), "openblas: asked for by name");
            case "managed": return new(new ManagedGemmProvider(threads), "managed: asked for by name");
            case "auto": return Auto(threads);
            default:
                throw new ArgumentException($"unknown GEMM provider '{name}'; known providers: {string.Join(", ", Names)}");
        }
    }

    private static GemmSelection Auto(int threads)
    {
        var skipped = new List<string>();
        try
        {
            return new(new MklGemmProvider(threads), "auto: mkl loaded");
        }
        catch (GemmProviderException e)
        {
            skipped.Add($"mkl not loadable ({FirstReason(e)})");
        }
        try
        {
            return new(new OpenBlasGemmProvider(threads), $"auto: {string.Join("; ", skipped)}; openblas loaded");
        }
        catch (GemmProviderException e)
        {
            skipped.Add($"openblas not loadable ({FirstReason(e)})");
        }
        return new(new ManagedGemmProvider(threads), $"auto: {string.Join("; ", skipped)}; managed provider used");
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
