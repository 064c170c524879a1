using Lockstep.Backends.Managed;
using Lockstep.Conformance.Reference;
using Lockstep.Layers;

namespace Lockstep.Bench.Tests;

/// <summary>The peak that <see cref="Comparison"/> sets its shares against, and the line that reports its samples.</summary>
public sealed class ComparisonPeakTests
{
    // 32 channels both ways: the managed backend multiplies matrices (Winograd's products), whose GEMM phase it reports.
    private const string Spec = "INPUT 16x16x32 -> CONV3-32 -> RELU -> POOL2 -> FC-3";

    [Fact]
    public void Run_ProbesThePeakAfterTheWarmUpsAndAfterTheRounds_AndTakesSharesAgainstTheHighest()
    {
        using var managed = new ManagedBackend("managed", 1);
        using var second = new NaiveBackend();
        double[] probes = [150, 120];
        int probed = 0;
        var settings = new ComparisonSettings(NetworkSpec.Parse(Spec), [managed, second], Batch: 2, DType.Float32, Seed: 1,
            Repeats: 3, new WarmUp(1, TimeSpan.Zero), Tolerance: 1e-4, PeakGflops: 100, PeakProbe: () => probes[probed++]);
        var comparison = new Comparison(settings);

        var (layers, _) = comparison.Run();

        Assert.Equal(2, probed);
        Assert.Equal([100, 150, 120], comparison.PeakSamples);
        Assert.Equal(150, comparison.Peak);
        var conv = layers[0].Results[managed.Name];
        Assert.NotNull(conv.ForwardGflops);
        Assert.Equal(conv.ForwardGflops!.Value / 150, conv.ForwardPeakShare!.Value, 12);
        Assert.NotNull(conv.GemmForwardGflops);
        Assert.Equal(conv.GemmForwardGflops!.Value / 150, conv.GemmForwardPeakShare!.Value, 12);
    }

    /// <summary>
    /// The backends are timed side by side: every warm-up first, then in each round every backend in turn, the first of
    /// a round taking turns; the training step likewise after the layers. The progress callback sees each step once,
    /// as many as <see cref="Comparison.Steps"/> announces.
    /// </summary>
    [Fact]
    public void Run_TimesTheBackendsSideBySide_RoundByRound_TheFirstTakingTurns()
    {
        using var managed = new ManagedBackend("managed", 1);
        using var second = new NaiveBackend();
        var settings = new ComparisonSettings(NetworkSpec.Parse(Spec), [managed, second], Batch: 2, DType.Float32, Seed: 1,
            Repeats: 3, new WarmUp(1, TimeSpan.Zero), Tolerance: 1e-4, PeakGflops: 100, PeakProbe: () => 100);
        var comparison = new Comparison(settings);
        var steps = new List<string>();

        comparison.Run(steps.Add);

        Assert.Equal(comparison.Steps, steps.Count);
        string m = managed.Name, n = second.Name;
        var timing = steps.Where(s => s.Contains(": round ", StringComparison.Ordinal) || s.StartsWith("peak", StringComparison.Ordinal)).ToList();
        Assert.Equal(["peak after the warm-ups", $"{m}: round 1 of 3", $"{n}: round 1 of 3", $"{n}: round 2 of 3", $"{m}: round 2 of 3",
            $"{m}: round 3 of 3", $"{n}: round 3 of 3", "peak after the rounds"], timing);
        int lastWarmUp = steps.FindLastIndex(s => s.Contains(": warm-up ", StringComparison.Ordinal));
        Assert.True(lastWarmUp < steps.IndexOf("peak after the warm-ups"), "every warm-up before the rounds");
        Assert.Equal(4 * 2, steps.Count(s => s.Contains(": warm-up ", StringComparison.Ordinal)));   // 4 layers, 2 backends
        Assert.Equal([$"{m}: training step", $"{n}: training step"], steps.Where(s => s.EndsWith("training step", StringComparison.Ordinal)));
    }

    [Fact]
    public void Run_WithoutAProbe_KeepsThePeakItWasGiven()
    {
        using var managed = new ManagedBackend("managed", 1);
        var settings = new ComparisonSettings(NetworkSpec.Parse(Spec), [managed], Batch: 2, DType.Float32, Seed: 1,
            Repeats: 1, new WarmUp(1, TimeSpan.Zero), Tolerance: 1e-4, PeakGflops: 100);
        var comparison = new Comparison(settings);

        comparison.Run();

        Assert.Equal([100], comparison.PeakSamples);
        Assert.Equal(100, comparison.Peak);
    }

    [Theory]
    [InlineData(new[] { 174.2, 229.4, 231.0 }, "peak: 174.2 GFLOP/s before the run, 229.4 after the warm-ups, 231.0 after the rounds; shares against 231.0 (the samples lie more than 10% apart")]
    [InlineData(new[] { 229.4, 231.0, 228.1 }, "peak: 229.4 GFLOP/s before the run, 231.0 after the warm-ups, 228.1 after the rounds; shares against 231.0")]
    public void PeakLine_NamesEverySampleAndWarnsWhenTheyDisagree(double[] samples, string expected)
    {
        var report = Report(samples);

        string? line = CompareTables.PeakLine(report);

        Assert.NotNull(line);
        Assert.StartsWith(expected, line, StringComparison.Ordinal);
        Assert.Equal(samples.Min() < 0.9 * samples.Max(), line.Contains("more than 10% apart", StringComparison.Ordinal));
    }

    [Fact]
    public void PeakLine_OneSample_IsNotPrinted() => Assert.Null(CompareTables.PeakLine(Report([230.0])));

    private static CompareReport Report(double[] samples) => new(
        new MachineReport("cpu", 2, samples.Max()) { PeakSamplesGflops = samples },
        new ConfigReport("net", [1, 1, 1], 1, "Float32", 1, 1, "warm", 1e-4,
            [new BackendInfo("managed", "managed"), new BackendInfo("torch", "torch")]),
        [], new Dictionary<string, StepReport>());
}
