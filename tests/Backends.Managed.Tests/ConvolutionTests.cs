using Lockstep.Backends.Managed;
using Lockstep.Backends.Managed.Kernels;
using Lockstep.Configuration;

namespace Lockstep.Tests;

public sealed class ConvolutionTests : IDisposable
{
    private readonly ManagedBackend _backend = TestSupport.Backend();

    public void Dispose() => _backend.Dispose();

    /// <summary>F ∈ {1,3,5,11}, S ∈ {1,2,4}, P ∈ {0,1,2} (P &lt; F), on non-square inputs; Floor where S does not divide.</summary>
    public static IEnumerable<object[]> Grid()
    {
        foreach (int f in new[] { 1, 3, 5, 11 })
        foreach (int s in new[] { 1, 2, 4 })
        foreach (int p in new[] { 0, 1, 2 })
        {
            if (p >= f) continue;
            foreach (var dtype in new[] { DType.Float32, DType.Float64 }) yield return [f, s, p, dtype];
        }
    }

    private static (Shape X, Shape W, ConvSpec Spec) Case(int f, int s, int p)
    {
        int h = f + 2 * s + 1, w = f + 3 * s + 2;   // non-square, and often not a whole number of strides
        bool exact = (h - f + 2 * p) % s == 0 && (w - f + 2 * p) % s == 0;
        var spec = ConvSpec.Square(f, s, p, exact ? SizeRule.Exact : SizeRule.Floor);
        return (Shape.Nchw(2, 3, h, w), new Shape(4, 3, f, f), spec);
    }

    [Theory, MemberData(nameof(Grid))]
    public void Conv2d_MatchesNaiveLoops(int f, int s, int p, DType dtype)
    {
        var (xs, ws, spec) = Case(f, s, p);
        int seed = 1000 * f + 100 * s + 10 * p;
        double[] x = TestSupport.Input((int)xs.Count, seed, dtype), w = TestSupport.Input((int)ws.Count, seed + 1, dtype),
            b = TestSupport.Input(ws[0], seed + 2, dtype);
        var (outH, outW) = spec.OutputSize(xs.H, xs.W);

        using var tx = _backend.Upload(x, xs, dtype);
        using var tw = _backend.Upload(w, ws, dtype);
        using var tb = _backend.Upload(b, new Shape(ws[0]), dtype);
        using var y = _backend.Conv2d(tx, tw, tb, spec);

        Assert.Equal(Shape.Nchw(xs.N, ws[0], outH, outW), y.Shape);
        TestSupport.Close(y.ToDoubles(), NaiveConvolution.Forward(x, xs, w, ws, b, spec, outH, outW),
            TestSupport.Tolerance(dtype), $"y for {spec} on {xs} {dtype} (seed {seed})");
    }

    [Theory, MemberData(nameof(Grid))]
    public void Conv2dBackward_MatchesNaiveLoops(int f, int s, int p, DType dtype)
    {
        var (xs, ws, spec) = Case(f, s, p);
        int seed = 1000 * f + 100 * s + 10 * p + 5;
        var (outH, outW) = spec.OutputSize(xs.H, xs.W);
        var ys = Shape.Nchw(xs.N, ws[0], outH, outW);
        double[] x = TestSupport.Input((int)xs.Count, seed, dtype), w = TestSupport.Input((int)ws.Count, seed + 1, dtype),
            dy = TestSupport.Input((int)ys.Count, seed + 2, dtype);

        using var tx = _backend.Upload(x, xs, dtype);
        using var tw = _backend.Upload(w, ws, dtype);
        using var tdy = _backend.Upload(dy, ys, dtype);
        using var grads = _backend.Conv2dBackward(tdy, tx, tw, spec, needDx: true);

        var (dx, dw, db) = NaiveConvolution.Backward(dy, x, xs, w, ws, spec, outH, outW);
        string what = $"for {spec} on {xs} {dtype} (seed {seed})";
        Assert.Equal(xs, grads.Dx!.Shape);
        Assert.Equal(ws, grads.Dw.Shape);
        Assert.Equal(new Shape(ws[0]), grads.Db.Shape);
        TestSupport.Close(grads.Dx.ToDoubles(), dx, TestSupport.Tolerance(dtype), "dx " + what);
        TestSupport.Close(grads.Dw.ToDoubles(), dw, TestSupport.Tolerance(dtype), "dw " + what);
        TestSupport.Close(grads.Db.ToDoubles(), db, TestSupport.Tolerance(dtype), "db " + what);
    }

    /// <summary>
    /// Columns larger than the tile budget are built a band of output rows at a time (forward, dw, and col2im per band),
    /// with stride and padding at the band edges; on one worker and on two, f64.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Conv2d_BandsOfColumnsMatchNaiveLoops(int threads)
    {
        var xs = Shape.Nchw(2, 16, 150, 380);
        var ws = new Shape(3, 16, 3, 3);
        var spec = ConvSpec.Square(3, 2, 1, SizeRule.Floor);
        var (outH, outW) = spec.OutputSize(xs.H, xs.W);
        int cff = 16 * 9, band = Lockstep.Backends.Managed.Kernels.Convolution.BandRowsFor(cff, outH, outW);
        Assert.True(band < outH && outH % band != 0, $"the case must split into uneven bands: {band} of {outH} rows");
        double[] x = TestSupport.Random((int)xs.Count, 81), w = TestSupport.Random((int)ws.Count, 82), b = TestSupport.Random(3, 83);
        var ys = Shape.Nchw(2, 3, outH, outW);
        double[] dy = TestSupport.Random((int)ys.Count, 84);

        using var backend = new ManagedBackend("auto", threads);
        using var tx = backend.Upload(x, xs, DType.Float64);
        using var tw = backend.Upload(w, ws, DType.Float64);
        using var tb = backend.Upload(b, new Shape(3), DType.Float64);
        using var tdy = backend.Upload(dy, ys, DType.Float64);
        using var y = backend.Conv2d(tx, tw, tb, spec);
        using var grads = backend.Conv2dBackward(tdy, tx, tw, spec, needDx: true);

        TestSupport.Close(y.ToDoubles(), NaiveConvolution.Forward(x, xs, w, ws, b, spec, outH, outW), 1e-12, "y");
        var (dx, dw, db) = NaiveConvolution.Backward(dy, x, xs, w, ws, spec, outH, outW);
        TestSupport.Close(grads.Dx!.ToDoubles(), dx, 1e-12, "dx");
        TestSupport.Close(grads.Dw.ToDoubles(), dw, 1e-12, "dw");
        TestSupport.Close(grads.Db.ToDoubles(), db, 1e-12, "db");
    }

