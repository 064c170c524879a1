using Xunit;

namespace Lockstep.Conformance;

// Central differences for the convolution and pooling options beyond the notes (issue 3, item 5).
public abstract partial class GradientChecks
{
    public static IEnumerable<object[]> ConvOptionsCases =>
        new[] { "asymmetric padding", "rectangular dilation 2x3", "groups 2", "depthwise multiplier 2 dilated", "floor, dilated, asymmetric, grouped" }
            .Select(c => new object[] { c });

    public static IEnumerable<object[]> PoolOptionsCases =>
        new[] { "max dilated asymmetric", "avg asymmetric count_include_pad ceil", "avg dilation 2 count_include_pad ceil", "l2 asymmetric", "global avg" }
            .Select(c => new object[] { c });

    [Theory, MemberData(nameof(ConvOptionsCases))]
    public void Conv2d_Options_GradientsMatchFiniteDifferences(string name)
    {
        var c = ConvOptionsCase.Named(name);
        var x = HostData.Random(21, c.Input.Count);
        var w = HostData.Random(22, c.Weights.Count);
        var b = HostData.Random(23, c.K);
        var (ho, wo) = c.Spec.OutputSize(c.Input.H, c.Input.W);
        var r = HostData.Random(24, (long)c.Input.N * c.K * ho * wo);

        double Loss(double[] xv, double[] wv, double[] bv)
        {
            using var xt = Upload(xv, c.Input);
            using var wt = Upload(wv, c.Weights);
            using var bt = Upload(bv, new Shape(c.K));
            using var y = Backend.Conv2d(xt, wt, bt, c.Spec);
            return Dot(y.ToDoubles(), r);
        }

        using var xt = Upload(x, c.Input);
        using var wt = Upload(w, c.Weights);
        using var dy = Upload(r, Shape.Nchw(c.Input.N, c.K, ho, wo));
        using var g = Backend.Conv2dBackward(dy, xt, wt, c.Spec, needDx: true);
        Verify("Conv2d", c.ToString(), "dx", x, g.Dx!.ToDoubles(), v => Loss(v, w, b));
        Verify("Conv2d", c.ToString(), "dw", w, g.Dw.ToDoubles(), v => Loss(x, v, b));
        Verify("Conv2d", c.ToString(), "db", b, g.Db.ToDoubles(), v => Loss(x, w, v));
    }

    [Theory, MemberData(nameof(PoolOptionsCases))]
    public void Pool2d_Options_GradientMatchesFiniteDifferences(string name)
    {
        var c = PoolOptionsCase.Named(name);
        var x = HostData.Random(25, c.Input.Count, InputKind.KinkFree);
        var (ho, wo) = c.Spec.OutputSize(c.Input.H, c.Input.W);
        var r = HostData.Random(26, (long)c.Input.N * c.Input.C * ho * wo);

        double Loss(double[] xv)
        {
            using var xt = Upload(xv, c.Input);
            using var p = Backend.Pool2d(xt, c.Spec);
            return Dot(p.Y.ToDoubles(), r);
        }

        using var xt = Upload(x, c.Input);
        using var p = Backend.Pool2d(xt, c.Spec);
        using var dy = Upload(r, p.Y.Shape);
        using var dx = Backend.Pool2dBackward(dy, xt, p, c.Spec);
        Verify("Pool2d", c.ToString(), "dx", x, dx.ToDoubles(), Loss);
    }
}
