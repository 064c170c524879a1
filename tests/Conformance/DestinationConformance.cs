using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// The destination overloads of <see cref="IBackend"/>, one backend: each writes bit for bit what its allocating
/// overload returns, float32 and float64, into destinations that held NaN (or junk switches) before, so an element the
/// op forgot to write shows; RELU also in place. The same op runs both ways on the same inputs, so no tolerance.
/// Derive with one backend: <code>public sealed class MyDestinations() : DestinationConformance(new MyBackend());</code>
/// </summary>
public abstract class DestinationConformance(IBackend backend) : IDisposable
{
    protected IBackend Backend { get; } = backend ?? throw new ArgumentNullException(nameof(backend));

    public static IEnumerable<object[]> Dtypes => [[DType.Float32], [DType.Float64]];

    public static IEnumerable<object[]> PoolModes =>
        from m in new[] { PoolMode.Max, PoolMode.Average, PoolMode.L2 } from d in new[] { DType.Float32, DType.Float64 } select new object[] { m, d };

    private ITensor Random(int seed, Shape shape, DType dtype) => Backend.Upload(HostData.Random(seed, shape.Count), shape, dtype);

    /// <summary>A destination full of NaN: every element the op does not write stays NaN and differs.</summary>
    private ITensor Poisoned(Shape shape, DType dtype) => Backend.Upload(Enumerable.Repeat(double.NaN, (int)shape.Count).ToArray(), shape, dtype);

    private ITensor PoisonedSwitches(Shape shape) => Backend.Upload<long>(Enumerable.Repeat(-7L, (int)shape.Count).ToArray(), shape);