    [Theory, MemberData(nameof(GemmTests.InstalledProviders), MemberType = typeof(GemmTests))]
    public void Conv2d_AgreesOnEveryInstalledProvider(string provider)
    {
        // The grid above runs on the best provider; this runs one strided, padded case (both passes) on each.
        using var backend = new ManagedBackend(provider, 1);
        var (xs, ws, spec) = Case(5, 2, 2);
        var (outH, outW) = spec.OutputSize(xs.H, xs.W);
        var ys = Shape.Nchw(xs.N, ws[0], outH, outW);
        double[] x = TestSupport.Random((int)xs.Count, 81), w = TestSupport.Random((int)ws.Count, 82),
            b = TestSupport.Random(ws[0], 83), dy = TestSupport.Random((int)ys.Count, 84);
        using var tx = backend.Upload(x, xs, DType.Float64);
        using var tw = backend.Upload(w, ws, DType.Float64);
        using var tb = backend.Upload(b, new Shape(ws[0]), DType.Float64);
        using var tdy = backend.Upload(dy, ys, DType.Float64);
        using var y = backend.Conv2d(tx, tw, tb, spec);
        using var grads = backend.Conv2dBackward(tdy, tx, tw, spec, needDx: true);
        var (dx, dw, db) = NaiveConvolution.Backward(dy, x, xs, w, ws, spec, outH, outW);
        TestSupport.Close(y.ToDoubles(), NaiveConvolution.Forward(x, xs, w, ws, b, spec, outH, outW), 1e-12, $"{provider} y");
        TestSupport.Close(grads.Dx!.ToDoubles(), dx, 1e-12, $"{provider} dx");
        TestSupport.Close(grads.Dw.ToDoubles(), dw, 1e-12, $"{provider} dw");
        TestSupport.Close(grads.Db.ToDoubles(), db, 1e-12, $"{provider} db");
    }

