using static Lockstep.Backends.Torch.Tests.TorchTestSupport;

namespace Lockstep.Backends.Torch.Tests;

public class TorchSgdTests
{
    private static TorchBackend B => Backend;

    // The documented order, each step rounded in the dtype: t = wd·p; t = g + t; t = lr·t; v = m·v − t; p = p + v.
    [Fact]
    public void SgdStep_Float32FollowsDocumentedOrderBitwise()
    {
        const double lr = 0.01, momentum = 0.9, wd = 5e-4;
        float[] p = Random(1000, 1).Select(v => (float)v).ToArray();
        float[] g = Random(1000, 2).Select(v => (float)v).ToArray();
        float[] v = Random(1000, 3).Select(v => (float)v).ToArray();
        using var pt = B.F32(p, 10, 100);
        using var gt = B.F32(g, 10, 100);
        using var vt = B.F32(v, 10, 100);

        B.SgdStep(pt, gt, vt, lr, momentum, wd);

        for (int i = 0; i < p.Length; i++)
        {
            float t = (float)wd * p[i];
            t = g[i] + t;
            t = (float)lr * t;
            v[i] = (float)momentum * v[i] - t;
            p[i] += v[i];
        }
        Assert.Equal(v.Select(BitConverter.SingleToInt32Bits), vt.ToArray<float>().Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(p.Select(BitConverter.SingleToInt32Bits), pt.ToArray<float>().Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void SgdStep_Float64FollowsDocumentedOrderBitwise()
    {
        const double lr = 0.1, momentum = 0.5, wd = 1e-3;
        double[] p = Random(257, 4), g = Random(257, 5), v = Random(257, 6);
        using var pt = B.F64(p, 257);
        using var gt = B.F64(g, 257);
        using var vt = B.F64(v, 257);

        B.SgdStep(pt, gt, vt, lr, momentum, wd);
        B.SgdStep(pt, gt, vt, lr, momentum, wd);

        for (int step = 0; step < 2; step++)
        {
            for (int i = 0; i < p.Length; i++)
            {
                double t = wd * p[i];
                t = g[i] + t;
                t = lr * t;
                v[i] = momentum * v[i] - t;
                p[i] += v[i];
            }
        }
        Assert.Equal(v.Select(BitConverter.DoubleToInt64Bits), vt.ToArray<double>().Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(p.Select(BitConverter.DoubleToInt64Bits), pt.ToArray<double>().Select(BitConverter.DoubleToInt64Bits));
    }

    [Fact]
    public void SgdStep_ThrowsForMomentumOfOne()
    {
        using var p = B.F64([1], 1);
        using var g = B.F64([1], 1);
        using var v = B.F64([0], 1);

        var e = Assert.Throws<ArgumentException>(() => B.SgdStep(p, g, v, 0.1, 1, 0));

        Assert.Contains("momentum must be in [0, 1)", e.Message);
    }
}
