using Lockstep.Backends.Managed;

namespace Lockstep.Tests;

public sealed class PoolingTests : IDisposable
{
    private readonly ManagedBackend _backend = TestSupport.Backend();

    public void Dispose() => _backend.Dispose();

    private PoolResult Pool(double[] x, Shape shape, PoolSpec spec, DType dtype = DType.Float64)
    {
        using var t = _backend.Upload(x, shape, dtype);
        return _backend.Pool2d(t, spec);
    }

    [Fact]
    public void MaxPool_TiesGoToFirstMaximum()
    {
        // Every window of a constant plane ties; the first element in row-major window order wins.
        var shape = Shape.Nchw(1, 1, 4, 4);
        using var x = _backend.Upload(Enumerable.Repeat(1.0, 16).ToArray(), shape, DType.Float32);
        using var result = _backend.Pool2d(x, PoolSpec.Square(PoolMode.Max, 2));
        Assert.Equal([0L, 2, 8, 10], result.Switches!.ToArray<long>());

        // Overlapping windows (F = 3, S = 2) with the tie inside: [5 at (0,1), 5 at (1,0)] → (0,1) wins.
        double[] plane =
        [
            1, 5, 2, 0, 0,
            5, 3, 5, 0, 0,
            0, 0, 0, 0, 0,
        ];
        using var y = Pool(plane, Shape.Nchw(1, 1, 3, 5), PoolSpec.Square(PoolMode.Max, 3, 2));
        Assert.Equal([1L, 7], y.Switches!.ToArray<long>());
        Assert.Equal([5.0, 5.0], y.Y.ToDoubles());
    }

    [Fact]
    public void MaxPool_NaNPropagates()
    {
        double nan = double.NaN;
        double[] plane =
        [
            1, nan, 9, 9,
            nan, 7, 9, 9,
        ];
        using var result = Pool(plane, Shape.Nchw(1, 1, 2, 4), PoolSpec.Square(PoolMode.Max, 2));
        double[] y = result.Y.ToDoubles();
        Assert.True(double.IsNaN(y[0]), $"y[0] = {y[0]}, expected NaN");
        Assert.Equal(9.0, y[1]);
        // libtorch's `val > max || isnan(val)`: among several NaNs the last one is recorded; among equal numbers the first.
        Assert.Equal([4L, 2], result.Switches!.ToArray<long>());
    }

    public static IEnumerable<object[]> WideCases() =>
        from f in new[] { 2, 3 }
        from s in new[] { 1, 2, 3 }
        from p in new[] { 0, 1 }
        from d in new[] { 1, 2 }
        from dtype in new[] { DType.Float32, DType.Float64 }
        where 2 * p <= f
        select new object[] { f, s, p, d, dtype };

    /// <summary>
    /// Planes wide enough for the vector rows (and enough of them for the workers) give the naive loops' results bit for
    /// bit: outputs and switches of max pooling — with ties and NaNs placed in the windows — average and L2; dx split
    /// over two workers equals dx on one (the naive loops sum float32 in double, so theirs may differ by rounding).
    /// </summary>
    [Theory, MemberData(nameof(WideCases))]
    public void Pool2d_WidePlanesMatchNaiveLoops(int f, int s, int p, int d, DType dtype)
    {
        using var backend = new ManagedBackend("auto", 2);
        using var serial = TestSupport.Backend();
        using var naive = new Lockstep.Conformance.Reference.NaiveBackend();
        var shape = Shape.Nchw(3, 5, 23, 71);
        // Values from a few levels make ties common; every 37th element is NaN.
        double[] x = TestSupport.Random((int)shape.Count, 7 * f + s + 11 * p + d)
            .Select((v, i) => i % 37 == 5 ? double.NaN : Math.Round(v * 3)).ToArray();
        foreach (var mode in new[] { PoolMode.Max, PoolMode.Average, PoolMode.L2 })
        {
            var spec = new PoolSpec(mode, f, f, s, s, Padding2d.Symmetric(p, p), SizeRule.Floor, dilationH: d, dilationW: d);
            using var tx = backend.Upload(x, shape, dtype);
            using var nx = naive.Upload(x, shape, dtype);
            using var actual = backend.Pool2d(tx, spec);
            using var expected = naive.Pool2d(nx, spec);
            string what = $"{mode} F{f} S{s} P{p} D{d} {dtype}";
            Assert.True(expected.Y.ToDoubles().AsSpan().SequenceEqual(actual.Y.ToDoubles()), $"{what}: y differs");
            if (mode == PoolMode.Max) Assert.True(expected.Switches!.ToArray<long>().AsSpan().SequenceEqual(actual.Switches!.ToArray<long>()), $"{what}: switches differ");
            double[] dy = TestSupport.Input((int)actual.Y.Shape.Count, 5, dtype);
            using var tdy = backend.Upload(dy, actual.Y.Shape, dtype);
            using var dx = backend.Pool2dBackward(tdy, tx, actual, spec);
            using var sx = serial.Upload(x, shape, dtype);
            using var sdy = serial.Upload(dy, actual.Y.Shape, dtype);
            using var sforward = serial.Pool2d(sx, spec);
            using var sdx = serial.Pool2dBackward(sdy, sx, sforward, spec);
            Assert.True(sdx.ToDoubles().AsSpan().SequenceEqual(dx.ToDoubles()), $"{what}: dx differs");
        }
    }