    [Fact]
    public void Conv2dBackward_FloorLeavesUncoveredRowsWithZeroGradient()
    {
        // H = 8, F = 3, S = 2, P = 0: (8 − 3)/2 + 1 = 3.5 → 3 windows cover rows 0..6; row 7 and column 7 are never read.
        var spec = ConvSpec.Square(3, 2, 0, SizeRule.Floor);
        var xs = Shape.Nchw(1, 2, 8, 8);
        using var x = _backend.Upload(TestSupport.Random(128, 7), xs, DType.Float64);
        using var w = _backend.Upload(TestSupport.Random(2 * 2 * 9, 8), new Shape(2, 2, 3, 3), DType.Float64);
        using var dy = _backend.Upload(Enumerable.Repeat(1.0, 2 * 9).ToArray(), Shape.Nchw(1, 2, 3, 3), DType.Float64);
        using var grads = _backend.Conv2dBackward(dy, x, w, spec, needDx: true);
        double[] dx = grads.Dx!.ToDoubles();
        for (int c = 0; c < 2; c++)
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(0.0, dx[(c * 8 + 7) * 8 + i]);
            Assert.Equal(0.0, dx[(c * 8 + i) * 8 + 7]);
        }
        Assert.Contains(dx, v => v != 0);
    }

    [Fact]
    public void Conv2dBackward_SkipsDxWhenNotNeeded()
    {
        var spec = ConvSpec.Square(3, 1, 1);
        using var x = _backend.Upload(TestSupport.Random(2 * 3 * 5 * 6, 1), Shape.Nchw(2, 3, 5, 6), DType.Float32);
        using var w = _backend.Upload(TestSupport.Random(4 * 3 * 9, 2), new Shape(4, 3, 3, 3), DType.Float32);
        using var dy = _backend.Upload(TestSupport.Random(2 * 4 * 5 * 6, 3), Shape.Nchw(2, 4, 5, 6), DType.Float32);
        using var grads = _backend.Conv2dBackward(dy, x, w, spec, needDx: false);
        Assert.Null(grads.Dx);
        Assert.Equal(new Shape(4, 3, 3, 3), grads.Dw.Shape);
    }

    [Fact]
    public void Conv2d_RectangularKernelStrideAndPadding()
    {
        var spec = new ConvSpec(3, 5, 2, 1, 1, 2, SizeRule.Floor);
        var xs = Shape.Nchw(2, 2, 9, 7);
        var ws = new Shape(3, 2, 3, 5);
        double[] x = TestSupport.Random((int)xs.Count, 11), w = TestSupport.Random((int)ws.Count, 12), b = TestSupport.Random(3, 13);
        var (outH, outW) = spec.OutputSize(xs.H, xs.W);
        var ys = Shape.Nchw(2, 3, outH, outW);
        double[] dy = TestSupport.Random((int)ys.Count, 14);
        using var tx = _backend.Upload(x, xs, DType.Float64);
        using var tw = _backend.Upload(w, ws, DType.Float64);
        using var tb = _backend.Upload(b, new Shape(3), DType.Float64);
        using var tdy = _backend.Upload(dy, ys, DType.Float64);
        using var y = _backend.Conv2d(tx, tw, tb, spec);
        using var grads = _backend.Conv2dBackward(tdy, tx, tw, spec, needDx: true);
        var (dx, dw, db) = NaiveConvolution.Backward(dy, x, xs, w, ws, spec, outH, outW);
        TestSupport.Close(y.ToDoubles(), NaiveConvolution.Forward(x, xs, w, ws, b, spec, outH, outW), 1e-12, "y");
        TestSupport.Close(grads.Dx!.ToDoubles(), dx, 1e-12, "dx");
        TestSupport.Close(grads.Dw.ToDoubles(), dw, 1e-12, "dw");
        TestSupport.Close(grads.Db.ToDoubles(), db, 1e-12, "db");
    }

    [Fact]
    public void Conv2dBackward_MatchesFiniteDifferences()
    {
        // L = Σ r·conv(x, w, b) for a fixed r, so dL/dx, dL/dw, dL/db are the backward of dy = r. Checks the naive loops too.
        var spec = ConvSpec.Square(3, 2, 1);
        var xs = Shape.Nchw(1, 2, 5, 7);
        var ws = new Shape(2, 2, 3, 3);
        double[] x = TestSupport.Random((int)xs.Count, 21), w = TestSupport.Random((int)ws.Count, 22), b = TestSupport.Random(2, 23);
        var (outH, outW) = spec.OutputSize(xs.H, xs.W);
        double[] r = TestSupport.Random(2 * outH * outW, 24);
        double Loss(double[] xv, double[] wv, double[] bv)
        {
            using var tx = _backend.Upload(xv, xs, DType.Float64);
            using var tw = _backend.Upload(wv, ws, DType.Float64);
            using var tb = _backend.Upload(bv, new Shape(2), DType.Float64);
            using var y = _backend.Conv2d(tx, tw, tb, spec);
            return y.ToDoubles().Zip(r, (a, c) => a * c).Sum();
        }
        using var gx = _backend.Upload(x, xs, DType.Float64);
        using var gw = _backend.Upload(w, ws, DType.Float64);
        using var gdy = _backend.Upload(r, Shape.Nchw(1, 2, outH, outW), DType.Float64);
        using var grads = _backend.Conv2dBackward(gdy, gx, gw, spec, needDx: true);
        FiniteDifferences.Check(x, v => Loss(v, w, b), grads.Dx!.ToDoubles(), "dx");
        FiniteDifferences.Check(w, v => Loss(x, v, b), grads.Dw.ToDoubles(), "dw");
        FiniteDifferences.Check(b, v => Loss(x, w, v), grads.Db.ToDoubles(), "db");
    }

    [Fact]
    public void Conv2d_ThrowsForChannelMismatch()
    {
        using var x = _backend.Zeros(Shape.Nchw(1, 3, 5, 5), DType.Float32);
        using var w = _backend.Zeros(new Shape(2, 4, 3, 3), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => _backend.Conv2d(x, w, null, ConvSpec.Square(3)));
        Assert.Contains("input channels", e.Message);
    }

    [Fact]
    public void Conv2d_ThrowsForNonIntegerOutputSize()
    {
        using var x = _backend.Zeros(Shape.Nchw(1, 1, 10, 10), DType.Float32);
        using var w = _backend.Zeros(new Shape(1, 1, 3, 3), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => _backend.Conv2d(x, w, null, ConvSpec.Square(3, 2)));
        Assert.Contains("4.5 is not an integer", e.Message);
    }
}

internal static class FiniteDifferences
{
    /// <summary>Central differences (h = 1e-6) of <paramref name="loss"/> at each element against <paramref name="analytic"/>.</summary>
    public static void Check(double[] at, Func<double[], double> loss, double[] analytic, string what)
    {
        const double h = 1e-6;
        var numeric = new double[at.Length];
        for (int i = 0; i < at.Length; i++)
        {
            var plus = (double[])at.Clone();
            var minus = (double[])at.Clone();
            plus[i] += h;
            minus[i] -= h;
            numeric[i] = (loss(plus) - loss(minus)) / (2 * h);
        }
        TestSupport.Close(analytic, numeric, 1e-6, what + " against central finite differences");
    }
}

/// <summary>The im2col matrix, including its phased form for column strides above 1, against its definition.</summary>
public sealed class Im2ColTests
{
    /// <summary>
    /// cols[(c·F_h + i)·F_w + j, (oh − oh0)·W' + ow] = x[c, oh·S_h − P_h + i·D_h, ow·S_w − P_w + j·D_w] (0 in the padding),
    /// bit for bit, for strides 1–4, padding, dilation and a band of output rows that starts inside the plane.
    /// </summary>
    [Theory]
    [InlineData(11, 4, 0, 1, 0)]    // AlexNet's conv1
    [InlineData(11, 4, 2, 1, 3)]
    [InlineData(3, 2, 1, 1, 0)]
    [InlineData(5, 3, 2, 2, 2)]
    [InlineData(3, 1, 1, 1, 1)]
    [InlineData(7, 2, 3, 1, 4)]     // ZFNet's conv1
    public void Im2Col_MatchesTheDefinition(int f, int stride, int pad, int dilation, int oh0)
    {
        int channels = 3, h = 29, w = 31;
        var spec = new ConvSpec(f, f, stride, stride, Padding2d.Symmetric(pad, pad), SizeRule.Floor, "conv", dilation, dilation);
        var (outH, outW) = spec.OutputSize(h, w);
        int rows = outH - oh0;
        var x = Array.ConvertAll(TestSupport.Random(channels * h * w, 7), v => (float)v);
        var cols = new float[channels * f * f * rows * outW];
        Lockstep.Backends.Managed.Kernels.Convolution.Im2Col<float>(x, channels, h, w, spec, oh0, rows, outW, cols);
        for (int c = 0; c < channels; c++)
        for (int i = 0; i < f; i++)
        for (int j = 0; j < f; j++)
        for (int oh = 0; oh < rows; oh++)
        for (int ow = 0; ow < outW; ow++)
        {
            int ih = (oh0 + oh) * stride - pad + i * dilation, iw = ow * stride - pad + j * dilation;
            float expected = (uint)ih < (uint)h && (uint)iw < (uint)w ? x[(c * h + ih) * w + iw] : 0f;
            float actual = cols[((c * f + i) * f + j) * rows * outW + oh * outW + ow];
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual),
                $"tap ({c}, {i}, {j}) at output ({oh0 + oh}, {ow}): {actual} where x gives {expected}");
        }
    }
}

