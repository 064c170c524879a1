using Lockstep.Backends.Managed;
using Lockstep.Backends.Managed.Kernels;
using Lockstep.Conformance;
using Lockstep.Conformance.Reference;

namespace Lockstep.Tests;

/// <summary>
/// The direct convolution kernel (Kernels/DirectConvolution.cs) against the conformance kit's naive loops, on the
/// geometries at its edges: filter counts that leave a partial block of 8, rows that end inside a vector, stride phases,
/// dilation, padding that differs per side, the Floor rule, bands of rows; and which geometries it takes.
/// </summary>
public sealed class DirectConvolutionTests
{
    /// <summary>N, C, H, W, K, F_h, F_w, S_h, S_w, pad top, left, bottom, right, D_h, D_w, rule.</summary>
    public static IEnumerable<object[]> Geometries()
    {
        var cases = new (string Name, Shape X, int K, ConvSpec Spec)[]
        {
            ("cifar conv1 (K = 16, W' = 32: whole vectors)", Shape.Nchw(2, 3, 32, 32), 16, ConvSpec.Square(5, 1, 2)),
            ("K = 11 (partial block), 3×4 kernel, W' = 37, padding per side", Shape.Nchw(2, 3, 9, 35), 11,
                new ConvSpec(3, 4, 1, 1, new Padding2d(1, 2, 0, 3))),
            ("AlexNet-like F = 11, S = 4, Floor", Shape.Nchw(2, 3, 50, 67), 9, ConvSpec.Square(11, 4, 0, SizeRule.Floor)),
            ("3×5 kernel, S = 2×3, D = 2×3, Floor", Shape.Nchw(1, 2, 17, 50), 5,
                new ConvSpec(3, 5, 2, 3, 1, 2, SizeRule.Floor, dilationH: 2, dilationW: 3)),
            ("S = 3, P = 2, D = 2, Floor", Shape.Nchw(3, 4, 13, 44), 3, new ConvSpec(3, 3, 3, 3, 2, 2, SizeRule.Floor, dilationH: 2, dilationW: 2)),
            ("the narrowest rows it takes: W' = 12", Shape.Nchw(2, 2, 6, 14), 4, ConvSpec.Square(3)),
            ("bands of rows (uneven), W' = 300", Shape.Nchw(1, 4, 41, 300), 9, ConvSpec.Square(3, 1, 1)),
            ("512 taps and 128 filters: the limits", Shape.Nchw(1, 32, 7, 17), 128, ConvSpec.Square(4, 1, 1, SizeRule.Floor)),
            ("AlexNet-like 363 taps over two bands, K = 92, W' = 13: forward and dw by filters (a partial filter block, a partial tap block)",
                Shape.Nchw(2, 3, 227, 59), 92, ConvSpec.Square(11, 4, 0, SizeRule.Floor)),
            ("7×7 / 2, P = 3, 147 taps over two bands, K = 48: dw by filters", Shape.Nchw(1, 3, 200, 40), 48,
                ConvSpec.Square(7, 2, 3, SizeRule.Floor)),
            ("AlexNet's conv1 rows (W = 227, S = 4): the band's phases split 16 outputs a time", Shape.Nchw(1, 3, 23, 227), 96,
                ConvSpec.Square(11, 4, 0)),
            ("7×7 / 2, P = 3 on W = 201: two phases split 16 outputs a time, edges one by one", Shape.Nchw(1, 2, 9, 201), 16,
                ConvSpec.Square(7, 2, 3, SizeRule.Floor)),
            ("LeNet's conv2: 6 → 16 at W' = 10 (⅝ of a vector, few filters): the forward direct, dw by filters at any width",
                Shape.Nchw(2, 6, 14, 14), 16, ConvSpec.Square(5)),
            ("11×11 / 4, P = 3 on W = 222, K = 48: four phases split by vector permutes past the padding, edges one by one, forward by filters",
                Shape.Nchw(2, 3, 15, 222), 48, ConvSpec.Square(11, 4, 3, SizeRule.Floor)),
        };
        foreach (var (name, x, k, spec) in cases)
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
            yield return [name, x, k, spec, dtype];
    }

