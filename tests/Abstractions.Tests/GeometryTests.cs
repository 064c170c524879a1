namespace Lockstep.Tests;

/// <summary>The notes' worked examples and the size rule's errors.</summary>
public class GeometryTests
{
    [Fact]
    public void OutputSize_NotesExample_W5F3S2P1_Gives3()
    {
        var spec = ConvSpec.Square(3, 2, 1);
        Assert.Equal((3, 3), spec.OutputSize(5, 5));
    }

    [Fact]
    public void OutputSize_AlexNetConv1_Gives55()
    {
        var def = new Layers.ConvDefinition(96, ConvSpec.Square(11, 4, 0));
        Assert.Equal(Shape.Nchw(1, 96, 55, 55), def.OutputShape(Shape.Nchw(1, 3, 227, 227), "conv1"));
    }

    [Fact]
    public void OutputSize_ThrowsForNonInteger_ShowingTheArithmetic()
    {
        var spec = ConvSpec.Square(3, 2, 0, name: "conv1");
        var e = Assert.Throws<ArgumentException>(() => spec.OutputSize(10, 10));
        Assert.Contains("conv1", e.Message, StringComparison.Ordinal);
        Assert.Contains("(10 - 3 + 0)/2 + 1 = 4.5 is not an integer", e.Message, StringComparison.Ordinal);
        Assert.Contains("SizeRule.Floor", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SizeRule.Floor, 4)]
    public void OutputSize_FloorRule_RoundsDown(SizeRule rule, int expected)
    {
        Assert.Equal(expected, OutputSize.Compute("CONV", 'W', 10, 3, 2, 0, rule));
    }

    [Theory]
    [InlineData(5, 2, 2, 0, 2, 3)]   // ceil((5-2)/2)+1 = 3
    [InlineData(6, 3, 2, 1, 3, 4)]   // (6-3+2)/2 = 2.5 → 4 windows, the last starts at 6 - 1 = 5 < 6 + 1
    [InlineData(4, 2, 2, 1, 3, 3)]   // exact: (4-2+2)/2+1 = 3
    public void OutputSize_CeilRule_MatchesLibtorch(int input, int kernel, int stride, int pad, int floor, int ceil)
    {
        Assert.Equal(ceil, OutputSize.Compute("POOL", 'W', input, kernel, stride, pad, SizeRule.Ceil));
        if (floor != ceil) Assert.Equal(floor, OutputSize.Compute("POOL", 'W', input, kernel, stride, pad, SizeRule.Floor));
    }

    [Fact]
    public void OutputSize_CeilRule_DropsWindowStartingInPadding()
    {
        // W=3, F=2, S=2, P=1: (3-2+2)/2 = 1.5 → ceil gives 3 windows, the third would start at 4-1 = 3 = W + P - ... dropped.
        Assert.Equal(2, OutputSize.Compute("POOL", 'W', 3, 2, 2, 1, SizeRule.Ceil));
    }

    [Fact]
    public void OutputSize_PastTheLargestArray_ThrowsNamingTheLayer()
    {
        // The fuzz tests' find: W = int.MaxValue, F=6, S=1, P=3 gives W2 = 2^31, which wrapped to int.MinValue.
        var e = Assert.Throws<ArgumentException>(() =>
            new PoolSpec(PoolMode.Max, 1, 6, 1, 1, 0, 3, name: "pool9").OutputSize(1, int.MaxValue));
        Assert.Contains("pool9", e.Message, StringComparison.Ordinal);
        Assert.Contains("2,147,483,648 long along W", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputSize_LargeButFitting_IsExact()
    {
        Assert.Equal(Array.MaxLength, OutputSize.Compute("POOL", 'W', Array.MaxLength, 1, 1, 0, SizeRule.Exact));
        Assert.Equal(int.MaxValue / 2 + 1, OutputSize.Compute("POOL", 'W', int.MaxValue, 1, 2, 0, SizeRule.Floor));
    }

    [Fact]
    public void Spec_DilatedWindowPastInt_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => new ConvSpec(3, 3, 1, 1, Padding2d.Symmetric(0, 0), name: "conv7", dilationH: int.MaxValue));
        Assert.Contains("conv7", e.Message, StringComparison.Ordinal);
        Assert.Contains("spans more than", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new PoolSpec(PoolMode.Max, 3, 3, 1, 1, name: "pool7", dilationW: int.MaxValue));
    }

    [Fact]
    public void PoolSpec_HugeDilatedPadding_ChecksInConstantTimePerWindow()
    {
        // F=2, D=2^30, P just under the window: the first window's taps are −P and −P + D, both before the input of 1.
        var spec = new PoolSpec(PoolMode.Max, 1, 2, 1, 1, Padding2d.Symmetric(0, 1 << 30), name: "pool8", dilationW: 1 << 30);
        var e = Assert.Throws<ArgumentException>(() => spec.OutputSize(1, 1));
        Assert.Contains("only on padding", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputSize_ThrowsForKernelLargerThanInput()
    {
        var e = Assert.Throws<ArgumentException>(() => ConvSpec.Square(5, name: "conv2").OutputSize(3, 3));
        Assert.Contains("conv2", e.Message, StringComparison.Ordinal);
        Assert.Contains("does not fit", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 1, 0, "kernel")]
    [InlineData(-3, 1, 0, "kernel")]
    [InlineData(3, 0, 0, "stride")]
    [InlineData(3, 1, -1, "padding")]
    [InlineData(3, 1, 3, "smaller than the kernel")]
    public void ConvSpec_ThrowsForBadHyperparameters(int f, int s, int p, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => ConvSpec.Square(f, s, p, name: "convX"));
        Assert.Contains("convX", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConvSpec_ThrowsForCeilRule()
    {
        Assert.Throws<ArgumentException>(() => ConvSpec.Square(3, 2, 0, SizeRule.Ceil));
    }

    [Theory]
    [InlineData(0, 1, 0, "window")]
    [InlineData(2, 0, 0, "stride")]
    [InlineData(2, 2, 2, "smaller than the window")]
    public void PoolSpec_ThrowsForBadHyperparameters(int f, int s, int p, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => PoolSpec.Square(PoolMode.Max, f, s, p, name: "poolX"));
        Assert.Contains("poolX", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PoolSpec_NotesSettings_GiveHalfSize()
    {
        Assert.Equal((112, 112), PoolSpec.Square(PoolMode.Max, 2).OutputSize(224, 224));
        Assert.Equal((27, 27), PoolSpec.Square(PoolMode.Max, 3, 2).OutputSize(55, 55));
    }

    [Fact]
    public void Shape_EqualityAndCount()
    {
        Assert.Equal(Shape.Nchw(2, 3, 4, 5), new Shape(2, 3, 4, 5));
        Assert.NotEqual(new Shape(2, 3), new Shape(3, 2));
        Assert.Equal(120, Shape.Nchw(2, 3, 4, 5).Count);
        Assert.Equal(60, Shape.Nchw(2, 3, 4, 5).PerItem);
        Assert.Equal("[2, 3, 4, 5]", Shape.Nchw(2, 3, 4, 5).ToString());
        Assert.Throws<ArgumentException>(() => new Shape(2, -1));
        Assert.Throws<InvalidOperationException>(() => new Shape(2, 3).H);
    }
}
