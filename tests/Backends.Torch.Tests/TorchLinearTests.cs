using static Lockstep.Backends.Torch.Tests.TorchTestSupport;

namespace Lockstep.Backends.Torch.Tests;

public class TorchLinearTests
{
    private static TorchBackend B => Backend;

    // x = [[1,2,3],[4,5,6]], W = [[1,0,−1],[2,1,0]], b = [10,20]: y = x·Wᵀ + b.
    [Fact]
    public void Linear_MatchesHandComputedExample()
    {
        using var x = B.F64(Seq(6), 2, 3);
        using var w = B.F64([1, 0, -1, 2, 1, 0], 2, 3);
        using var b = B.F64([10, 20], 2);

        using var y = B.Linear(x, w, b);

        Assert.Equal(new Shape(2, 2), y.Shape);
        Assert.Equal([8d, 24, 8, 33], y.ToArray<double>());
    }

    [Fact]
    public void Linear_FlattensNchwInput()
    {
        using var x = B.F32([1, 2, 3, 4, 5, 6], 2, 3, 1, 1);
        using var w = B.F32([1, 0, -1, 2, 1, 0], 2, 3);

        using var y = B.Linear(x, w, null);

        Assert.Equal([-2f, 4, -2, 13], y.ToArray<float>());
    }

    [Fact]
    public void LinearBackward_MatchesHandComputedExample()
    {
        using var x = B.F64(Seq(6), 2, 3, 1, 1);
        using var w = B.F64([1, 0, -1, 2, 1, 0], 2, 3);
        using var dy = B.F64([1, 2, 3, 4], 2, 2);

        using var g = B.LinearBackward(dy, x, w, needDx: true);

        Assert.Equal(x.Shape, g.Dx!.Shape);
        Assert.Equal([5d, 2, -1, 11, 4, -3], g.Dx.ToArray<double>());
        Assert.Equal([13d, 17, 21, 18, 24, 30], g.Dw.ToArray<double>());
        Assert.Equal([4d, 6], g.Db.ToArray<double>());
    }

    [Fact]
    public void LinearBackward_SkipsDxWhenNotAsked()
    {
        using var x = B.F64(Seq(6), 2, 3);
        using var w = B.F64([1, 0, -1, 2, 1, 0], 2, 3);
        using var dy = B.F64([1, 2, 3, 4], 2, 2);

        using var g = B.LinearBackward(dy, x, w, needDx: false);

        Assert.Null(g.Dx);
    }

    [Fact]
    public void Linear_ThrowsForFeatureMismatch()
    {
        using var x = B.F64(Seq(8), 2, 4);
        using var w = B.F64(Seq(6), 2, 3);

        var e = Assert.Throws<ArgumentException>(() => B.Linear(x, w, null));

        Assert.Contains("FC: input features", e.Message);
    }

    [Fact]
    public void Linear_ThrowsForMixedDTypes()
    {
        using var x = B.F32(new float[6], 2, 3);
        using var w = B.F64(Seq(6), 2, 3);

        var e = Assert.Throws<ArgumentException>(() => B.Linear(x, w, null));

        Assert.Contains("all operands must share one dtype", e.Message);
    }
}
