using static Lockstep.Backends.Torch.Tests.TorchTestSupport;

namespace Lockstep.Backends.Torch.Tests;

public class TorchConvTests
{
    private static TorchBackend B => Backend;

    // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,0],[0,-1]], b = 0.5: y[i,j] = x[i,j] − x[i+1,j+1] + 0.5 = −3.5.
    [Fact]
    public void Conv2d_MatchesHandComputedExample()
    {
        using var x = B.F64(Seq(9), 1, 1, 3, 3);
        using var w = B.F64([1, 0, 0, -1], 1, 1, 2, 2);
        using var b = B.F64([0.5], 1);

        using var y = B.Conv2d(x, w, b, ConvSpec.Square(2));

        Assert.Equal(new Shape(1, 1, 2, 2), y.Shape);
        Assert.Equal([-3.5, -3.5, -3.5, -3.5], y.ToArray<double>());
    }

    // The notes' example W=5, F=3, S=2, P=1 → 3; with ones everywhere each output counts the window's inside elements.
    [Fact]
    public void Conv2d_StrideAndPaddingFollowTheNotes()
    {
        using var x = B.F32(Enumerable.Repeat(1f, 25).ToArray(), 1, 1, 5, 5);
        using var w = B.F32(Enumerable.Repeat(1f, 9).ToArray(), 1, 1, 3, 3);

        using var y = B.Conv2d(x, w, null, ConvSpec.Square(3, 2, 1));

        Assert.Equal(new Shape(1, 1, 3, 3), y.Shape);
        Assert.Equal([4f, 6, 4, 6, 9, 6, 4, 6, 4], y.ToArray<float>());
    }

    [Fact]
    public void Conv2d_SumsOverChannelsPerFilter()
    {
        // Two channels of ones, filter k has value k+1 everywhere: y = 2 channels · 4 taps · (k+1) + b[k].
        using var x = B.F64(Enumerable.Repeat(1d, 2 * 9).ToArray(), 1, 2, 3, 3);
        using var w = B.F64([.. Enumerable.Repeat(1d, 8), .. Enumerable.Repeat(2d, 8)], 2, 2, 2, 2);
        using var b = B.F64([10, 20], 2);

        using var y = B.Conv2d(x, w, b, ConvSpec.Square(2));

        Assert.Equal([18d, 18, 18, 18, 36, 36, 36, 36], y.ToArray<double>());
    }

    [Fact]
    public void Conv2d_ThrowsForChannelMismatch()
    {
        using var x = B.F64(new double[2 * 9], 1, 2, 3, 3);
        using var w = B.F64(new double[3 * 4], 1, 3, 2, 2);

        var e = Assert.Throws<ArgumentException>(() => B.Conv2d(x, w, null, ConvSpec.Square(2)));

        Assert.Contains("CONV: input channels", e.Message);
    }

    [Fact]
    public void Conv2d_ThrowsForNonIntegerOutputSize()
    {
        using var x = B.F64(new double[100], 1, 1, 10, 10);
        using var w = B.F64(new double[9], 1, 1, 3, 3);

        var e = Assert.Throws<ArgumentException>(() => B.Conv2d(x, w, null, ConvSpec.Square(3, 2)));

        Assert.Contains("= 4.5 is not an integer", e.Message);
    }

    [Fact]
    public void Conv2d_FloorRuleDropsLastRows()
    {
        using var x = B.F64(Seq(100), 1, 1, 10, 10);
        using var w = B.F64(new double[9], 1, 1, 3, 3);

        using var y = B.Conv2d(x, w, null, ConvSpec.Square(3, 2, rule: SizeRule.Floor));

        Assert.Equal(new Shape(1, 1, 4, 4), y.Shape);
    }

