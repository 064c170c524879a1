namespace Lockstep.Bench.Tests;

/// <summary>The timing arithmetic of <see cref="Measure"/>, on clocks that return set durations.</summary>
public sealed class MeasurementTests
{
    [Fact]
    public void Pairs_AlternatesTheCallsAndTakesTheMedianOfTheDifferences()
    {
        // a drifts between 10 and 50 ms, b is always 4 ms less than the a just before it; calls go a, b, a, b, …
        var calls = new List<char>();
        double[] aMs = [10, 50, 30, 20, 40];
        int ia = 0, ib = 0;
        var (a, b, difference) = Measure.Pairs(
            () => { calls.Add('a'); return TimeSpan.FromMilliseconds(aMs[ia++ % aMs.Length]); },
            () => { calls.Add('b'); return TimeSpan.FromMilliseconds(aMs[ib++ % aMs.Length] - 4); },
            new WarmUp(Iterations: 0, TimeSpan.Zero), repeats: 5);

        Assert.Equal("ababababab", new string([.. calls]));
        Assert.Equal(30, a.MedianMs, 9);
        Assert.Equal(26, b.MedianMs, 9);
        Assert.Equal(4, difference.MedianMs, 9);
        Assert.Equal(4, difference.MinMs, 9);
        Assert.Equal(4, difference.MaxMs, 9);
        Assert.Equal(5, difference.Repeats);
    }

    [Fact]
    public void Pairs_DifferenceOfMediansWouldMislead_MedianOfDifferencesDoesNot()
    {
        // The machine turns loud (×3) between a and b of the third pair: the medians are 30 and 7, their difference
        // 23 ms; the pairs' differences 3, 3, 23, 3, 3, whose median is the true 3.
        double[] aMs = [10, 10, 30, 30, 30], bMs = [7, 7, 7, 27, 27];
        int ia = 0, ib = 0;
        var (a, b, difference) = Measure.Pairs(
            () => TimeSpan.FromMilliseconds(aMs[ia++]), () => TimeSpan.FromMilliseconds(bMs[ib++]),
            new WarmUp(Iterations: 0, TimeSpan.Zero), repeats: 5);

        Assert.Equal(30, a.MedianMs, 9);
        Assert.Equal(7, b.MedianMs, 9);
        Assert.Equal(3, difference.MedianMs, 9);
    }

    [Fact]
    public void Pairs_WarmsUpBothBeforeMeasuring()
    {
        int ca = 0, cb = 0;
        var (a, _, _) = Measure.Pairs(
            () => TimeSpan.FromMilliseconds(++ca), () => TimeSpan.FromMilliseconds(++cb),
            new WarmUp(Iterations: 3, TimeSpan.Zero), repeats: 2);

        Assert.Equal((5, 5), (ca, cb));
        Assert.Equal(4.5, a.MedianMs, 9);   // the calls after the three warm-up ones: 4 and 5
    }
}
