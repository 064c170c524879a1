namespace Lockstep.Bench.Tests;

/// <summary>The timing arithmetic of <see cref="Measure"/> and <see cref="Timing"/>, on clocks that return set durations.</summary>
public sealed class MeasurementTests
{
    [Fact]
    public void TimingOf_TakesTheMedianMinAndMax()
    {
        var timing = Timing.Of([3, 9, 5, 1, 7]);

        Assert.Equal(5, timing.MedianMs, 9);
        Assert.Equal(1, timing.MinMs, 9);
        Assert.Equal(9, timing.MaxMs, 9);
        Assert.Equal(5, timing.Repeats);
    }

    [Fact]
    public void Warm_RunsTheGivenCallsOrUntilTheTimeHasPassed()
    {
        int calls = 0;
        Measure.Warm(() => { calls++; return TimeSpan.Zero; }, new WarmUp(Iterations: 4, TimeSpan.Zero));
        Assert.Equal(4, calls);

        calls = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Measure.Warm(() => { calls++; Thread.Sleep(1); return TimeSpan.Zero; }, new WarmUp(null, TimeSpan.FromMilliseconds(20)));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(20), $"warm-up stopped after {clock.Elapsed.TotalMilliseconds} ms");
        Assert.True(calls >= 1);
    }

    /// <summary>
    /// Backward-data is the median of the rounds' whole − weights-only differences: a layer without weights reports its
    /// whole backward, and a median not above zero (weights-only as slow as the whole) reads as not measured.
    /// </summary>
    [Fact]
    public void BackwardData_IsTheMedianDifference_OrUnresolvedBelowTheNoise()
    {
        var whole = Timing.Of([5, 6, 7]);
        Assert.Equal(6, Comparison.BackwardDataMs(null, whole));
        Assert.Equal(2, Comparison.BackwardDataMs(Timing.Of([1, 2, 3]), whole));
        Assert.Null(Comparison.BackwardDataMs(Timing.Of([-1, 0, 3]), whole));
        Assert.Null(Comparison.BackwardDataMs(Timing.Of([-4, -1, 2]), whole));
    }

    [Fact]
    public void Timing_MedianOfAnEvenCountIsTheMeanOfTheMiddleTwo()
    {
        var timing = Timing.Of([4, -1, 2, 10]);
        Assert.Equal(3, timing.MedianMs, 9);
        Assert.Equal(-1, timing.MinMs, 9);
    }
}
