using Lockstep.Conformance.Reference;
using Xunit;

namespace Lockstep.Conformance;

/// <summary>
/// Bad input, one backend: every op rejects it before any kernel runs, with a typed exception whose message names
/// the layer (or op), what was expected and what came. Each test backs a row of docs/bad-input.md.
/// Derive with one backend: <code>public sealed class MyBadInput() : BadInputConformance(new MyBackend());</code>
/// </summary>
public abstract class BadInputConformance : IDisposable
{
    private static readonly ConvSpec Conv = ConvSpec.Square(3, 1, 1, name: "conv1");
    private static readonly PoolSpec Pool = PoolSpec.Square(PoolMode.Max, 2, name: "pool1");

    protected BadInputConformance(IBackend backend) => Backend = backend ?? throw new ArgumentNullException(nameof(backend));

    protected IBackend Backend { get; }

    private ITensor Tensor(params int[] dims) => Tensor(DType.Float32, dims);

    private ITensor Tensor(DType dtype, params int[] dims)
    {
        var shape = new Shape(dims);
        return Backend.Upload(HostData.Random(1, shape.Count), shape, dtype);
    }

    private static void Says(Exception e, params string[] fragments)
    {
        foreach (string f in fragments) Assert.Contains(f, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Conv2d_ThrowsForNullInput()
    {
        using var w = Tensor(4, 3, 3, 3);
        var e = Assert.Throws<ArgumentNullException>(() => Backend.Conv2d(null!, w, null, Conv));
        Says(e, "conv1", "input");
    }

    [Fact]
    public void Upload_ThrowsForLengthMismatch()
    {
        var e = Assert.Throws<ArgumentException>(() => Backend.Upload<float>(new float[5], new Shape(2, 3)));
        Says(e, "[2, 3]", "6", "5");
    }

    [Fact]
    public void Download_ThrowsForWrongElementType()
    {
        using var x = Tensor(DType.Float64, 2, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.Download<float>(x, new float[6]));
        Says(e, "Float64", "Single");
    }

    [Fact]
    public void Conv2d_ThrowsForWrongRank()
    {
        using var x = Tensor(3, 8, 8);
        using var w = Tensor(4, 3, 3, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv));
        Says(e, "conv1", "rank 4", "[3, 8, 8]");
    }

    [Fact]
    public void Conv2d_ThrowsForChannelMismatch()
    {
        using var x = Tensor(2, 4, 8, 8);
        using var w = Tensor(5, 3, 3, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv));
        Says(e, "conv1", "C = 3", "C = 4", "[5, 3, 3, 3]", "[2, 4, 8, 8]");
    }