    [Theory, MemberData(nameof(Geometries))]
    public void Conv2d_DirectPathMatchesNaiveLoops(string name, Shape xs, int k, ConvSpec spec, DType dtype)
    {
        var ws = new Shape(k, xs.C, spec.KernelH, spec.KernelW);
        var (_, outW) = spec.OutputSize(xs.H, xs.W);
        Assert.True(DirectConvolution.Applies(xs, k, spec, outW, Lanes(dtype)), $"{name} must take the direct path");
        var y = Forward(2, xs, ws, spec, dtype, seed: xs.W);
        var expected = Naive(xs, ws, spec, dtype, seed: xs.W);
        TestSupport.Close(y, expected, TestSupport.Tolerance(dtype), $"{name}: y for {spec} on {xs} {dtype}");
    }

    /// <summary>
    /// dw and db directly — by filters (a vector of 16 filters: cifar's, K = 11 and 9; three vectors where many taps span
    /// several bands: the last two geometries), else in 4 × 4 blocks where the image is one band or the taps are few;
    /// dx still by col2im — against the loops on the same geometries.
    /// </summary>
    [Theory, MemberData(nameof(Geometries))]
    public void Conv2dBackward_DirectPathMatchesNaiveLoops(string name, Shape xs, int k, ConvSpec spec, DType dtype)
    {
        var ws = new Shape(k, xs.C, spec.KernelH, spec.KernelW);
        var (dx, dw, db) = Backward(2, xs, ws, spec, dtype, seed: xs.H);
        var naive = new NaiveBackend();
        var (outH, outW) = spec.OutputSize(xs.H, xs.W);
        var ys = Shape.Nchw(xs.N, k, outH, outW);
        using var x = naive.Upload(TestSupport.Input((int)xs.Count, xs.H, dtype), xs, DType.Float64);
        using var w = naive.Upload(TestSupport.Input((int)ws.Count, xs.H + 1, dtype), ws, DType.Float64);
        using var dy = naive.Upload(TestSupport.Input((int)ys.Count, xs.H + 2, dtype), ys, DType.Float64);
        using var grads = naive.Conv2dBackward(dy, x, w, spec, needDx: true);
        string what = $"{name}: for {spec} on {xs} {dtype}";
        double tolerance = TestSupport.Tolerance(dtype);
        TestSupport.Close(dw, grads.Dw.ToDoubles(), tolerance, "dw " + what);
        TestSupport.Close(db, grads.Db.ToDoubles(), tolerance, "db " + what);
        TestSupport.Close(dx, grads.Dx!.ToDoubles(), tolerance, "dx " + what);
    }

    /// <summary>
    /// Each output is summed in one fixed order whoever computes it: 1, 2 and 3 workers give the same bits — on images
    /// of one band and of several (dw then sums the bands in order within each image's partial).
    /// </summary>
    [Theory]
    [InlineData(DType.Float32, 23, 70)]
    [InlineData(DType.Float64, 23, 70)]
    [InlineData(DType.Float32, 61, 300)]
    public void Conv2dAndBackward_DirectPathIsBitIdenticalOnAnyThreadCount(DType dtype, int h, int w)
    {
        var xs = Shape.Nchw(3, 3, h, w);
        var spec = new ConvSpec(5, 5, 2, 2, 2, 2, SizeRule.Floor);
        var ws = new Shape(10, 3, 5, 5);
        var (outH, outW) = spec.OutputSize(xs.H, xs.W);
        Assert.True(DirectConvolution.AppliesToWeights(xs, 10, spec, outH, outW, Lanes(dtype)));
        double[] one = Forward(1, xs, ws, spec, dtype, seed: 5);
        Assert.Equal(one, Forward(2, xs, ws, spec, dtype, seed: 5));
        Assert.Equal(one, Forward(3, xs, ws, spec, dtype, seed: 5));
        // dw and db: each image into its own partial, the partials added in image order.
        var (dx1, dw1, db1) = Backward(1, xs, ws, spec, dtype, seed: 6);
        foreach (int threads in new[] { 2, 3 })
        {
            var (dx, dw, db) = Backward(threads, xs, ws, spec, dtype, seed: 6);
            Assert.Equal(dw1, dw);
            Assert.Equal(db1, db);
            Assert.Equal(dx1, dx);
        }
    }