/// <summary>The im2col matrix of rows no wider than a vector at column stride 1 (Im2ColNarrow), against its definition.</summary>
public sealed class Im2ColNarrowTests
{
    /// <summary>
    /// VGG16's 14×14 and 7×7, widths of one to sixteen, kernels 1, 3 and 5 with and without padding, row stride 2, a band
    /// that starts inside the plane, and a band of one row (every tap's line then the last): bit for bit, float32 and
    /// float64, with the columns' buffer filled with NaN first so that a line left unwritten shows.
    /// </summary>
    [Theory]
    [InlineData(14, 14, 3, 1, 1, 0)]
    [InlineData(7, 7, 3, 1, 1, 0)]
    [InlineData(9, 16, 3, 1, 1, 2)]
    [InlineData(5, 3, 3, 1, 1, 0)]
    [InlineData(6, 1, 1, 1, 0, 0)]
    [InlineData(11, 12, 5, 2, 2, 1)]
    [InlineData(8, 8, 3, 1, 0, 5)]
    [InlineData(14, 14, 3, 1, 1, 13)]
    public void Im2ColNarrow_MatchesTheDefinition(int h, int w, int f, int strideH, int pad, int oh0)
    {
        Check<float>(h, w, f, strideH, pad, oh0);
        Check<double>(h, w, f, strideH, pad, oh0);
    }

    private static void Check<T>(int h, int w, int f, int strideH, int pad, int oh0) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        int channels = 3;
        var spec = new ConvSpec(f, f, strideH, 1, Padding2d.Symmetric(pad, pad), SizeRule.Floor, "conv");
        var (outH, outW) = spec.OutputSize(h, w);
        int rows = outH - oh0;
        var x = Array.ConvertAll(TestSupport.Random(channels * h * w, 9), v => T.CreateTruncating(v));
        var cols = new T[channels * f * f * rows * outW];
        Array.Fill(cols, T.NaN);
        Lockstep.Backends.Managed.Kernels.Convolution.Im2Col<T>(x, channels, h, w, spec, oh0, rows, outW, cols);
        for (int c = 0; c < channels; c++)
        for (int i = 0; i < f; i++)
        for (int j = 0; j < f; j++)
        for (int oh = 0; oh < rows; oh++)
        for (int ow = 0; ow < outW; ow++)
        {
            int ih = (oh0 + oh) * strideH - pad + i, iw = ow - pad + j;
            T expected = (uint)ih < (uint)h && (uint)iw < (uint)w ? x[(c * h + ih) * w + iw] : T.Zero;
            T actual = cols[((c * f + i) * f + j) * rows * outW + oh * outW + ow];
            Assert.True(expected.Equals(actual) && T.IsNegative(expected) == T.IsNegative(actual),
                $"{typeof(T).Name} {h}×{w} F{f} P{pad}: tap ({c}, {i}, {j}) at output ({oh0 + oh}, {ow}): {actual} where x gives {expected}");
        }
    }
}

/// <summary>The Winograd F(2×2, 3×3) and F(2×2, 5×5) paths of wide 3×3 and 5×5 stride-1 convolutions (Kernels/Winograd.cs).</summary>
public sealed class WinogradTests
{
    /// <summary>An f×f, stride-1 layer of n images, c channels, k filters, padding pad on h × width: its shapes and output size.</summary>
    private static (Shape X, Shape W, ConvSpec Spec, int OutH, int OutW, Shape Y) Layer(int n, int c, int k, int h, int width, int f, int pad)
    {
        var spec = ConvSpec.Square(f, 1, pad);
        var (outH, outW) = spec.OutputSize(h, width);
        return (Shape.Nchw(n, c, h, width), new Shape(k, c, f, f), spec, outH, outW, Shape.Nchw(n, k, outH, outW));
    }

    [Fact]
    public void WideGrid_TakesWinogradExceptItsLastCase()
    {
        var cases = Lockstep.Conformance.WideConvCases.Grid().ToList();
        foreach (var c in cases)
        {
            var (outH, outW) = c.Spec.OutputSize(c.H, c.W);
            bool applies = Winograd.Applies(c.Spec, c.N, c.C, c.K, outH, outW);
            Assert.True(applies == (c != cases[^1]), $"{c}: Winograd applies = {applies}");
        }
    }