    private static void Same(string what, ITensor expected, ITensor actual)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        var e = expected.ToDoubles();
        var a = actual.ToDoubles();
        for (int i = 0; i < e.Length; i++)
        {
            if (BitConverter.DoubleToInt64Bits(e[i]) != BitConverter.DoubleToInt64Bits(a[i]))
            {
                Assert.Fail($"{what} {expected.DType} {expected.Shape}: element {i} of the destination is {a[i]:R}, the allocating op gave {e[i]:R}");
            }
        }
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void Conv2d_IntoDestination_MatchesAllocating(DType dtype)
    {
        var spec = ConvSpec.Square(3, 2, 1, name: "conv1");
        using var x = Random(1, Shape.Nchw(3, 4, 9, 9), dtype);
        using var w = Random(2, new Shape(5, 4, 3, 3), dtype);
        using var b = Random(3, new Shape(5), dtype);
        using var expected = Backend.Conv2d(x, w, b, spec);
        using var y = Poisoned(expected.Shape, dtype);
        Backend.Conv2d(x, w, b, spec, y);
        Same("Conv2d y", expected, y);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void Conv2dBackward_IntoDestination_MatchesAllocating(DType dtype)
    {
        var spec = ConvSpec.Square(3, 1, 1, name: "conv1");
        using var x = Random(1, Shape.Nchw(3, 4, 7, 6), dtype);
        using var w = Random(2, new Shape(5, 4, 3, 3), dtype);
        using var dy = Random(3, Shape.Nchw(3, 5, 7, 6), dtype);
        using var expected = Backend.Conv2dBackward(dy, x, w, spec, needDx: true);
        using var into = new ConvGradients(Poisoned(x.Shape, dtype), Poisoned(w.Shape, dtype), Poisoned(new Shape(5), dtype));
        Backend.Conv2dBackward(dy, x, w, spec, into);
        Same("Conv2dBackward dx", expected.Dx!, into.Dx!);
        Same("Conv2dBackward dw", expected.Dw, into.Dw);
        Same("Conv2dBackward db", expected.Db, into.Db);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void Conv2dBackward_IntoDestinationWithoutDx_MatchesAllocating(DType dtype)
    {
        var spec = ConvSpec.Square(3, 1, 1, name: "conv1");
        using var x = Random(4, Shape.Nchw(2, 3, 5, 5), dtype);
        using var w = Random(5, new Shape(4, 3, 3, 3), dtype);
        using var dy = Random(6, Shape.Nchw(2, 4, 5, 5), dtype);
        using var expected = Backend.Conv2dBackward(dy, x, w, spec, needDx: false);
        using var into = new ConvGradients(null, Poisoned(w.Shape, dtype), Poisoned(new Shape(4), dtype));
        Backend.Conv2dBackward(dy, x, w, spec, into);
        Assert.Null(into.Dx);
        Same("Conv2dBackward dw", expected.Dw, into.Dw);
        Same("Conv2dBackward db", expected.Db, into.Db);
    }

    [Theory, MemberData(nameof(PoolModes))]
    public void Pool2d_IntoDestination_MatchesAllocating(PoolMode mode, DType dtype)
    {
        var spec = PoolSpec.Square(mode, 3, 2, name: "pool1");
        using var x = Random(7, Shape.Nchw(2, 3, 9, 9), dtype);
        using var expected = Backend.Pool2d(x, spec);
        using var into = new PoolResult(Poisoned(expected.Y.Shape, dtype), mode == PoolMode.Max ? PoisonedSwitches(expected.Y.Shape) : null);
        Backend.Pool2d(x, spec, into);
        Same($"{mode} Pool2d y", expected.Y, into.Y);
        if (mode == PoolMode.Max) Assert.Equal(expected.Switches!.ToArray<long>(), into.Switches!.ToArray<long>());
    }

    [Theory, MemberData(nameof(PoolModes))]
    public void Pool2dBackward_IntoDestination_MatchesAllocating(PoolMode mode, DType dtype)
    {
        var spec = PoolSpec.Square(mode, 3, 2, name: "pool1");
        using var x = Random(8, Shape.Nchw(2, 3, 9, 9), dtype);
        using var forward = Backend.Pool2d(x, spec);
        using var dy = Random(9, forward.Y.Shape, dtype);
        using var expected = Backend.Pool2dBackward(dy, x, forward, spec);
        using var dx = Poisoned(x.Shape, dtype);
        Backend.Pool2dBackward(dy, x, forward, spec, dx);
        Same($"{mode} Pool2dBackward dx", expected, dx);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void Linear_IntoDestination_MatchesAllocating(DType dtype)
    {
        using var x = Random(10, Shape.Nchw(3, 2, 3, 3), dtype);
        using var w = Random(11, new Shape(7, 18), dtype);
        using var b = Random(12, new Shape(7), dtype);
        using var expected = Backend.Linear(x, w, b);
        using var y = Poisoned(expected.Shape, dtype);
        Backend.Linear(x, w, b, y);
        Same("Linear y", expected, y);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void LinearBackward_IntoDestination_MatchesAllocating(DType dtype)
    {
        using var x = Random(13, Shape.Nchw(3, 2, 3, 3), dtype);
        using var w = Random(14, new Shape(7, 18), dtype);
        using var dy = Random(15, new Shape(3, 7), dtype);
        using var expected = Backend.LinearBackward(dy, x, w, needDx: true);
        using var into = new LinearGradients(Poisoned(x.Shape, dtype), Poisoned(w.Shape, dtype), Poisoned(new Shape(7), dtype));
        Backend.LinearBackward(dy, x, w, into);
        Same("LinearBackward dx", expected.Dx!, into.Dx!);
        Same("LinearBackward dw", expected.Dw, into.Dw);
        Same("LinearBackward db", expected.Db, into.Db);
        using var withoutDx = new LinearGradients(null, Poisoned(w.Shape, dtype), Poisoned(new Shape(7), dtype));
        Backend.LinearBackward(dy, x, w, withoutDx);
        Same("LinearBackward (no dx) dw", expected.Dw, withoutDx.Dw);
        Same("LinearBackward (no dx) db", expected.Db, withoutDx.Db);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void Relu_IntoDestination_MatchesAllocating(DType dtype)
    {
        using var x = Random(16, Shape.Nchw(2, 3, 5, 5), dtype);
        using var expected = Backend.Relu(x);
        using var y = Poisoned(x.Shape, dtype);
        Backend.Relu(x, y);
        Same("Relu y", expected, y);
        Backend.Relu(x, x);   // in place
        Same("Relu in place", expected, x);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void ReluBackward_IntoDestination_MatchesAllocating(DType dtype)
    {
        using var x = Random(17, Shape.Nchw(2, 3, 5, 5), dtype);
        using var dy = Random(18, x.Shape, dtype);
        using var expected = Backend.ReluBackward(dy, x);
        using var dx = Poisoned(x.Shape, dtype);
        Backend.ReluBackward(dy, x, dx);
        Same("ReluBackward dx", expected, dx);
        Backend.ReluBackward(dy, x, dy);   // in place over dy
        Same("ReluBackward in place", expected, dy);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void SoftmaxCrossEntropy_IntoDestination_MatchesAllocating(DType dtype)
    {
        using var scores = Random(19, new Shape(4, 6), dtype);
        var labels = HostData.Labels(20, 4, 6);
        using var expected = Backend.SoftmaxCrossEntropy(scores, labels);
        using var ds = Poisoned(scores.Shape, dtype);
        double loss = Backend.SoftmaxCrossEntropy(scores, labels, ds);
        Assert.Equal(BitConverter.DoubleToInt64Bits(expected.Loss), BitConverter.DoubleToInt64Bits(loss));
        Same("SoftmaxCrossEntropy dScores", expected.DScores, ds);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void MulticlassSvm_IntoDestination_MatchesAllocating(DType dtype)
    {
        using var scores = Random(21, new Shape(4, 6), dtype);
        var labels = HostData.Labels(22, 4, 6);
        using var expected = Backend.MulticlassSvm(scores, labels);
        using var ds = Poisoned(scores.Shape, dtype);
        double loss = Backend.MulticlassSvm(scores, labels, ds);
        Assert.Equal(BitConverter.DoubleToInt64Bits(expected.Loss), BitConverter.DoubleToInt64Bits(loss));
        Same("MulticlassSvm dScores", expected.DScores, ds);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void Upload_IntoDestination_MatchesAllocating(DType dtype)
    {
        var shape = new Shape(3, 7);
        var data = HostData.Random(24, shape.Count);
        using var expected = Backend.Upload(data, shape, dtype);
        using var destination = Poisoned(shape, dtype);
        if (dtype == DType.Float32) Backend.Upload<float>(Array.ConvertAll(data, v => (float)v), destination);
        else Backend.Upload<double>(data, destination);
        Same("Upload", expected, destination);
    }

    [Theory, MemberData(nameof(Dtypes))]
    public void Copy_CopiesBitForBit(DType dtype)
    {
        using var source = Random(23, new Shape(3, 5), dtype);
        using var destination = Poisoned(source.Shape, dtype);
        Backend.Copy(source, destination);
        Same("Copy", source, destination);
        using var switches = Backend.Upload<long>([1, 2, 3, long.MaxValue], new Shape(4));
        using var into = PoisonedSwitches(switches.Shape);
        Backend.Copy(switches, into);
        Assert.Equal(switches.ToArray<long>(), into.ToArray<long>());
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Backend.Dispose();
    }
}