    // Same example with dy = 1: db = 4; dw[p,q] = Σ x[i+p, j+q]; dx = the full correlation of dy with w.
    [Fact]
    public void Conv2dBackward_MatchesHandComputedExample()
    {
        using var x = B.F64(Seq(9), 1, 1, 3, 3);
        using var w = B.F64([1, 0, 0, -1], 1, 1, 2, 2);
        using var dy = B.F64([1, 1, 1, 1], 1, 1, 2, 2);

        using var g = B.Conv2dBackward(dy, x, w, ConvSpec.Square(2), needDx: true);

        Assert.Equal([4d], g.Db.ToArray<double>());
        Assert.Equal([12d, 16, 24, 28], g.Dw.ToArray<double>());
        Assert.Equal([1d, 1, 0, 1, 0, -1, 0, -1, -1], g.Dx!.ToArray<double>());
        Assert.Equal(x.Shape, g.Dx!.Shape);
        Assert.Equal(w.Shape, g.Dw.Shape);
    }

    [Fact]
    public void Conv2dBackward_SkipsDxWhenNotAsked()
    {
        using var x = B.F64(Seq(9), 1, 1, 3, 3);
        using var w = B.F64([1, 0, 0, -1], 1, 1, 2, 2);
        using var dy = B.F64([1, 1, 1, 1], 1, 1, 2, 2);

        using var g = B.Conv2dBackward(dy, x, w, ConvSpec.Square(2), needDx: false);

        Assert.Null(g.Dx);
        Assert.Equal([12d, 16, 24, 28], g.Dw.ToArray<double>());
    }

    [Fact]
    public void Conv2dBackward_AgreesWithFiniteDifferences()
    {
        var spec = ConvSpec.Square(3, 2, 1);
        var xData = Random(2 * 3 * 5 * 5, seed: 11);
        var wData = Random(4 * 3 * 3 * 3, seed: 12);
        var dyData = Random(2 * 4 * 3 * 3, seed: 13);
        using var x = B.F64(xData, 2, 3, 5, 5);
        using var w = B.F64(wData, 4, 3, 3, 3);
        using var dy = B.F64(dyData, 2, 4, 3, 3);

        using var g = B.Conv2dBackward(dy, x, w, spec, needDx: true);

        // L(x, w) = Σ dy·conv(x, w) is linear in each, so central differences are exact up to rounding.
        double Loss(double[] xs, double[] ws)
        {
            using var xt = B.F64(xs, 2, 3, 5, 5);
            using var wt = B.F64(ws, 4, 3, 3, 3);
            using var y = B.Conv2d(xt, wt, null, spec);
            return y.ToArray<double>().Zip(dyData, (a, d) => a * d).Sum();
        }
        Close(Numeric(xData, xs => Loss(xs, wData)), g.Dx!.ToArray<double>(), 1e-8, "dx");
        Close(Numeric(wData, ws => Loss(xData, ws)), g.Dw.ToArray<double>(), 1e-8, "dw");
    }

    [Fact]
    public void Conv2dBackward_ThrowsForWrongOutputGradientShape()
    {
        using var x = B.F64(Seq(9), 1, 1, 3, 3);
        using var w = B.F64([1, 0, 0, -1], 1, 1, 2, 2);
        using var dy = B.F64([1, 1, 1], 1, 1, 1, 3);

        var e = Assert.Throws<ArgumentException>(() => B.Conv2dBackward(dy, x, w, ConvSpec.Square(2), needDx: true));

        Assert.Contains("output gradient: expected [1, 1, 2, 2], got [1, 1, 1, 3]", e.Message);
    }

    internal static double[] Numeric(double[] at, Func<double[], double> f, double h = 1e-5)
    {
        var result = new double[at.Length];
        var probe = (double[])at.Clone();
        for (int i = 0; i < at.Length; i++)
        {
            probe[i] = at[i] + h;
            double plus = f(probe);
            probe[i] = at[i] - h;
            double minus = f(probe);
            probe[i] = at[i];
            result[i] = (plus - minus) / (2 * h);
        }
        return result;
    }
}

/// <summary>Conv2dBackward through the graph the forward recorded (ConvTape) instead of running the convolution again.</summary>
public class TorchConvTapeTests
{
    private static TorchBackend B => Backend;

