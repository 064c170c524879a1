using System.Diagnostics;

namespace Lockstep.Bench;

/// <summary>Median, min and max of repeated runs, in milliseconds.</summary>
public sealed record Timing(double MedianMs, double MinMs, double MaxMs, int Repeats)
{
    public static Timing Of(IReadOnlyList<double> samplesMs)
    {
        if (samplesMs.Count == 0) throw new ArgumentException("no samples");
        var sorted = samplesMs.Order().ToArray();
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        return new Timing(median, sorted[0], sorted[^1], n);
    }
}

/// <summary>
/// How long to warm up before measuring: a fixed number of calls when <see cref="Iterations"/> is set, else
/// calls until <see cref="MinTime"/> has passed, so that the JIT has promoted the hot code to tier 1
/// (a few calls leave tier-0 code, which times the JIT rather than the kernels).
/// </summary>
public sealed record WarmUp(int? Iterations, TimeSpan MinTime)
{
    public static WarmUp Default { get; } = new(null, TimeSpan.FromSeconds(0.5));

    public override string ToString() =>
        Iterations is { } n ? $"{n} warm-up call{(n == 1 ? "" : "s")}" : $"≥ {MinTime.TotalSeconds:0.##} s warm-up";
}

public static class Measure
{
    /// <summary>
    /// Runs <paramref name="run"/> for the warm-up alone (no samples). Each call times only its own work and returns
    /// the elapsed time, so that setup and clean-up stay outside the clock.
    /// </summary>
    public static void Warm(Func<TimeSpan> run, WarmUp warmUp)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(warmUp);
        if (warmUp.Iterations is { } n)
        {
            for (int i = 0; i < n; i++) run();
        }
        else
        {
            var clock = Stopwatch.StartNew();
            do run();
            while (clock.Elapsed < warmUp.MinTime);
        }
    }

    /// <summary>Times <paramref name="work"/>, waiting for <paramref name="backend"/>'s queued work before stopping the clock.</summary>
    public static TimeSpan Once(IBackend backend, Action work)
    {
        long start = Stopwatch.GetTimestamp();
        work();
        backend.Synchronize();
        return Stopwatch.GetElapsedTime(start);
    }
}