    [Fact]
    public void FewTiles_TakeWinogradForDwPhaseByPhase_TooFewNone()
    {
        var spec = ConvSpec.Square(3, 1, 1);
        // 14×14 outputs: 7 × 7 tiles an image.
        Assert.True(Winograd.Applies(spec, 2, 64, 48, 14, 14));                  // 98 tiles
        Assert.True(Winograd.AppliesToWeights(spec, 2, 64, 48, 14, 14));
        Assert.True(Winograd.PhasesWeights(3, 2, 64, 48, 14, 14));
        Assert.False(Winograd.Applies(spec, 1, 64, 48, 14, 14));                 // 49
        Assert.False(Winograd.AppliesToWeights(spec, 1, 64, 48, 14, 14));
        Assert.True(Winograd.AppliesToWeights(spec, 6, 64, 48, 14, 14));         // 294: the slots
        Assert.False(Winograd.PhasesWeights(3, 6, 64, 48, 14, 14));
        // 512 × 512 phase by phase where the batch's tiles fit one band (VGG16's 28×28 at batch 2: 392 tiles), not beyond.
        Assert.True(Winograd.PhasesWeights(3, 2, 512, 512, 28, 28));
        Assert.False(Winograd.PhasesWeights(3, 2, 256, 512, 28, 28));
        Assert.False(Winograd.PhasesWeights(3, 8, 512, 512, 28, 28));
        Assert.True(Winograd.AppliesToWeights(spec, 8, 512, 512, 28, 28));
        // The products fused with dw's transform (AVX-512, channels whole blocks) up to 160 tiles deep: 14×14 at batch 2 and 3, not 4, nor 28×28.
        bool avx512 = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        Assert.Equal(avx512, Winograd.FusesWeights<float>(512, 98));
        Assert.Equal(avx512, Winograd.FusesWeights<double>(48, 147));
        Assert.False(Winograd.FusesWeights<float>(512, 196));
        Assert.False(Winograd.FusesWeights<float>(512, 392));
        Assert.False(Winograd.FusesWeights<float>(40, 98));
        // 5×5 keeps two bands' worth for all three.
        Assert.False(Winograd.Applies(ConvSpec.Square(5, 1, 2), 2, 64, 48, 14, 14));
        Assert.True(Winograd.Applies(ConvSpec.Square(5, 1, 2), 6, 64, 48, 14, 14));
        foreach (var c in Lockstep.Conformance.WideConvCases.Grid())
        {
            var (outH, outW) = c.Spec.OutputSize(c.H, c.W);
            if (Winograd.AppliesToWeights(c.Spec, c.N, c.C, c.K, outH, outW)) Assert.True(Winograd.Applies(c.Spec, c.N, c.C, c.K, outH, outW), $"{c}");
        }
    }

    /// <summary>
    /// Many bands (small products take one tile row a band: 199×127), two bands (the budget splits 200×26's 200 tile
    /// rows of 192 channels in two: one a worker on 2 workers, band after band, each phase by phase, on 3), a single band
    /// split by phase (14×14 and 15×17 outputs, 98 and 72 tiles: the input transform by channels, the products by
    /// position, the output transform by filters; with AVX-512 the 32 filters' products on packed weights, and those of
    /// the input gradient too where the channels are whole packed blocks, 64 and 48), uneven output, padding 0, 1, 2 and
    /// 4: the same bits on 1, 2 and 3 workers, and within float rounding of im2col + GEMM, forward and input gradient.
    /// </summary>
    [Theory]
    [InlineData(DType.Float32, 1, 3, 199, 127, 32, 200)]
    [InlineData(DType.Float64, 1, 3, 199, 127, 32, 200)]
    [InlineData(DType.Float64, 2, 3, 199, 127, 32, 202)]
    [InlineData(DType.Float32, 2, 5, 199, 127, 32, 200)]
    [InlineData(DType.Float64, 4, 5, 199, 127, 32, 204)]
    [InlineData(DType.Float32, 1, 3, 200, 26, 192, 2)]
    [InlineData(DType.Float32, 1, 3, 14, 14, 40, 1)]
    [InlineData(DType.Float64, 0, 3, 17, 19, 40, 1)]
    [InlineData(DType.Float32, 1, 3, 14, 14, 64, 1)]
    [InlineData(DType.Float64, 0, 3, 17, 19, 48, 1)]
    public void Winograd_SameBitsOnAnyThreadCount_AndAgreesWithIm2Col(DType dtype, int pad, int f, int h, int width, int channels, int bands)
    {
        var (xs, ws, spec, outH, outW, ys) = Layer(2, channels, 32, h, width, f, pad);
        Assert.True(Winograd.Applies(spec, 2, channels, 32, outH, outW));
        Assert.Equal(bands, Winograd.Bands(f, 2, channels, 32, outH, outW));
        bool packs = dtype == DType.Float32 ? Winograd.PacksForward<float>(f, 2, channels, 32, outH, outW)
            : Winograd.PacksForward<double>(f, 2, channels, 32, outH, outW);
        Assert.Equal(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && f == 3 && bands == 1, packs);
        double[] x = TestSupport.Random((int)xs.Count, 91), w = TestSupport.Random((int)ws.Count, 92), b = TestSupport.Random(32, 93),
            dy = TestSupport.Random((int)ys.Count, 94);

        (double[] Y, double[] Dx) Run(int threads, string convolution)
        {
            using var backend = new ManagedBackend("auto", threads, convolution);
            using var tx = backend.Upload(x, xs, dtype);
            using var tw = backend.Upload(w, ws, dtype);
            using var tb = backend.Upload(b, new Shape(32), dtype);
            using var tdy = backend.Upload(dy, ys, dtype);
            using var y = backend.Conv2d(tx, tw, tb, spec);
            using var grads = backend.Conv2dBackward(tdy, tx, tw, spec, needDx: true);
            return (y.ToDoubles(), grads.Dx!.ToDoubles());
        }

        var one = Run(1, "auto");
        foreach (int threads in new[] { 2, 3 })
        {
            var other = Run(threads, "auto");
            Assert.True(one.Y.AsSpan().SequenceEqual(other.Y), $"y on {threads} workers differs from 1 worker");
            Assert.True(one.Dx.AsSpan().SequenceEqual(other.Dx), $"dx on {threads} workers differs from 1 worker");
        }
        var im2col = Run(2, "im2col");
        double tolerance = dtype == DType.Float64 ? 1e-12 : 1e-5;
        TestSupport.Close(one.Y, im2col.Y, tolerance, "y, Winograd against im2col");
        TestSupport.Close(one.Dx, im2col.Dx, tolerance, "dx, Winograd against im2col");
        Assert.False(one.Y.AsSpan().SequenceEqual(im2col.Y), "im2col gave the very same bits: the Winograd path did not run");
    }