    [Fact]
    public void MaxPool_NeverChoosesPadding()
    {
        // All inputs negative: a padded zero would win if padding were read.
        var shape = Shape.Nchw(1, 1, 3, 3);
        double[] x = [-5, -4, -3, -2, -1, -6, -7, -8, -9];
        using var result = Pool(x, shape, new PoolSpec(PoolMode.Max, 2, 2, 2, 2, 1, 1, SizeRule.Floor));
        Assert.Equal([-5.0, -3, -2, -1], result.Y.ToDoubles());
        Assert.Equal([0L, 2, 3, 4], result.Switches!.ToArray<long>());
    }

    [Fact]
    public void MaxPool_AllNegativeInfinityRecordsTheWindowsFirstElement()
    {
        double inf = double.NegativeInfinity;
        using var result = Pool([inf, inf, inf, inf], Shape.Nchw(1, 1, 2, 2), PoolSpec.Square(PoolMode.Max, 2));
        Assert.Equal([inf], result.Y.ToDoubles());
        Assert.Equal([0L], result.Switches!.ToArray<long>());
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void MaxPoolBackward_RoutesThroughSwitchesAndAccumulates(DType dtype)
    {
        // F = 3, S = 2 windows overlap: an element that is the maximum of two windows receives both gradients.
        var shape = Shape.Nchw(2, 3, 7, 9);
        var spec = PoolSpec.Square(PoolMode.Max, 3, 2);
        double[] x = TestSupport.Input((int)shape.Count, 31, dtype);
        using var tx = _backend.Upload(x, shape, dtype);
        using var forward = _backend.Pool2d(tx, spec);
        double[] dy = TestSupport.Input((int)forward.Y.Shape.Count, 32, dtype);
        using var tdy = _backend.Upload(dy, forward.Y.Shape, dtype);
        using var dx = _backend.Pool2dBackward(tdy, tx, forward, spec);

        long[] switches = forward.Switches!.ToArray<long>();
        var expected = new double[x.Length];
        int outPlane = 3 * 4, plane = 7 * 9;
        for (int o = 0; o < dy.Length; o++) expected[o / outPlane * plane + (int)switches[o]] += dy[o];
        TestSupport.Close(dx.ToDoubles(), expected, dtype == DType.Float64 ? 0 : 1e-6, "dx");
        // And the switches are the first maximum of each window.
        double[] y = forward.Y.ToDoubles();
        for (int o = 0; o < y.Length; o++) Assert.Equal(y[o], x[o / outPlane * plane + (int)switches[o]]);
    }

    /// <summary>libtorch's avg_pool2d divisor, counted position by position: window positions inside the input,
    /// or with countIncludePad those inside the padded input [−P, H + P).</summary>
    private static double[] NaiveAverage(double[] x, int h, int w, PoolSpec spec, int outH, int outW)
    {
        var y = new double[outH * outW];
        for (int oh = 0; oh < outH; oh++)
        for (int ow = 0; ow < outW; ow++)
        {
            double sum = 0;
            int inside = 0, padded = 0;
            for (int i = 0; i < spec.KernelH; i++)
            for (int j = 0; j < spec.KernelW; j++)
            {
                int ih = oh * spec.StrideH - spec.PadH + i, iw = ow * spec.StrideW - spec.PadW + j;
                if (ih < h + spec.PadH && iw < w + spec.PadW) padded++;
                if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                inside++;
                sum += x[ih * w + iw];
            }
            y[oh * outW + ow] = sum / (spec.CountIncludePad ? padded : inside);
        }
        return y;
    }

    public static IEnumerable<object[]> AverageCases() =>
        from h in new[] { 5, 6, 7 }
        from f in new[] { 2, 3 }
        from s in new[] { 1, 2 }
        from p in new[] { 0, 1 }
        from rule in new[] { SizeRule.Floor, SizeRule.Ceil }
        from include in new[] { false, true }
        where 2 * p <= f
        select new object[] { h, f, s, p, rule, include };

    [Theory, MemberData(nameof(AverageCases))]
    public void AveragePool_DivisorMatchesLibtorch(int h, int f, int s, int p, SizeRule rule, bool countIncludePad)
    {
        int w = h + 1;
        var spec = new PoolSpec(PoolMode.Average, f, f, s, s, p, p, rule, countIncludePad);
        var (outH, outW) = spec.OutputSize(h, w);
        double[] x = TestSupport.Random(h * w, h * 100 + f * 10 + s);
        using var result = Pool(x, Shape.Nchw(1, 1, h, w), spec);
        TestSupport.Close(result.Y.ToDoubles(), NaiveAverage(x, h, w, spec, outH, outW), 1e-15, $"{spec} {rule} include={countIncludePad}");
    }

    [Fact]
    public void AveragePool_CountsPaddingOnlyWhenAsked()
    {
        // 3×3 ones, F = 3, S = 1, P = 1: excluding padding every mean is 1; including it, a corner sees 4 of 9.
        double[] ones = Enumerable.Repeat(1.0, 9).ToArray();
        var shape = Shape.Nchw(1, 1, 3, 3);
        using var exclude = Pool(ones, shape, new PoolSpec(PoolMode.Average, 3, 3, 1, 1, 1, 1));
        using var include = Pool(ones, shape, new PoolSpec(PoolMode.Average, 3, 3, 1, 1, 1, 1, countIncludePad: true));
        Assert.All(exclude.Y.ToDoubles(), v => Assert.Equal(1.0, v, 15));
        Assert.Equal([4 / 9.0, 6 / 9.0, 4 / 9.0, 6 / 9.0, 1, 6 / 9.0, 4 / 9.0, 6 / 9.0, 4 / 9.0], include.Y.ToDoubles());
    }

    [Theory]
    [InlineData(PoolMode.Average, false)]
    [InlineData(PoolMode.Average, true)]
    [InlineData(PoolMode.L2, false)]
    [InlineData(PoolMode.Max, false)]
    public void Pool2dBackward_MatchesFiniteDifferences(PoolMode mode, bool countIncludePad)
    {
        var shape = Shape.Nchw(1, 2, 5, 6);
        var spec = new PoolSpec(mode, 3, 3, 2, 2, 1, 1, SizeRule.Ceil, countIncludePad);
        // Distinct values keep max away from ties, where it is not differentiable.
        double[] x = TestSupport.Random((int)shape.Count, 41).Select((v, i) => v + 0.01 * i).ToArray();
        var (outH, outW) = spec.OutputSize(5, 6);
        double[] r = TestSupport.Random(2 * outH * outW, 42);
        double Loss(double[] xv)
        {
            using var result = Pool(xv, shape, spec);
            return result.Y.ToDoubles().Zip(r, (a, b) => a * b).Sum();
        }
        using var tx = _backend.Upload(x, shape, DType.Float64);
        using var forward = _backend.Pool2d(tx, spec);
        using var dy = _backend.Upload(r, forward.Y.Shape, DType.Float64);
        using var dx = _backend.Pool2dBackward(dy, tx, forward, spec);
        FiniteDifferences.Check(x, Loss, dx.ToDoubles(), $"{spec} dx");
    }

    [Fact]
    public void L2Pool_IsTheNormOfEachWindow()
    {
        double[] x = [3, 4, 0, 0, 1, 2, 0, 0, 2, 4, 0, 0, 0, 0, 0, 0];
        using var result = Pool(x, Shape.Nchw(1, 1, 4, 4), PoolSpec.Square(PoolMode.L2, 2));
        Assert.Equal([Math.Sqrt(9 + 16 + 1 + 4), 0, 2 * Math.Sqrt(5), 0], result.Y.ToDoubles());
        Assert.Null(result.Switches);
    }

    [Fact]
    public void L2PoolBackward_IsZeroWhereTheNormIsZero()
    {
        var shape = Shape.Nchw(1, 1, 2, 2);
        var spec = PoolSpec.Square(PoolMode.L2, 2);
        using var x = _backend.Zeros(shape, DType.Float32);
        using var forward = _backend.Pool2d(x, spec);
        using var dy = _backend.Upload<float>([1f], Shape.Nchw(1, 1, 1, 1));
        using var dx = _backend.Pool2dBackward(dy, x, forward, spec);
        Assert.Equal([0f, 0, 0, 0], dx.ToArray<float>());
    }

    [Fact]
    public void Pool2dBackward_ThrowsForMissingSwitches()
    {
        var shape = Shape.Nchw(1, 1, 4, 4);
        var spec = PoolSpec.Square(PoolMode.Max, 2);
        using var x = _backend.Zeros(shape, DType.Float32);
        using var y = _backend.Zeros(Shape.Nchw(1, 1, 2, 2), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => _backend.Pool2dBackward(y, x, new PoolResult(y, null), spec));
        Assert.Contains("switches", e.Message);
    }

    [Fact]
    public void Pool2dBackward_ThrowsForSwitchesOutsideThePlane()
    {
        var shape = Shape.Nchw(1, 1, 4, 4);
        var spec = PoolSpec.Square(PoolMode.Max, 2);
        using var x = _backend.Zeros(shape, DType.Float32);
        using var y = _backend.Zeros(Shape.Nchw(1, 1, 2, 2), DType.Float32);
        using var switches = _backend.Upload<long>([0, 1, 2, 16], Shape.Nchw(1, 1, 2, 2));
        var e = Assert.Throws<ArgumentException>(() => _backend.Pool2dBackward(y, x, new PoolResult(y, switches), spec));
        Assert.Contains("outside its 4×4 input plane", e.Message);
    }
}