    private static (ITensor X, ITensor W, ITensor Dy, ConvSpec Spec) Case(int seed)
    {
        var spec = ConvSpec.Square(3, 2, 1);
        var x = B.F64(Random(2 * 3 * 7 * 7, seed), 2, 3, 7, 7);
        var w = B.F64(Random(4 * 3 * 3 * 3, seed + 1), 4, 3, 3, 3);
        var dy = B.F64(Random(2 * 4 * 4 * 4, seed + 2), 2, 4, 4, 4);
        return (x, w, dy, spec);
    }

    [Fact]
    public void Backward_AfterForward_UsesTheRecordAndMatchesARecomputationBitwise()
    {
        var (x, w, dy, spec) = Case(11);
        using (x) using (w) using (dy)
        {
            using var y = B.Conv2d(x, w, null, spec);
            var before = B.ConvBackwardPaths;
            using var taped = B.Conv2dBackward(dy, x, w, spec, needDx: true);
            using var again = B.Conv2dBackward(dy, x, w, spec, needDx: false);   // the record is kept for repeated calls
            var after = B.ConvBackwardPaths;
            Assert.True(after.FromTape - before.FromTape >= 2, $"backward used the record {after.FromTape - before.FromTape} times, not 2");

            // Another x (a copy of the same data) has no record: the gradients come from running the convolution again.
            using var copy = B.F64(x.ToArray<double>(), 2, 3, 7, 7);
            using var recomputed = B.Conv2dBackward(dy, copy, w, spec, needDx: true);
            Assert.True(B.ConvBackwardPaths.Recomputed > after.Recomputed, "a tensor never convolved was served from a record");
            Assert.Equal(recomputed.Dx!.ToArray<double>(), taped.Dx!.ToArray<double>());
            Assert.Equal(recomputed.Dw.ToArray<double>(), taped.Dw.ToArray<double>());
            Assert.Equal(recomputed.Dw.ToArray<double>(), again.Dw.ToArray<double>());
        }
    }

    [Fact]
    public void Backward_AfterWeightsChangedInPlace_UsesTheNewWeights()
    {
        var (x, w, dy, spec) = Case(21);
        using (x) using (w) using (dy)
        {
            using var y = B.Conv2d(x, w, null, spec);
            using var grad = B.F64(Enumerable.Repeat(1.0, 4 * 3 * 3 * 3).ToArray(), 4, 3, 3, 3);
            using var velocity = B.Zeros(w.Shape, DType.Float64);
            B.SgdStep(w, grad, velocity, learningRate: 0.5, momentum: 0, weightDecay: 0);   // w changes in place after the forward

            using var stale = B.Conv2dBackward(dy, x, w, spec, needDx: true);
            using var copy = B.F64(x.ToArray<double>(), 2, 3, 7, 7);
            using var fresh = B.Conv2dBackward(dy, copy, w, spec, needDx: true);
            Assert.Equal(fresh.Dx!.ToArray<double>(), stale.Dx!.ToArray<double>());
            Assert.Equal(fresh.Dw.ToArray<double>(), stale.Dw.ToArray<double>());
        }
    }

    [Fact]
    public void Backward_WithOtherWeightsOrSpec_DoesNotUseTheRecord()
    {
        var (x, w, dy, spec) = Case(31);
        using (x) using (w) using (dy)
        {
            using var y = B.Conv2d(x, w, null, spec);
            using var w2 = B.F64(Random(4 * 3 * 3 * 3, 99), 4, 3, 3, 3);
            var before = B.ConvBackwardPaths;
            using var other = B.Conv2dBackward(dy, x, w2, spec, needDx: true);
            Assert.Equal(before.FromTape, B.ConvBackwardPaths.FromTape);

            using var copy = B.F64(x.ToArray<double>(), 2, 3, 7, 7);
            using var expected = B.Conv2dBackward(dy, copy, w2, spec, needDx: true);
            Assert.Equal(expected.Dw.ToArray<double>(), other.Dw.ToArray<double>());
        }
    }
}
