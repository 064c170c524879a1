using Xunit;

namespace Lockstep.Conformance;

// The convolution and pooling options beyond the notes (issue 3, item 5), on the same candidate/reference pair.
public abstract partial class BackendConformance
{
    public static IEnumerable<object[]> ConvOptionsGrid =>
        from c in ConvOptionsCase.All from d in new[] { DType.Float32, DType.Float64 } select new object[] { c.Name, d };

    public static IEnumerable<object[]> PoolOptionsGrid =>
        from c in PoolOptionsCase.All from d in new[] { DType.Float32, DType.Float64 } select new object[] { c.Name, d };

    [Theory, MemberData(nameof(ConvOptionsGrid))]
    public void Conv2d_Options_MatchReference(string name, DType dtype)
    {
        var c = ConvOptionsCase.Named(name);
        int seed = Seed(name);
        var x = HostData.RoundTo(HostData.Random(seed, c.Input.Count), dtype);
        var w = HostData.RoundTo(HostData.Random(seed + 1, c.Weights.Count), dtype);
        var b = HostData.RoundTo(HostData.Random(seed + 2, c.K), dtype);
        var (ho, wo) = c.Spec.OutputSize(c.Input.H, c.Input.W);
        var dy = HostData.RoundTo(HostData.Random(seed + 3, (long)c.Input.N * c.K * ho * wo), dtype);
        Check("Conv2d", c.ToString(), dtype, seed, (backend, dt) =>
        {
            using var xt = backend.Upload(x, c.Input, dt);
            using var wt = backend.Upload(w, c.Weights, dt);
            using var bt = backend.Upload(b, new Shape(c.K), dt);
            using var y = backend.Conv2d(xt, wt, bt, c.Spec);
            using var dyt = backend.Upload(dy, y.Shape, dt);
            using var g = backend.Conv2dBackward(dyt, xt, wt, c.Spec, needDx: true);
            Assert.Equal(Shape.Nchw(c.Input.N, c.K, ho, wo), y.Shape);
            return [Result.Of("y", y), Result.Of("dx", g.Dx!), Result.Of("dw", g.Dw), Result.Of("db", g.Db)];
        });
    }

    [Theory, MemberData(nameof(PoolOptionsGrid))]
    public void Pool2d_Options_MatchReference(string name, DType dtype)
    {
        var c = PoolOptionsCase.Named(name);
        int seed = Seed(name);
        var x = HostData.RoundTo(HostData.Random(seed, c.Input.Count), dtype);
        var (ho, wo) = c.Spec.OutputSize(c.Input.H, c.Input.W);
        var dy = HostData.RoundTo(HostData.Random(seed + 1, (long)c.Input.N * c.Input.C * ho * wo), dtype);
        bool max = c.Spec.Mode == PoolMode.Max;
        Check("Pool2d", c.ToString(), dtype, seed, (backend, dt) =>
        {
            using var xt = backend.Upload(x, c.Input, dt);
            using var r = backend.Pool2d(xt, c.Spec);
            using var dyt = backend.Upload(dy, r.Y.Shape, dt);
            using var dx = backend.Pool2dBackward(dyt, xt, r, c.Spec);
            Assert.Equal(Shape.Nchw(c.Input.N, c.Input.C, ho, wo), r.Y.Shape);
            var results = new List<Result> { Result.Of("y", r.Y, exact: max), Result.Of("dx", dx, exact: max && c.WindowsDisjoint) };
            if (max) results.Add(Result.Of("switches", r.Switches!, exact: true));
            return results;
        });
    }

    /// <summary>
    /// A window whose input elements are all −∞ has maximum −∞ and no element greater than the start value: its switch is
    /// its first element inside the input, even where the window starts in the padding (padding on one side, and padding
    /// over half the window, which libtorch's own kernel cannot take).
    /// </summary>
    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void Pool2d_Max_MinusInfinityWindowsSwitchToTheirFirstInputElement(DType dtype)
    {
        var shape = Shape.Nchw(1, 1, 4, 4);
        var x = HostData.RoundTo(HostData.Random(7, shape.Count), dtype);
        foreach (int i in new[] { 0, 1, 4, 5, 10, 11, 14, 15 }) x[i] = double.NegativeInfinity;
        foreach (var spec in new[]
        {
            new PoolSpec(PoolMode.Max, 2, 2, 2, 2, new Padding2d(1, 1, 0, 0), SizeRule.Floor, name: "pool"),
            new PoolSpec(PoolMode.Max, 3, 3, 2, 2, 2, 2, SizeRule.Floor, name: "pool"),
            new PoolSpec(PoolMode.Max, 2, 2, 1, 1, 1, 1, SizeRule.Floor, name: "pool", dilationH: 2, dilationW: 2),
        })
        {
            Check("Pool2d(-inf)", spec.ToString(), dtype, 7, (backend, dt) =>
            {
                using var xt = backend.Upload(x, shape, dt);
                using var r = backend.Pool2d(xt, spec);
                return [Result.Of("y", r.Y, exact: true), Result.Of("switches", r.Switches!, exact: true)];
            });
        }
    }
}