    /// <summary>
    /// dw by filters (many taps over several bands, at least two vectors of filters) on the geometries above that take
    /// it (one vector of filters or three): each image into its own partial dwᵀ, the partials added in image order — 1, 2
    /// and 3 workers give the same bits; and the forward by filters (the AlexNet-like one: rows of 13 in vectors of 16).
    /// </summary>
    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void Conv2dAndBackward_ByFiltersAreBitIdenticalOnAnyThreadCount(DType dtype)
    {
        var taking = Geometries().Where(g => (DType)g[4] == dtype).Select(g => ((string)g[0], (Shape)g[1], (int)g[2], (ConvSpec)g[3]))
            .Where(g => DirectConvolution.AppliesToWeightsByFilters(g.Item2, g.Item3, g.Item4, g.Item4.OutputSize(g.Item2.H, g.Item2.W).H,
                g.Item4.OutputSize(g.Item2.H, g.Item2.W).W, Lanes(dtype)))
            .ToList();
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
        {
            // Three vectors of filters on the last two; one on cifar's 16 filters (float32: 16 lanes).
            var names = taking.Select(g => g.Item1).ToList();
            Assert.Contains(names, n => n.StartsWith("AlexNet-like 363", StringComparison.Ordinal));
            Assert.Contains(names, n => n.StartsWith("7×7 / 2", StringComparison.Ordinal));
            if (dtype == DType.Float32) Assert.Contains(names, n => n.StartsWith("cifar conv1", StringComparison.Ordinal));
            var (_, first, filters, firstSpec) = taking.Single(g => g.Item1.StartsWith("AlexNet-like 363", StringComparison.Ordinal));
            Assert.True(DirectConvolution.AppliesToForwardByFilters(first, filters, firstSpec, firstSpec.OutputSize(first.H, first.W).W, Lanes(dtype)));
        }
        foreach (var (_, xs0, k, spec) in taking)
        {
            var xs = Shape.Nchw(3, xs0.C, xs0.H, xs0.W);
            var ws = new Shape(k, xs.C, spec.KernelH, spec.KernelW);
            // The forward too (by filters on the AlexNet-like one).
            double[] y1 = Forward(1, xs, ws, spec, dtype, seed: 7);
            Assert.Equal(y1, Forward(2, xs, ws, spec, dtype, seed: 7));
            Assert.Equal(y1, Forward(3, xs, ws, spec, dtype, seed: 7));
            var (_, dw1, db1) = Backward(1, xs, ws, spec, dtype, seed: 8);
            foreach (int threads in new[] { 2, 3 })
            {
                var (_, dw, db) = Backward(threads, xs, ws, spec, dtype, seed: 8);
                Assert.Equal(dw1, dw);
                Assert.Equal(db1, db);
            }
        }
    }

