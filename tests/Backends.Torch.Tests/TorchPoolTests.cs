using static Lockstep.Backends.Torch.Tests.TorchTestSupport;

namespace Lockstep.Backends.Torch.Tests;

public class TorchPoolTests
{
    private static TorchBackend B => Backend;

    private static readonly double[] Plane =
    [
        1, 9, 2, 3,
        4, 5, 8, 6,
        7, 0, 1, 2,
        3, 4, 5, 9,
    ];

    // The switch is the index h·W + w within each input plane (not offset by the plane), as libtorch records it.
    [Fact]
    public void Pool2d_MaxSwitchesAreRowMajorIndexWithinPlane()
    {
        double[] data = [.. Plane, .. Plane.Select(v => v + 100), .. Plane.Select(v => -v + 50), .. Plane];
        using var x = B.F64(data, 2, 2, 4, 4);

        using var pool = B.Pool2d(x, PoolSpec.Square(PoolMode.Max, 2));

        Assert.Equal(new Shape(2, 2, 2, 2), pool.Switches!.Shape);
        Assert.Equal(DType.Int64, pool.Switches.DType);
        Assert.Equal([1L, 6, 8, 15, 1, 6, 8, 15, 0, 2, 9, 10, 1, 6, 8, 15], pool.Switches.ToArray<long>());
        Assert.Equal([9d, 8, 7, 9, 109, 108, 107, 109, 49, 48, 50, 49, 9, 8, 7, 9], pool.Y.ToArray<double>());
    }

    // Ties: the first maximum in row-major window order wins (7 at (0,3) over 7 at (1,2)).
    [Fact]
    public void Pool2d_MaxTiesGoToFirstMaximum()
    {
        using var x = B.F32([5, 5, 1, 7, 5, 5, 7, 1], 1, 1, 2, 4);

        using var pool = B.Pool2d(x, PoolSpec.Square(PoolMode.Max, 2));

        Assert.Equal([0L, 3], pool.Switches!.ToArray<long>());
    }

    [Fact]
    public void Pool2d_MaxTiesAcrossOverlappingWindowsGoToFirstMaximum()
    {
        using var x = B.F64(Enumerable.Repeat(2d, 25).ToArray(), 1, 1, 5, 5);

        using var pool = B.Pool2d(x, PoolSpec.Square(PoolMode.Max, 3, 2));

        Assert.Equal([0L, 2, 10, 12], pool.Switches!.ToArray<long>());
    }

    [Fact]
    public void Pool2d_MaxNaNWinsOverNumbers()
    {
        using var x = B.F32([1, float.NaN, 3, 4, 5, 6, 7, 8], 1, 1, 2, 4);

        using var pool = B.Pool2d(x, PoolSpec.Square(PoolMode.Max, 2));

        var y = pool.Y.ToArray<float>();
        Assert.True(float.IsNaN(y[0]), $"y[0] = {y[0]}");
        Assert.Equal(8f, y[1]);
        Assert.Equal([1L, 7], pool.Switches!.ToArray<long>());
    }

    // libtorch's CPU kernel takes a NaN whenever it sees one (`val > max || isnan(val)`), so of several NaNs the
    // last in row-major order is recorded.
    [Fact]
    public void Pool2d_MaxWithSeveralNaNsRecordsTheLast()
    {
        using var x = B.F64([double.NaN, 1, 2, double.NaN], 1, 1, 2, 2);

        using var pool = B.Pool2d(x, PoolSpec.Square(PoolMode.Max, 2));

        Assert.True(double.IsNaN(pool.Y.ToArray<double>()[0]));
        Assert.Equal([3L], pool.Switches!.ToArray<long>());
    }

    [Fact]
    public void Pool2d_MaxNeverPicksPadding()
    {
        using var x = B.F64([-1, -2, -3, -4], 1, 1, 2, 2);

        using var pool = B.Pool2d(x, PoolSpec.Square(PoolMode.Max, 2, 2, 1));

        Assert.Equal([-1d, -2, -3, -4], pool.Y.ToArray<double>());
        Assert.Equal([0L, 1, 2, 3], pool.Switches!.ToArray<long>());
    }