    /// <summary>
    /// The weight gradient phase by phase (Winograd.PhasesWeights): 98 tiles (14×14, padding 1), 144 tiles of uneven
    /// 15×17 outputs (padding 0), and 512 × 512 over 392 tiles, with AVX-512 the products packed where the channels are
    /// whole packed blocks (512, 96, 64, 48; 40 and 70 filters leave a narrower last block), fused with dw's transform
    /// up to 160 tiles (Winograd.FusesWeights: 96 × 70 takes three blocks of channels and two groups of filter blocks),
    /// whole positions deeper; dw and db within tolerance of the definition (of im2col for the widest), the same bits on
    /// 1, 2 and 3 workers and whether dx is asked for or not.
    /// </summary>
    [Theory]
    [InlineData(DType.Float64, 2, 40, 32, 14, 14, 1)]
    [InlineData(DType.Float32, 2, 40, 32, 14, 14, 1)]
    [InlineData(DType.Float64, 2, 40, 32, 17, 19, 0)]
    [InlineData(DType.Float32, 2, 512, 512, 28, 28, 1)]
    [InlineData(DType.Float32, 2, 64, 40, 14, 14, 1)]
    [InlineData(DType.Float32, 2, 96, 70, 14, 14, 1)]
    [InlineData(DType.Float64, 2, 48, 32, 17, 19, 0)]
    public void PhasedWeightGradient_MatchesTheDefinitionOnAnyThreadCount(DType dtype, int n, int c, int k, int h, int width, int pad)
    {
        var (xs, ws, spec, outH, outW, ys) = Layer(n, c, k, h, width, 3, pad);
        Assert.True(Winograd.PhasesWeights(3, n, c, k, outH, outW), "the geometry must take the phased weight gradient");
        double[] x = TestSupport.Input((int)xs.Count, 61, dtype), w = TestSupport.Input((int)ws.Count, 62, dtype),
            dy = TestSupport.Input((int)ys.Count, 63, dtype);

        (double[] Dw, double[] Db) Run(int threads, string convolution, bool needDx)
        {
            using var backend = new ManagedBackend("auto", threads, convolution);
            using var tx = backend.Upload(x, xs, dtype);
            using var tw = backend.Upload(w, ws, dtype);
            using var tdy = backend.Upload(dy, ys, dtype);
            using var g = backend.Conv2dBackward(tdy, tx, tw, spec, needDx);
            return (g.Dw.ToDoubles(), g.Db.ToDoubles());
        }

        var first = Run(1, "auto", needDx: false);
        var (edw, edb) = c * k <= 4096 ? Definition() : Run(2, "im2col", needDx: false);
        TestSupport.Close(first.Dw, edw, TestSupport.Tolerance(dtype), "dw");
        TestSupport.Close(first.Db, edb, TestSupport.Tolerance(dtype), "db");
        Assert.False(first.Dw.AsSpan().SequenceEqual(edw), "the reference gave the very same bits: the phased path did not run");
        foreach (int threads in new[] { 1, 2, 3 })
        foreach (bool needDx in new[] { false, true })
        {
            var other = Run(threads, "auto", needDx);
            Assert.True(first.Dw.AsSpan().SequenceEqual(other.Dw), $"dw on {threads} worker(s), needDx {needDx}, differs from 1 worker without dx");
            Assert.True(first.Db.AsSpan().SequenceEqual(other.Db), $"db on {threads} worker(s), needDx {needDx}, differs from 1 worker without dx");
        }

        (double[], double[]) Definition()
        {
            var (_, dwDef, dbDef) = NaiveConvolution.Backward(dy, x, xs, w, ws, spec, outH, outW);
            return (dwDef, dbDef);
        }
    }