    [Fact]
    public void Conv2d_ThrowsForBiasShape()
    {
        using var x = Tensor(2, 3, 8, 8);
        using var w = Tensor(5, 3, 3, 3);
        using var b = Tensor(4);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, b, Conv));
        Says(e, "conv1", "bias", "[5]", "[4]");
    }

    [Fact]
    public void Conv2d_ThrowsForKernelSizeMismatch()
    {
        using var x = Tensor(2, 3, 8, 8);
        using var w = Tensor(5, 3, 5, 5);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv));
        Says(e, "conv1", "5×5", "3×3");
    }

    [Fact]
    public void Conv2d_ThrowsForEmptyBatch()
    {
        var shape = Shape.Nchw(0, 3, 8, 8);
        using var x = Backend.Zeros(shape, DType.Float32);
        using var w = Tensor(4, 3, 3, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv));
        Says(e, "conv1", "N = 0");
    }

    [Fact]
    public void Conv2d_ThrowsForNonIntegerOutput_ShowingTheArithmetic()
    {
        using var x = Tensor(1, 3, 10, 10);
        using var w = Tensor(4, 3, 3, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, ConvSpec.Square(3, 2, 0, name: "conv1")));
        Says(e, "conv1", "(10 - 3 + 0)/2 + 1 = 4.5 is not an integer");
    }

    [Fact]
    public void Conv2d_ThrowsForKernelLargerThanInput()
    {
        using var x = Tensor(1, 3, 2, 2);
        using var w = Tensor(4, 3, 5, 5);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, ConvSpec.Square(5, name: "conv1")));
        Says(e, "conv1", "does not fit");
    }

    [Fact]
    public void Conv2d_ThrowsForTensorOfAnotherBackend()
    {
        using var other = new NaiveBackend();
        using var x = other.Upload(HostData.Random(1, 2 * 3 * 8 * 8), Shape.Nchw(2, 3, 8, 8), DType.Float32);
        using var w = Tensor(4, 3, 3, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv));
        Says(e, "conv1", "input", "'naive'", "CopyTo");
    }

    [Fact]
    public void Conv2d_ThrowsForDisposedTensor_NamingTheOp()
    {
        var x = Tensor(2, 3, 8, 8);
        using var w = Tensor(4, 3, 3, 3);
        x.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => Backend.Conv2d(x, w, null, Conv));
        Says(e, "conv1", "input", "disposed");
    }

    [Fact]
    public void Conv2d_ThrowsForDTypeMismatch()
    {
        using var x = Tensor(DType.Float64, 2, 3, 8, 8);
        using var w = Tensor(DType.Float32, 4, 3, 3, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv));
        Says(e, "conv1", "Float32", "Float64");
    }

    [Fact]
    public void Conv2dBackward_ThrowsForOutputGradientShape()
    {
        using var x = Tensor(2, 3, 8, 8);
        using var w = Tensor(4, 3, 3, 3);
        using var dy = Tensor(2, 4, 7, 8);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2dBackward(dy, x, w, Conv, needDx: true));
        Says(e, "conv1", "output gradient", "[2, 4, 8, 8]", "[2, 4, 7, 8]");
    }

    [Fact]
    public void Pool2d_ThrowsForNonIntegerOutput()
    {
        using var x = Tensor(1, 3, 7, 7);
        var e = Assert.Throws<ArgumentException>(() => Backend.Pool2d(x, Pool));
        Says(e, "pool1", "(7 - 2 + 0)/2 + 1 = 3.5 is not an integer");
    }

    [Fact]
    public void Pool2dBackward_ThrowsForMissingSwitches()
    {
        using var x = Tensor(1, 3, 8, 8);
        using var r = Backend.Pool2d(x, Pool);
        using var dy = Tensor(1, 3, 4, 4);
        var noSwitches = r with { Switches = null };
        var e = Assert.Throws<ArgumentException>(() => Backend.Pool2dBackward(dy, x, noSwitches, Pool));
        Says(e, "pool1", "switches");
    }

    [Fact]
    public void Linear_ThrowsForFeatureMismatch()
    {
        using var x = Tensor(2, 3, 4, 4);
        using var w = Tensor(10, 50);
        var e = Assert.Throws<ArgumentException>(() => Backend.Linear(x, w, null));
        Says(e, "FC", "in = 50", "48 per item", "[2, 3, 4, 4]");
    }

    [Fact]
    public void Linear_ThrowsForWeightRank()
    {
        using var x = Tensor(2, 12);
        using var w = Tensor(10, 3, 4);
        var e = Assert.Throws<ArgumentException>(() => Backend.Linear(x, w, null));
        Says(e, "FC", "weights", "rank 2", "[10, 3, 4]");
    }

    [Fact]
    public void Relu_ThrowsForEmptyInput()
    {
        using var x = Backend.Zeros(new Shape(0, 3), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => Backend.Relu(x));
        Says(e, "RELU", "no elements");
    }

    [Theory]
    [InlineData(10)]
    [InlineData(-1)]
    public void SoftmaxCrossEntropy_ThrowsForLabelOutOfRange(int label)
    {
        using var s = Tensor(2, 10);
        var e = Assert.Throws<ArgumentException>(() => Backend.SoftmaxCrossEntropy(s, [3, label]));
        Says(e, "label 1", label.ToString(System.Globalization.CultureInfo.InvariantCulture), "[0, 10)");
    }

    [Fact]
    public void MulticlassSvm_ThrowsForLabelCount()
    {
        using var s = Tensor(2, 10);
        var e = Assert.Throws<ArgumentException>(() => Backend.MulticlassSvm(s, [3]));
        Says(e, "expected 2 labels", "got 1");
    }

    [Theory]
    [InlineData(-0.1, 0.9, 0.0, "learning rate")]
    [InlineData(0.1, 1.0, 0.0, "momentum")]
    [InlineData(0.1, 0.9, double.NaN, "weight decay")]
    public void SgdStep_ThrowsForBadHyperparameters(double lr, double momentum, double weightDecay, string expected)
    {
        using var p = Tensor(3, 4);
        using var g = Tensor(3, 4);
        using var v = Tensor(3, 4);
        var e = Assert.Throws<ArgumentException>(() => Backend.SgdStep(p, g, v, lr, momentum, weightDecay));
        Says(e, "SGD", expected);
    }

    [Fact]
    public void SgdStep_ThrowsForShapeMismatch()
    {
        using var p = Tensor(3, 4);
        using var g = Tensor(4, 3);
        using var v = Tensor(3, 4);
        var e = Assert.Throws<ArgumentException>(() => Backend.SgdStep(p, g, v, 0.1, 0.9, 0));
        Says(e, "SGD", "gradient", "[3, 4]", "[4, 3]");
    }

    [Fact]
    public void Conv2d_ThrowsForDestinationShape()
    {
        using var x = Tensor(2, 3, 8, 8);
        using var w = Tensor(4, 3, 3, 3);
        using var y = Tensor(2, 4, 8, 7);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv, y));
        Says(e, "conv1", "destination", "expected [2, 4, 8, 8]", "got [2, 4, 8, 7]");
    }

    [Fact]
    public void Conv2d_ThrowsForDestinationDType()
    {
        using var x = Tensor(2, 3, 8, 8);
        using var w = Tensor(4, 3, 3, 3);
        using var y = Tensor(DType.Float64, 2, 4, 8, 8);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv, y));
        Says(e, "conv1", "destination", "expected Float32", "got Float64");
    }

    [Fact]
    public void Conv2d_ThrowsForDestinationOfAnotherBackend()
    {
        using var other = new NaiveBackend();
        using var x = Tensor(2, 3, 8, 8);
        using var w = Tensor(4, 3, 3, 3);
        using var y = other.Zeros(Shape.Nchw(2, 4, 8, 8), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv, y));
        Says(e, "conv1", "destination", "'naive'", $"'{Backend.Name}'", "Zeros");
    }

    [Fact]
    public void Conv2d_ThrowsForDisposedDestination()
    {
        using var x = Tensor(2, 3, 8, 8);
        using var w = Tensor(4, 3, 3, 3);
        var y = Tensor(2, 4, 8, 8);
        y.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => Backend.Conv2d(x, w, null, Conv, y));
        Says(e, "conv1", "destination", "disposed");
    }

    [Fact]
    public void Conv2d_ThrowsForDestinationAliasingInput()
    {
        using var x = Tensor(2, 4, 8, 8);
        using var w = Tensor(4, 4, 3, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2d(x, w, null, Conv, x));
        Says(e, "conv1", "destination", "same tensor as the input", "in place");
    }

    [Fact]
    public void Conv2dBackward_ThrowsForGradientDestinationShape()
    {
        using var x = Tensor(2, 3, 8, 8);
        using var w = Tensor(4, 3, 3, 3);
        using var dy = Tensor(2, 4, 8, 8);
        using var g = new ConvGradients(null, Tensor(4, 3, 2, 2), Tensor(4));
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2dBackward(dy, x, w, Conv, g));
        Says(e, "conv1", "dw destination", "expected [4, 3, 3, 3]", "got [4, 3, 2, 2]");
    }

    [Fact]
    public void Conv2dBackward_ThrowsForDestinationAliasingOutputGradient()
    {
        using var x = Tensor(2, 4, 8, 8);
        using var w = Tensor(4, 4, 3, 3);
        using var dy = Tensor(2, 4, 8, 8);
        using var dw = Tensor(4, 4, 3, 3);
        using var db = Tensor(4);
        var g = new ConvGradients(dy, dw, db);
        var e = Assert.Throws<ArgumentException>(() => Backend.Conv2dBackward(dy, x, w, Conv, g));
        Says(e, "conv1", "dx destination", "same tensor as the output gradient");
    }

    [Fact]
    public void Pool2d_ThrowsForMissingSwitchesDestination()
    {
        using var x = Tensor(1, 3, 8, 8);
        using var r = new PoolResult(Tensor(1, 3, 4, 4), null);
        var e = Assert.Throws<ArgumentNullException>(() => Backend.Pool2d(x, Pool, r));
        Says(e, "pool1", "switches destination", "null");
    }

    [Fact]
    public void Pool2d_ThrowsForSwitchesDestinationDType()
    {
        using var x = Tensor(1, 3, 8, 8);
        using var r = new PoolResult(Tensor(1, 3, 4, 4), Tensor(1, 3, 4, 4));
        var e = Assert.Throws<ArgumentException>(() => Backend.Pool2d(x, Pool, r));
        Says(e, "pool1", "switches destination", "expected Int64", "got Float32");
    }

    [Fact]
    public void Pool2dBackward_ThrowsForDestinationShape()
    {
        using var x = Tensor(1, 3, 8, 8);
        using var r = Backend.Pool2d(x, Pool);
        using var dy = Tensor(1, 3, 4, 4);
        using var dx = Tensor(1, 3, 4, 4);
        var e = Assert.Throws<ArgumentException>(() => Backend.Pool2dBackward(dy, x, r, Pool, dx));
        Says(e, "pool1", "destination", "expected [1, 3, 8, 8]", "got [1, 3, 4, 4]");
    }

    [Fact]
    public void Linear_ThrowsForDestinationShape()
    {
        using var x = Tensor(2, 12);
        using var w = Tensor(10, 12);
        using var y = Tensor(10, 2);
        var e = Assert.Throws<ArgumentException>(() => Backend.Linear(x, w, null, y));
        Says(e, "FC", "destination", "expected [2, 10]", "got [10, 2]");
    }

    [Fact]
    public void LinearBackward_ThrowsForDestinationAliasingInput()
    {
        using var x = Tensor(3, 12);
        using var w = Tensor(3, 12);
        using var dy = Tensor(3, 3);
        using var db = Tensor(3);
        var g = new LinearGradients(null, x, db);
        var e = Assert.Throws<ArgumentException>(() => Backend.LinearBackward(dy, x, w, g));
        Says(e, "FC", "dw destination", "same tensor as the input");
    }

    [Fact]
    public void ReluBackward_ThrowsForDestinationAliasingInput()
    {
        using var x = Tensor(2, 5);
        using var dy = Tensor(2, 5);
        var e = Assert.Throws<ArgumentException>(() => Backend.ReluBackward(dy, x, x));
        Says(e, "RELU", "destination", "same tensor as the input", "ReluBackward(dy, x, dy)");
    }

    [Fact]
    public void SoftmaxCrossEntropy_ThrowsForDestinationAliasingScores()
    {
        using var s = Tensor(2, 10);
        var e = Assert.Throws<ArgumentException>(() => Backend.SoftmaxCrossEntropy(s, [3, 4], s));
        Says(e, "SOFTMAX", "dScores destination", "same tensor as the scores");
    }

    [Fact]
    public void Upload_ThrowsForDestinationLengthMismatch()
    {
        using var t = Tensor(2, 3);
        var e = Assert.Throws<ArgumentException>(() => Backend.Upload<float>(new float[5], t));
        Says(e, "Upload", "destination", "[2, 3]", "6", "5");
    }

    [Fact]
    public void Copy_ThrowsForShapeMismatch()
    {
        using var a = Tensor(2, 6);
        using var b = Tensor(3, 4);
        var e = Assert.Throws<ArgumentException>(() => Backend.Copy(a, b));
        Says(e, "Copy", "destination", "expected [2, 6]", "got [3, 4]");
    }

    /// <summary>NaN and ±∞ are data, not errors: they propagate through every op as IEEE arithmetic says.</summary>
    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void NonFiniteInputs_Propagate(DType dtype)
    {
        var shape = Shape.Nchw(1, 1, 4, 4);
        var data = HostData.Random(3, shape.Count);
        data[0] = double.NaN;
        data[15] = double.PositiveInfinity;
        using var x = Backend.Upload(data, shape, dtype);
        using var w = Backend.Upload(HostData.Random(4, 9), new Shape(1, 1, 3, 3), dtype);
        using var y = Backend.Conv2d(x, w, null, ConvSpec.Square(3, 1, 1));
        var yv = y.ToDoubles();
        Assert.True(double.IsNaN(yv[0]), "a conv output whose window holds NaN is NaN");
        Assert.True(!double.IsFinite(yv[15]), "a conv output whose window holds ∞ is not finite");
        Assert.True(double.IsFinite(yv[3]) && double.IsFinite(yv[12]), $"outputs whose windows miss the bad inputs stay finite, got {yv[3]}, {yv[12]}");

        using var p = Backend.Pool2d(x, PoolSpec.Square(PoolMode.Max, 2));
        var pv = p.Y.ToDoubles();
        Assert.True(double.IsNaN(pv[0]) && double.IsPositiveInfinity(pv[3]) && double.IsFinite(pv[1]));

        using var scores = Backend.Upload([double.NaN, 1, 2, 0, 1, 2], new Shape(2, 3), dtype);
        using var loss = Backend.SoftmaxCrossEntropy(scores, [0, 1]);
        Assert.True(double.IsNaN(loss.Loss), $"a NaN score gives a NaN loss, got {loss.Loss}");
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