    [Fact]
    public void Pool2d_CeilRuleAddsPartialWindow()
    {
        using var x = B.F64(Seq(25), 1, 1, 5, 5);

        using var pool = B.Pool2d(x, PoolSpec.Square(PoolMode.Max, 2, 2, rule: SizeRule.Ceil));

        Assert.Equal(new Shape(1, 1, 3, 3), pool.Y.Shape);
        Assert.Equal([7d, 9, 10, 17, 19, 20, 22, 24, 25], pool.Y.ToArray<double>());
    }

    [Fact]
    public void Pool2dBackward_MaxAccumulatesOverlappingWindows()
    {
        using var x = B.F64([1, 2, 3, 4, 9, 5, 6, 7, 8], 1, 1, 3, 3);
        var spec = PoolSpec.Square(PoolMode.Max, 2, 1);
        using var pool = B.Pool2d(x, spec);
        using var dy = B.F64([1, 2, 3, 4], 1, 1, 2, 2);

        using var dx = B.Pool2dBackward(dy, x, pool, spec);

        Assert.Equal([0d, 0, 0, 0, 10, 0, 0, 0, 0], dx.ToArray<double>());
    }

    // Backward follows the switches it is given, not a recomputed maximum.
    [Fact]
    public void Pool2dBackward_MaxRoutesThroughRecordedSwitches()
    {
        using var x = B.F64([1, 2, 3, 4, 9, 5, 6, 7, 8], 1, 1, 3, 3);
        var spec = PoolSpec.Square(PoolMode.Max, 2, 1);
        using var y = B.F64([0, 0, 0, 0], 1, 1, 2, 2);
        using var switches = B.Upload<long>([0, 2, 6, 8], new Shape(1, 1, 2, 2));
        using var dy = B.F64([1, 2, 3, 4], 1, 1, 2, 2);

        using var dx = B.Pool2dBackward(dy, x, new PoolResult(y, switches), spec);

        Assert.Equal([1d, 0, 2, 0, 0, 0, 3, 0, 4], dx.ToArray<double>());
    }

    [Fact]
    public void Pool2dBackward_ThrowsForMissingSwitches()
    {
        using var x = B.F64(Seq(16), 1, 1, 4, 4);
        using var y = B.F64(new double[4], 1, 1, 2, 2);
        using var dy = B.F64(new double[4], 1, 1, 2, 2);
        var spec = PoolSpec.Square(PoolMode.Max, 2);

        var e = Assert.Throws<ArgumentException>(() => B.Pool2dBackward(dy, x, new PoolResult(y, null), spec));

        Assert.Contains("needs the forward's switches", e.Message);
    }

    [Fact]
    public void Pool2dBackward_ThrowsForFloatingSwitches()
    {
        using var x = B.F64(Seq(16), 1, 1, 4, 4);
        using var y = B.F64(new double[4], 1, 1, 2, 2);
        using var switches = B.F64(new double[4], 1, 1, 2, 2);
        using var dy = B.F64(new double[4], 1, 1, 2, 2);
        var spec = PoolSpec.Square(PoolMode.Max, 2);

        var e = Assert.Throws<ArgumentException>(() => B.Pool2dBackward(dy, x, new PoolResult(y, switches), spec));

        Assert.Contains("switches must be Int64", e.Message);
    }

    [Fact]
    public void Pool2d_AverageMeansEachWindow()
    {
        using var x = B.F64(Seq(16), 1, 1, 4, 4);

        using var pool = B.Pool2d(x, PoolSpec.Square(PoolMode.Average, 2));

        Assert.Null(pool.Switches);
        Assert.Equal([3.5, 5.5, 11.5, 13.5], pool.Y.ToArray<double>());
    }

    [Theory]
    [InlineData(false, new[] { 1d, 2, 3, 4 })]
    [InlineData(true, new[] { 0.25, 0.5, 0.75, 1 })]
    public void Pool2d_AverageCountsPaddingOnlyWhenAsked(bool countIncludePad, double[] expected)
    {
        using var x = B.F64([1, 2, 3, 4], 1, 1, 2, 2);
        var spec = new PoolSpec(PoolMode.Average, 2, 2, 2, 2, 1, 1, countIncludePad: countIncludePad);

        using var pool = B.Pool2d(x, spec);
        using var dy = B.F64([1, 2, 3, 4], 1, 1, 2, 2);
        using var dx = B.Pool2dBackward(dy, x, pool, spec);

        Assert.Equal(expected, pool.Y.ToArray<double>());
        Assert.Equal(expected, dx.ToArray<double>());
    }