    /// <summary>
    /// A 5×5 weight gradient by slots, channels last (Winograd.ChannelsLast.cs) where AVX-512 is there: bands of 56 tiles
    /// across image boundaries and a short last band (294 tiles of 7 × 7 a 13 × 13 image), a last block of 12 filters
    /// (40 = 2·14 + 12) and none short (56), odd and even outputs, padding 2 and 1; dw within the conformance kit's
    /// bound of the definition (db, and dx on weights packed by channels, Winograd.PacksRotated, within 1e-5) on 1, 2
    /// and 3 workers (1, 2 and 3 slots), the same bits call after call and whether dx is asked for or not.
    /// </summary>
    [Theory]
    [InlineData(DType.Float32, 6, 32, 40, 13, 13, 2)]
    [InlineData(DType.Float64, 4, 32, 56, 20, 18, 1)]
    [InlineData(DType.Float32, 2, 64, 64, 27, 27, 2)]
    public void ChannelsLastWeightGradient_MatchesTheDefinitionOnAnyThreadCount(DType dtype, int n, int c, int k, int h, int width, int pad)
    {
        var (xs, ws, spec, outH, outW, ys) = Layer(n, c, k, h, width, 5, pad);
        Assert.True(Winograd.AppliesToWeights(spec, n, c, k, outH, outW) && !Winograd.PhasesWeights(5, n, c, k, outH, outW), "the geometry must take the slots");
        bool avx512 = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        Assert.Equal(avx512, dtype == DType.Float32 ? Winograd.WeightsByChannels<float>(5, c, k) : Winograd.WeightsByChannels<double>(5, c, k));
        Assert.Equal(avx512, dtype == DType.Float32 ? Winograd.PacksRotated<float>(5, c) : Winograd.PacksRotated<double>(5, c));
        double[] x = TestSupport.Input((int)xs.Count, 71, dtype), w = TestSupport.Input((int)ws.Count, 72, dtype),
            dy = TestSupport.Input((int)ys.Count, 73, dtype);
        var (edx, edw, edb) = NaiveConvolution.Backward(dy, x, xs, w, ws, spec, outH, outW);
        // F(5×5, 2×2) rounds more than im2col (README): float32 against the conformance kit's bound c·ε·√K, c = 4, K the
        // products' depth N·H'·W' (OpenBLAS's band products, without AVX-512, are 3.1·ε·√K off on the first case).
        double tolerance = dtype == DType.Float32 ? 4 * 1.1920929e-7 * Math.Sqrt((double)n * outH * outW) : TestSupport.Tolerance(dtype);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var backend = new ManagedBackend("auto", threads);
            using var tx = backend.Upload(x, xs, dtype);
            using var tw = backend.Upload(w, ws, dtype);
            using var tdy = backend.Upload(dy, ys, dtype);
            double[]? first = null;
            foreach (bool needDx in new[] { false, true, false })
            {
                using var g = backend.Conv2dBackward(tdy, tx, tw, spec, needDx);
                double[] dw = g.Dw.ToDoubles();
                TestSupport.Close(dw, edw, tolerance, $"dw on {threads} worker(s)");
                TestSupport.Close(g.Db.ToDoubles(), edb, TestSupport.Tolerance(dtype), $"db on {threads} worker(s)");
                if (needDx) TestSupport.Close(g.Dx!.ToDoubles(), edx, TestSupport.Tolerance(dtype), $"dx on {threads} worker(s)");
                first ??= dw;
                Assert.True(first.AsSpan().SequenceEqual(dw), $"dw on {threads} worker(s), needDx {needDx}, differs from the first call");
            }
        }
    }

    /// <summary>
    /// The input gradient of a 3×3 Winograd layer reads the transform its forward kept beside the weights (the same
    /// bits as transforming them anew), makes it anew once the weights are written (an SGD step, an upload into
    /// them), and the kept transform goes back to the pool with the weights.
    /// </summary>
    [Theory]
    [InlineData(DType.Float32, 1)]
    [InlineData(DType.Float64, 2)]
    public void InputGradient_ReusesTheForwardsTransformUntilTheWeightsAreWritten(DType dtype, int threads)
    {
        // 40 filters and channels: no packed products (Winograd.Packed.cs), which transform anew in each direction.
        var xs = Shape.Nchw(2, 40, 14, 14);
        var ws = new Shape(40, 40, 3, 3);
        var spec = ConvSpec.Square(3, 1, 1);
        var ys = Shape.Nchw(2, 40, 14, 14);
        Assert.True(Winograd.Applies(spec, 2, 40, 40, 14, 14));
        Assert.False(Winograd.PacksForward<float>(3, 2, 40, 40, 14, 14) || Winograd.PacksForward<double>(3, 2, 40, 40, 14, 14));
        double[] x = TestSupport.Input((int)xs.Count, 71, dtype), w = TestSupport.Input((int)ws.Count, 72, dtype),
            w2 = TestSupport.Input((int)ws.Count, 73, dtype), dy = TestSupport.Input((int)ys.Count, 74, dtype);

        double[] Fresh(double[] weights)
        {
            using var backend = new ManagedBackend("auto", threads);
            using var tx = backend.Upload(x, xs, dtype);
            using var tw = backend.Upload(weights, ws, dtype);
            using var tdy = backend.Upload(dy, ys, dtype);
            using var g = backend.Conv2dBackward(tdy, tx, tw, spec, needDx: true);
            return g.Dx!.ToDoubles();
        }

        using var b = new ManagedBackend("auto", threads);
        long baseline = b.LiveBytes;
        using var bx = b.Upload(x, xs, dtype);
        using var bdy = b.Upload(dy, ys, dtype);
        var bw = b.Upload(w, ws, dtype);
        long inputs = b.LiveBytes;
        using (var y = b.Conv2d(bx, bw, null, spec)) { }
        Assert.True(b.LiveBytes > inputs, "the forward kept no transformed weights beside w");
        using (var g = b.Conv2dBackward(bdy, bx, bw, spec, needDx: true))
        {
            Assert.True(g.Dx!.ToDoubles().AsSpan().SequenceEqual(Fresh(w)), "dx from the kept transform differs from dx transformed anew");
        }
        using (var replacement = b.Upload(w2, ws, dtype)) b.Copy(replacement, bw);   // a write into the weights: the kept transform is stale
        using (var g = b.Conv2dBackward(bdy, bx, bw, spec, needDx: true))
        {
            Assert.True(g.Dx!.ToDoubles().AsSpan().SequenceEqual(Fresh(w2)), "dx after the weights were written used the old weights");
        }
        using (var y = b.Conv2d(bx, bw, null, spec)) { }
        using (var velocity = b.Zeros(ws, dtype))
        using (var g = b.Conv2dBackward(bdy, bx, bw, spec, needDx: false))
        {
            b.SgdStep(bw, g.Dw, velocity, learningRate: 0.01, momentum: 0.9, weightDecay: 0);   // between the forward and the next backward
        }
        var stepped = bw.ToDoubles();
        using (var g = b.Conv2dBackward(bdy, bx, bw, spec, needDx: true))
        {
            Assert.True(g.Dx!.ToDoubles().AsSpan().SequenceEqual(Fresh(stepped)), "dx after an SGD step used the weights before it");
        }
        bw.Dispose();
        Assert.Equal(inputs - (long)ws.Count * (dtype == DType.Float32 ? 4 : 8), b.LiveBytes);
        Assert.True(b.LiveBytes > baseline);
    }

    /// <summary>
    /// Several threads running forward and input gradient on the same weights at once (reading them is thread-safe):
    /// each takes the kept transform whole or makes its own, and every dx is the single-threaded one, bit for bit.
    /// </summary>
    [Fact]
    public void KeptTransform_SharedByThreads_GivesTheSameDx()
    {
        var xs = Shape.Nchw(2, 40, 14, 14);
        var ws = new Shape(40, 40, 3, 3);   // not packed: the forward keeps its transform
        var spec = ConvSpec.Square(3, 1, 1);
        using var backend = new ManagedBackend("auto", 1);
        using var x = backend.Upload(TestSupport.Random((int)xs.Count, 81), xs, DType.Float32);
        using var w = backend.Upload(TestSupport.Random((int)ws.Count, 82), ws, DType.Float32);
        using var dy = backend.Upload(TestSupport.Random((int)xs.Count, 83), xs, DType.Float32);
        double[] expected;
        using (var g = backend.Conv2dBackward(dy, x, w, spec, needDx: true)) expected = g.Dx!.ToDoubles();
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            for (int i = 0; i < 25; i++)
            {
                if ((i + t) % 2 == 0) backend.Conv2d(x, w, null, spec).Dispose();
                using var g = backend.Conv2dBackward(dy, x, w, spec, needDx: true);
                if (!g.Dx!.ToDoubles().AsSpan().SequenceEqual(expected)) failures.Add($"thread {t}, call {i}");
            }
        })).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join();
        Assert.Empty(failures);
    }

    [Fact]
    public void Backend_RejectsUnknownConvolutionAlgorithm()
    {
        var e = Assert.Throws<ArgumentException>(() => new ManagedBackend("managed", 1, "fft"));
        Assert.Contains("unknown convolution algorithm 'fft'; known: auto, im2col", e.Message);
    }

    [Fact]
    public void Factory_PassesTheConvolutionOption()
    {
        var options = new LockstepOptions { Managed = { Gemm = "managed", Threads = 1, Convolution = "im2col" } };
        using var backend = (ManagedBackend)new ManagedBackendFactory().Create(options);
        Assert.Equal("im2col", backend.Convolution);
        Assert.EndsWith("convolution: im2col)", backend.Description);
    }
}

