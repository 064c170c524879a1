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

    public static IEnumerable<object[]> NarrowCases() =>
        from w in new[] { 8, 14, 17, 23, 31 }
        from fs in new[] { (2, 2), (3, 2), (3, 1), (2, 1) }
        from p in new[] { 0, 1 }
        from dtype in new[] { DType.Float32, DType.Float64 }
        where 2 * p <= fs.Item1
        select new object[] { w, fs.Item1, fs.Item2, p, dtype };

    /// <summary>
    /// Rows of fewer outputs than a vector holds (VGG16's pool5: 14 → 7) fill a vector partly, its other lanes reading
    /// on into the next row; the last rows of the last plane, where such a read would pass the end, go window by window.
    /// Outputs and switches equal the naive loops' bit for bit, with ties and NaNs.
    /// </summary>
    [Theory, MemberData(nameof(NarrowCases))]
    public void MaxPool_NarrowRowsMatchNaiveLoops(int w, int f, int s, int p, DType dtype)
    {
        var shape = Shape.Nchw(2, 3, 9, w);
        double[] x = TestSupport.Random((int)shape.Count, 3 * w + f + s + p)
            .Select((v, i) => i % 29 == 4 ? double.NaN : Math.Round(v * 3)).ToArray();
        var spec = new PoolSpec(PoolMode.Max, f, f, s, s, Padding2d.Symmetric(p, p), SizeRule.Floor);
        using var tx = _backend.Upload(x, shape, dtype);
        using var actual = PoolLikeNaiveLoops(_backend, tx, x, spec, $"W{w} F{f} S{s} P{p} {dtype}");
    }

    /// <summary>backend.Pool2d(tx, spec), asserted equal bit for bit to the naive loops' on the same values (y, and switches for max).</summary>
    private static PoolResult PoolLikeNaiveLoops(IBackend backend, ITensor tx, double[] x, PoolSpec spec, string what)
    {
        using var naive = new Lockstep.Conformance.Reference.NaiveBackend();
        using var nx = naive.Upload(x, tx.Shape, tx.DType);
        using var expected = naive.Pool2d(nx, spec);
        var actual = backend.Pool2d(tx, spec);
        Assert.True(expected.Y.ToDoubles().AsSpan().SequenceEqual(actual.Y.ToDoubles()), $"{what}: y differs");
        if (spec.Mode == PoolMode.Max)
        {
            Assert.True(expected.Switches!.ToArray<long>().AsSpan().SequenceEqual(actual.Switches!.ToArray<long>()), $"{what}: switches differ");
        }
        return actual;
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
        var shape = Shape.Nchw(3, 5, 23, 71);
        // Values from a few levels make ties common; every 37th element is NaN.
        double[] x = TestSupport.Random((int)shape.Count, 7 * f + s + 11 * p + d)
            .Select((v, i) => i % 37 == 5 ? double.NaN : Math.Round(v * 3)).ToArray();
        foreach (var mode in new[] { PoolMode.Max, PoolMode.Average, PoolMode.L2 })
        {
            var spec = new PoolSpec(mode, f, f, s, s, Padding2d.Symmetric(p, p), SizeRule.Floor, dilationH: d, dilationW: d);
            using var tx = backend.Upload(x, shape, dtype);
            string what = $"{mode} F{f} S{s} P{p} D{d} {dtype}";
            using var actual = PoolLikeNaiveLoops(backend, tx, x, spec, what);
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

    public static IEnumerable<object[]> BackwardCases() =>
        from f in new[] { 2, 3 }
        from s in new[] { 1, 2 }
        from p in new[] { 0, 1 }
        from rule in new[] { SizeRule.Floor, SizeRule.Ceil }
        from w in new[] { 35, 70 }
        from dtype in new[] { DType.Float32, DType.Float64 }
        where 2 * p <= f
        select new object[] { f, s, p, rule, w, dtype };

    /// <summary>
    /// Max-pool dx equals, bit for bit, the scatter dx[switch] += dy into a cleared plane in output order (summed in the
    /// tensor's precision), on one worker and on two: windows that tile (2×2/2), overlap (3×3/2) or slide (stride 1),
    /// padding, ceil mode, widths that leave vector tails, ties and NaNs in x and a NaN and a −0 in dy.
    /// </summary>
    [Theory, MemberData(nameof(BackwardCases))]
    public void MaxPoolBackward_EqualsScatterThroughSwitches(int f, int s, int p, SizeRule rule, int w, DType dtype)
    {
        using var two = new ManagedBackend("auto", 2);
        var shape = Shape.Nchw(2, 9, 23, w);
        var spec = new PoolSpec(PoolMode.Max, f, f, s, s, Padding2d.Symmetric(p, p), rule);
        double[] x = TestSupport.Random((int)shape.Count, 13 * f + s + 7 * w)
            .Select((v, i) => i % 41 == 3 ? double.NaN : Math.Round(v * 3)).ToArray();
        string what = $"F{f} S{s} P{p} {rule} W{w} {dtype}";
        double[]? first = null;
        foreach (var backend in new[] { _backend, two })
        {
            using var tx = backend.Upload(x, shape, dtype);
            using var forward = backend.Pool2d(tx, spec);
            var ys = forward.Y.Shape;
            double[] dy = TestSupport.Input((int)ys.Count, 3 + w, dtype);
            dy[5] = double.NaN;
            dy[17] = -0.0;
            using var tdy = backend.Upload(dy, ys, dtype);
            using var dx = backend.Pool2dBackward(tdy, tx, forward, spec);
            long[] switches = forward.Switches!.ToArray<long>();
            int outPlane = ys.H * ys.W, plane = 23 * w;
            var expected = new double[x.Length];
            for (int o = 0; o < dy.Length; o++)
            {
                int i = o / outPlane * plane + (int)switches[o];
                expected[i] = dtype == DType.Float32 ? (float)expected[i] + (float)dy[o] : expected[i] + dy[o];
            }
            double[] actual = dx.ToDoubles();
            for (int i = 0; i < x.Length; i++)
            {
                Assert.True(BitConverter.DoubleToInt64Bits(expected[i]) == BitConverter.DoubleToInt64Bits(actual[i]),
                    $"{what} on {backend.Threads} worker(s): dx[{i}] = {actual[i]}, the scatter gives {expected[i]}");
            }
            first ??= actual;
            Assert.True(first.AsSpan().SequenceEqual(actual), $"{what}: dx on two workers differs from one");
        }
    }

    /// <summary>
    /// Average (with and without the padding counted) and L2 pooling, forward and backward, equal bit for bit the plain
    /// loops in the tensor's precision — taps summed in row-major order, dx scattered window by window in output order —
    /// on one worker and on two: the vector rows and the stride-2 gather, their scalar edges, padding, ceil mode, widths
    /// that leave vector tails, zero outputs (L2) and a NaN in dy.
    /// </summary>
    [Theory, MemberData(nameof(BackwardCases))]
    public void SumPools_EqualThePlainLoopsBitForBit(int f, int s, int p, SizeRule rule, int w, DType dtype)
    {
        using var two = new ManagedBackend("auto", 2);
        const int planes = 18, h = 23;
        var shape = Shape.Nchw(2, 9, h, w);
        // Every 5th row is zero, so some L2 windows are zero; values are not exactly representable sums.
        double[] x = TestSupport.Input((int)shape.Count, 17 * f + s + 3 * w, dtype)
            .Select((v, i) => i / w % 5 == 2 ? 0 : v).ToArray();
        bool single = dtype == DType.Float32;
        double R(double v) => single ? (float)v : v;   // float32 arithmetic, exactly (one rounding of the double result)
        foreach (var (mode, include) in new[] { (PoolMode.Average, false), (PoolMode.Average, true), (PoolMode.L2, false) })
        {
            var spec = new PoolSpec(mode, f, f, s, s, Padding2d.Symmetric(p, p), rule, include);
            var (outH, outW) = spec.OutputSize(h, w);
            string what = $"{mode}{(include ? " counting padding" : "")} F{f} S{s} P{p} {rule} W{w} {dtype}";
            var ey = new double[planes * outH * outW];
            var dy = TestSupport.Input(ey.Length, 5 + w, dtype);
            dy[7] = double.NaN;
            var edx = new double[x.Length];
            for (int pl = 0, o = 0; pl < planes; pl++)
            {
                for (int oh = 0; oh < outH; oh++)
                {
                    for (int ow = 0; ow < outW; ow++, o++)
                    {
                        var taps = new List<int>();
                        int padded = 0;
                        for (int i = 0; i < f; i++)
                        {
                            for (int j = 0; j < f; j++)
                            {
                                int ih = oh * s - p + i, iw = ow * s - p + j;
                                if (ih < h + p && iw < w + p) padded++;
                                if (ih >= 0 && ih < h && iw >= 0 && iw < w) taps.Add(pl * h * w + ih * w + iw);
                            }
                        }
                        double sum = 0;
                        foreach (int t in taps) sum = R(sum + (mode == PoolMode.L2 ? R(x[t] * x[t]) : x[t]));
                        int divisor = include ? padded : taps.Count;
                        ey[o] = mode == PoolMode.L2 ? R(Math.Sqrt(sum)) : R(sum / divisor);
                        foreach (int t in taps)
                        {
                            if (mode == PoolMode.Average) edx[t] = R(edx[t] + R(dy[o] / divisor));
                            else if (ey[o] != 0) edx[t] = R(edx[t] + R(R(dy[o] * x[t]) / ey[o]));
                        }
                    }
                }
            }
            foreach (var backend in new[] { _backend, two })
            {
                using var tx = backend.Upload(x, shape, dtype);
                using var forward = backend.Pool2d(tx, spec);
                using var tdy = backend.Upload(dy, forward.Y.Shape, dtype);
                using var dx = backend.Pool2dBackward(tdy, tx, forward, spec);
                BitEqual(ey, forward.Y.ToDoubles(), $"{what} on {backend.Threads} worker(s): y");
                BitEqual(edx, dx.ToDoubles(), $"{what} on {backend.Threads} worker(s): dx");
            }
        }

        static void BitEqual(double[] expected, double[] actual, string what)
        {
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(BitConverter.DoubleToInt64Bits(expected[i]) == BitConverter.DoubleToInt64Bits(actual[i]),
                    $"{what}[{i}] = {actual[i]:R}, the plain loop gives {expected[i]:R}");
            }
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
        using var switches = _backend.Upload<long>([0, 2, 8, 16], Shape.Nchw(1, 1, 2, 2));
        var e = Assert.Throws<ArgumentException>(() => _backend.Pool2dBackward(y, x, new PoolResult(y, switches), spec));
        Assert.Contains("outside its 4×4 input plane", e.Message);
    }

    /// <summary>
    /// The scatter checks 8 switches a vector before it writes them: a switch outside the plane inside such a vector —
    /// past it or negative, in the first vector or a later one — is reported by its index all the same.
    /// </summary>
    [Theory]
    [InlineData(3, 81L)]
    [InlineData(11, -1L)]
    [InlineData(15, long.MaxValue)]
    public void Pool2dBackward_ThrowsForSwitchesOutsideThePlane_InsideAVector(int bad, long value)
    {
        var shape = Shape.Nchw(1, 1, 9, 9);
        var spec = PoolSpec.Square(PoolMode.Max, 3, 2);
        using var x = _backend.Zeros(shape, DType.Float32);
        using var y = _backend.Zeros(Shape.Nchw(1, 1, 4, 4), DType.Float32);
        long[] s = Enumerable.Range(0, 16).Select(o => (long)(o / 4 * 2 * 9 + o % 4 * 2)).ToArray();
        s[bad] = value;
        using var switches = _backend.Upload<long>(s, Shape.Nchw(1, 1, 4, 4));
        var e = Assert.Throws<ArgumentException>(() => _backend.Pool2dBackward(y, x, new PoolResult(y, switches), spec));
        Assert.Contains($"switch {bad} is {value}, outside its 9×9 input plane", e.Message);
    }

    /// <summary>
    /// A switch outside its own window (but inside the plane) still routes its gradient where it points, as libtorch
    /// does: the 2×2/2 path, which writes each window's four elements, hands such a plane to the scatter. Planes wide
    /// enough for the vector rows; the bad switch in a vector lane, at the row's end and in a narrow plane.
    /// </summary>
    [Theory]
    [InlineData(4, 1)]
    [InlineData(40, 9)]
    [InlineData(40, 19)]
    [InlineData(41, 25)]
    public void MaxPoolBackward_SwitchOutsideItsWindowRoutesLikeTheScatter(int size, int bad)
    {
        var shape = Shape.Nchw(1, 2, size, size);
        var spec = new PoolSpec(PoolMode.Max, 2, 2, 2, 2, 0, 0, SizeRule.Floor);
        using var x = _backend.Upload(TestSupport.Random((int)shape.Count, 71), shape, DType.Float32);
        using var forward = _backend.Pool2d(x, spec);
        long[] sw = forward.Switches!.ToArray<long>();
        int outW = forward.Y.Shape.W, outPlane = forward.Y.Shape.H * outW;
        // Output `bad` of the second plane points at the first tap of the window to its left.
        sw[outPlane + bad] = (bad / outW) * 2 * size + (bad % outW - 1) * 2;
        using var switches = _backend.Upload<long>(sw, forward.Y.Shape);
        double[] dy = TestSupport.Input(2 * outPlane, 72, DType.Float32);
        using var tdy = _backend.Upload(dy, forward.Y.Shape, DType.Float32);
        using var dx = _backend.Pool2dBackward(tdy, x, new PoolResult(forward.Y, switches), spec);
        var expected = new double[shape.Count];
        for (int o = 0; o < dy.Length; o++) expected[o / outPlane * size * size + sw[o]] = (float)(expected[o / outPlane * size * size + sw[o]] + dy[o]);
        Assert.Equal(expected, dx.ToDoubles());
    }
}