    [Fact]
    public void Pool2dBackward_AverageSpreadsEvenly()
    {
        using var x = B.F64(Seq(16), 1, 1, 4, 4);
        var spec = PoolSpec.Square(PoolMode.Average, 2);
        using var pool = B.Pool2d(x, spec);
        using var dy = B.F64([4, 8, 12, 16], 1, 1, 2, 2);

        using var dx = B.Pool2dBackward(dy, x, pool, spec);

        Assert.Equal([1d, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], dx.ToArray<double>());
    }

    [Fact]
    public void Pool2d_L2IsRootOfSumOfSquares()
    {
        using var x = B.F64([3, 0, 1, 2, 4, 0, 2, 4], 1, 1, 2, 4);

        using var pool = B.Pool2d(x, PoolSpec.Square(PoolMode.L2, 2));

        Assert.Null(pool.Switches);
        Assert.Equal([5d, 5], pool.Y.ToArray<double>());
    }

    // dx = dy·x/y per window: [10·(3,0,4,0)/5 | 20·(1,2,2,4)/5].
    [Fact]
    public void Pool2dBackward_L2IsDyTimesXOverY()
    {
        using var x = B.F64([3, 0, 1, 2, 4, 0, 2, 4], 1, 1, 2, 4);
        var spec = PoolSpec.Square(PoolMode.L2, 2);
        using var pool = B.Pool2d(x, spec);
        using var dy = B.F64([10, 20], 1, 1, 1, 2);

        using var dx = B.Pool2dBackward(dy, x, pool, spec);

        Assert.Equal([6d, 0, 4, 8, 8, 0, 8, 16], dx.ToArray<double>());
    }

    [Fact]
    public void Pool2dBackward_L2GivesZeroNotNaNWhereOutputIsZero()
    {
        using var x = B.F32([0, 0, 0, 0, 3, 4, 0, 0], 1, 2, 2, 2);
        var spec = PoolSpec.Square(PoolMode.L2, 2);
        using var pool = B.Pool2d(x, spec);
        using var dy = B.F32([1, 1], 1, 2, 1, 1);

        using var dx = B.Pool2dBackward(dy, x, pool, spec);

        Assert.Equal([0f, 5], pool.Y.ToArray<float>());
        Assert.Equal([0f, 0, 0, 0, 0.6f, 0.8f, 0, 0], dx.ToArray<float>());
    }

    [Fact]
    public void Pool2d_L2PaddingCountsAsZeros()
    {
        using var x = B.F64([3, -4, 0, 2], 1, 1, 2, 2);
        var spec = PoolSpec.Square(PoolMode.L2, 2, 2, 1);

        using var pool = B.Pool2d(x, spec);
        using var dy = B.F64([1, 1, 1, 1], 1, 1, 2, 2);
        using var dx = B.Pool2dBackward(dy, x, pool, spec);

        Assert.Equal([3d, 4, 0, 2], pool.Y.ToArray<double>());
        Assert.Equal([1d, -1, 0, 1], dx.ToArray<double>());
    }

    [Theory]
    [InlineData(PoolMode.L2)]
    [InlineData(PoolMode.Average)]
    [InlineData(PoolMode.Max)]
    public void Pool2dBackward_AgreesWithFiniteDifferences(PoolMode mode)
    {
        var spec = PoolSpec.Square(mode, 3, 2, 1);
        var xData = Random(2 * 2 * 5 * 5, seed: 21);
        var dyData = Random(2 * 2 * 3 * 3, seed: 22);
        using var x = B.F64(xData, 2, 2, 5, 5);
        using var dy = B.F64(dyData, 2, 2, 3, 3);
        using var pool = B.Pool2d(x, spec);

        using var dx = B.Pool2dBackward(dy, x, pool, spec);

        double Loss(double[] xs)
        {
            using var xt = B.F64(xs, 2, 2, 5, 5);
            using var p = B.Pool2d(xt, spec);
            return p.Y.ToArray<double>().Zip(dyData, (a, d) => a * d).Sum();
        }
        Close(TorchConvTests.Numeric(xData, Loss, 1e-6), dx.ToArray<double>(), 1e-7, $"dx ({mode})");
    }
}