/// <summary>The weight gradient as one im2col product over the whole batch (Convolution.BackwardWeightsBatched).</summary>
public sealed class BatchedWeightsTests
{
    /// <summary>
    /// Output planes no larger than Convolution.BatchPlane: stride 1 (rows narrower than a vector), stride 2 (the phased
    /// columns) and 5×5; dw and db within tolerance of the definition, the same bits on 1, 2 and 3 workers, and the same
    /// bits whether dx is asked for or not.
    /// </summary>
    [Theory]
    [InlineData(DType.Float64, 3, 64, 12, 7, 3, 1, 1)]
    [InlineData(DType.Float32, 3, 64, 12, 7, 3, 1, 1)]
    [InlineData(DType.Float32, 2, 24, 10, 9, 3, 2, 1)]
    [InlineData(DType.Float64, 4, 24, 6, 8, 5, 1, 2)]
    public void WeightGradient_OverTheBatch_MatchesTheDefinitionOnAnyThreadCount(DType dtype, int n, int c, int k, int size, int f, int stride, int pad)
    {
        var xs = Shape.Nchw(n, c, size, size);
        var ws = new Shape(k, c, f, f);
        var spec = new ConvSpec(f, f, stride, stride, pad, pad);
        var (outH, outW) = spec.OutputSize(size, size);
        Assert.True(Lockstep.Backends.Managed.Kernels.Convolution.BatchedWeightsElements(xs, k, spec, outH, outW) > 0, "the geometry must take the batched path");
        int lanes = dtype == DType.Float32 ? DirectConvolution.Lanes<float>() : DirectConvolution.Lanes<double>();
        Assert.False(DirectConvolution.AppliesToWeights(xs, k, spec, outH, outW, lanes) || DirectConvolution.AppliesToWeightsByFilters(xs, k, spec, outH, outW, lanes),
            "a direct weight gradient would take it first");
        double[] x = TestSupport.Input((int)xs.Count, 31, dtype), w = TestSupport.Input((int)ws.Count, 32, dtype),
            dy = TestSupport.Input(n * k * outH * outW, 33, dtype);
        var (_, edw, edb) = NaiveConvolution.Backward(dy, x, xs, w, ws, spec, outH, outW);
        double[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        foreach (bool needDx in new[] { false, true })
        {
            using var backend = new ManagedBackend("auto", threads);
            using var tx = backend.Upload(x, xs, dtype);
            using var tw = backend.Upload(w, ws, dtype);
            using var tdy = backend.Upload(dy, new Shape(n, k, outH, outW), dtype);
            using var g = backend.Conv2dBackward(tdy, tx, tw, spec, needDx);
            double[] dw = g.Dw.ToDoubles();
            TestSupport.Close(dw, edw, TestSupport.Tolerance(dtype), $"dw on {threads} worker(s), needDx {needDx}");
            TestSupport.Close(g.Db.ToDoubles(), edb, TestSupport.Tolerance(dtype), $"db on {threads} worker(s)");
            first ??= dw;
            Assert.True(first.AsSpan().SequenceEqual(dw), $"dw on {threads} worker(s), needDx {needDx}, differs from 1 worker without dx");
        }
    }
}