    /// <summary>
    /// The width rules on Vector512's 16 floats: rows of ¾ of a vector for any filter count, of ⅝ (W' ≥ 10) with at most
    /// 16 filters; the 4 × 4 weight gradient only on the wide rows, dw by filters (one vector of 16) wherever the forward
    /// is direct.
    /// </summary>
    [Theory]
    [InlineData(12, 128, true)]
    [InlineData(11, 16, true)]
    [InlineData(10, 16, true)]
    [InlineData(10, 17, false)]
    [InlineData(9, 16, false)]
    public void Applies_WidthRules(int outW, int filters, bool direct)
    {
        var xs = Shape.Nchw(2, 6, 14, outW + 4);
        var spec = ConvSpec.Square(5);
        Assert.Equal(direct, DirectConvolution.Applies(xs, filters, spec, outW, lanes: 16));
        Assert.Equal(outW >= 12, DirectConvolution.AppliesToWeights(xs, filters, spec, 10, outW, lanes: 16));
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && filters == 16)
            Assert.Equal(direct, DirectConvolution.AppliesToWeightsByFilters(xs, filters, spec, 10, outW, lanes: 16));
    }

    /// <summary>
    /// dx by taps (stride 1, 9–16 filters: DirectConvolution.Data.cs) against the loops — padding that differs per side,
    /// a non-square kernel, rows longer than a vector, a partial block of filters — and the same bits on 1, 2 and 3
    /// workers (each image on one worker, its terms added in one fixed order).
    /// </summary>
    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void Conv2dBackward_DataByTaps_MatchesTheLoopsOnAnyThreadCount(DType dtype)
    {
        var cases = new (Shape X, int K, ConvSpec Spec)[]
        {
            (Shape.Nchw(3, 6, 14, 14), 16, ConvSpec.Square(5)),
            (Shape.Nchw(3, 5, 9, 35), 9, new ConvSpec(3, 4, 1, 1, new Padding2d(1, 2, 0, 3))),
            (Shape.Nchw(2, 4, 11, 40), 12, ConvSpec.Square(3, 1, 1)),
        };
        foreach (var (xs, k, spec) in cases)
        {
            Assert.True(DirectConvolution.AppliesToData(xs, k, spec) == System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated);
            var ws = new Shape(k, xs.C, spec.KernelH, spec.KernelW);
            var (dx1, _, _) = Backward(1, xs, ws, spec, dtype, seed: 12);
            var naive = new NaiveBackend();
            var (outH, outW) = spec.OutputSize(xs.H, xs.W);
            var ys = Shape.Nchw(xs.N, k, outH, outW);
            using var x = naive.Upload(TestSupport.Input((int)xs.Count, 12, dtype), xs, DType.Float64);
            using var w = naive.Upload(TestSupport.Input((int)ws.Count, 13, dtype), ws, DType.Float64);
            using var dy = naive.Upload(TestSupport.Input((int)ys.Count, 14, dtype), ys, DType.Float64);
            using var grads = naive.Conv2dBackward(dy, x, w, spec, needDx: true);
            TestSupport.Close(dx1, grads.Dx!.ToDoubles(), TestSupport.Tolerance(dtype), $"dx for {spec} on {xs}, {k} filters, {dtype}");
            Assert.Equal(dx1, Backward(2, xs, ws, spec, dtype, seed: 12).Dx);
            Assert.Equal(dx1, Backward(3, xs, ws, spec, dtype, seed: 12).Dx);
        }
        // Not taken: stride 2, dilation, 8 or 17 filters, groups.
        var lenet = Shape.Nchw(2, 6, 14, 14);
        Assert.False(DirectConvolution.AppliesToData(lenet, 16, ConvSpec.Square(5, 2, 0, SizeRule.Floor)));
        Assert.False(DirectConvolution.AppliesToData(lenet, 16, new ConvSpec(3, 3, 1, 1, 0, 0, dilationH: 2, dilationW: 2)));
        Assert.False(DirectConvolution.AppliesToData(lenet, 8, ConvSpec.Square(5)));
        Assert.False(DirectConvolution.AppliesToData(lenet, 17, ConvSpec.Square(5)));
        Assert.False(DirectConvolution.AppliesToData(lenet, 16, new ConvSpec(5, 5, 1, 1, 0, 0, groups: 2)));
    }

    /// <summary>Past the direct kernel's limits, or where it does not apply, im2col runs — and still matches the loops.</summary>
    [Theory]
    [InlineData("513 taps", 1, 57, 3, 3, 1, 20)]
    [InlineData("129 filters", 1, 3, 129, 3, 1, 20)]
    [InlineData("groups", 2, 4, 6, 3, 1, 20)]
    [InlineData("pointwise", 1, 3, 4, 1, 0, 20)]
    [InlineData("rows narrower than ¾ of a vector (W' = 2: on Vector256 too)", 1, 3, 4, 3, 1, 2)]
    public void Conv2d_OutsideTheDirectPathUsesIm2Col(string name, int groups, int c, int k, int f, int p, int w)
    {
        var xs = Shape.Nchw(2, c, 6, w);
        var spec = new ConvSpec(f, f, 1, 1, p, p, groups: groups);
        var ws = new Shape(k, c / groups, f, f);
        Assert.False(DirectConvolution.Applies(xs, k, spec, spec.OutputSize(xs.H, xs.W).W, Lanes(DType.Float64)), $"{name} must take im2col");
        TestSupport.Close(Forward(2, xs, ws, spec, DType.Float64, seed: 9), Naive(xs, ws, spec, DType.Float64, seed: 9), 1e-12, name);
    }

    /// <summary>The random conformance cases (Generators.ConvGeometry) exercise the direct path, and im2col too.</summary>
    [Fact]
    public void ConformanceGenerator_CoversBothPaths()
    {
        var pcg = new CsCheck.PCG(7, 2026);
        int direct = 0, total = 200;
        for (int i = 0; i < total; i++)
        {
            var g = Generators.ConvGeometry.Generate(pcg, null, out _);
            var spec = g.Spec;
            if (DirectConvolution.Applies(Shape.Nchw(g.N, g.C, g.H, g.W), g.K, spec, spec.OutputSize(g.H, g.W).W, Lanes(DType.Float32))) direct++;
        }
        Assert.InRange(direct, total / 10, total - total / 2);
    }

    [Fact]
    public void LiveBytes_PeakOfDirectForwardIsTheBandsAndPackedWeights_WithinTheBudgetCheck()
    {
        using var backend = new ManagedBackend("auto", 2);
        long before = backend.LiveBytes;
        var spec = ConvSpec.Square(5, 1, 2);
        var xs = Shape.Nchw(2, 3, 12, 12);
        using var x = backend.Zeros(xs, DType.Float32);
        using var w = backend.Zeros(new Shape(12, 3, 5, 5), DType.Float32);
        backend.ResetPeak();
        using var y = backend.Conv2d(x, w, null, spec);
        long expected = DirectConvolution.ForwardWorkspaceElements(xs, 12, spec, 12, 12, threads: 2, DirectConvolution.Lanes<float>());
        Assert.Equal(before + (xs.Count + w.Shape.Count + y.Shape.Count + expected) * 4, backend.PeakLiveBytes);
        Assert.True(expected <= ManagedBackend.ConvWorkspaceElements(xs, spec, 12, threads: 2), "the budget check must cover it");
    }

    /// <summary>Once warm, the kernels rent everything from the pool and keep their small arrays in cached jobs.</summary>
    [Fact]
    public void DirectKernels_AllocateNothingOnceWarm()
    {
        // One worker: every item runs on this thread, whose allocations the counter sees.
        using var workers = new Lockstep.Backends.Managed.Threading.WorkerPool(1);
        var pool = new Lockstep.Backends.Managed.Tensors.BufferPool();
        var xs = Shape.Nchw(2, 3, 20, 24);
        var spec = ConvSpec.Square(5, 1, 2);
        float[] x = new float[xs.Count], w = new float[10 * 75], b = new float[10], y = new float[2 * 10 * 20 * 24], dw = new float[750], db = new float[10];
        Assert.True(DirectConvolution.AppliesToWeights(xs, 10, spec, 20, 24, DirectConvolution.Lanes<float>()));
        // And dw by filters: 363 taps over two bands.
        var xs2 = Shape.Nchw(2, 3, 227, 59);
        var spec2 = ConvSpec.Square(11, 4, 0, SizeRule.Floor);
        float[] x2 = new float[xs2.Count], dy2 = new float[2 * 92 * 55 * 13], dw2 = new float[92 * 363], db2 = new float[92];
        bool byFilters = DirectConvolution.AppliesToWeightsByFilters(xs2, 92, spec2, 55, 13, DirectConvolution.Lanes<float>())
            && DirectConvolution.AppliesToForwardByFilters(xs2, 92, spec2, 13, DirectConvolution.Lanes<float>());
        // And dx by taps (stride 1, 10 filters).
        float[] dx = new float[xs.Count];
        Assert.Equal(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated, DirectConvolution.AppliesToData(xs, 10, spec));
        void Both()
        {
            DirectConvolution.Forward<float>(workers, pool, x, xs, w, 10, b, spec, 20, 24, y);
            if (DirectConvolution.AppliesToData(xs, 10, spec)) DirectConvolution.BackwardDataByTaps<float>(workers, pool, y, xs, w, 10, spec, 20, 24, dx);
            DirectConvolution.BackwardWeights<float>(workers, pool, y, x, xs, 10, spec, 20, 24, dw, db);
            if (!byFilters) return;
            DirectConvolution.Forward<float>(workers, pool, x2, xs2, dw2, 92, db2, spec2, 55, 13, dy2);
            DirectConvolution.BackwardWeightsByFilters<float>(workers, pool, dy2, x2, xs2, 92, spec2, 55, 13, dw2, db2);
        }
        Both();
        // The least of up to 30 rounds: the job caches are shared, so a test on another thread that holds one of the
        // cached jobs at that moment makes this thread build its own (the same rule as AllocationTests).
        long least = long.MaxValue;
        for (int round = 0; round < 30 && least > 0; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 5; i++) Both();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, least);
    }

    private static int Lanes(DType dtype) => dtype == DType.Float32 ? DirectConvolution.Lanes<float>() : DirectConvolution.Lanes<double>();

    private static double[] Forward(int threads, Shape xs, Shape ws, ConvSpec spec, DType dtype, int seed)
    {
        using var backend = new ManagedBackend("auto", threads);
        using var x = backend.Upload(TestSupport.Input((int)xs.Count, seed, dtype), xs, dtype);
        using var w = backend.Upload(TestSupport.Input((int)ws.Count, seed + 1, dtype), ws, dtype);
        using var b = backend.Upload(TestSupport.Input(ws[0], seed + 2, dtype), new Shape(ws[0]), dtype);
        using var y = backend.Conv2d(x, w, b, spec);
        return y.ToDoubles();
    }

    private static (double[] Dx, double[] Dw, double[] Db) Backward(int threads, Shape xs, Shape ws, ConvSpec spec, DType dtype, int seed)
    {
        using var backend = new ManagedBackend("auto", threads);
        var (outH, outW) = spec.OutputSize(xs.H, xs.W);
        var ys = Shape.Nchw(xs.N, ws[0], outH, outW);
        using var x = backend.Upload(TestSupport.Input((int)xs.Count, seed, dtype), xs, dtype);
        using var w = backend.Upload(TestSupport.Input((int)ws.Count, seed + 1, dtype), ws, dtype);
        using var dy = backend.Upload(TestSupport.Input((int)ys.Count, seed + 2, dtype), ys, dtype);
        using var grads = backend.Conv2dBackward(dy, x, w, spec, needDx: true);
        return (grads.Dx!.ToDoubles(), grads.Dw.ToDoubles(), grads.Db.ToDoubles());
    }

    private static double[] Naive(Shape xs, Shape ws, ConvSpec spec, DType dtype, int seed)
    {
        var naive = new NaiveBackend();
        using var x = naive.Upload(TestSupport.Input((int)xs.Count, seed, dtype), xs, DType.Float64);
        using var w = naive.Upload(TestSupport.Input((int)ws.Count, seed + 1, dtype), ws, DType.Float64);
        using var b = naive.Upload(TestSupport.Input(ws[0], seed + 2, dtype), new Shape(ws[0]), DType.Float64);
        using var y = naive.Conv2d(x, w, b, spec);
        return y.ToDoubles();
    }
}
