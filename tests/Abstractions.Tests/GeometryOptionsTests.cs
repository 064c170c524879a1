using Lockstep.Conformance.Reference;

namespace Lockstep.Tests;

/// <summary>Dilation, per-side padding, groups and global pooling: the size rule with the effective kernel, and the checks' messages.</summary>
public class GeometryOptionsTests
{
    [Fact]
    public void OutputSize_Dilation_UsesEffectiveKernel()
    {
        // F=3, D=2 spans 5 inputs: (9 - 5 + 2)/1 + 1 = 7.
        Assert.Equal((7, 7), new ConvSpec(3, 3, 1, 1, 1, 1, dilationH: 2, dilationW: 2).OutputSize(9, 9));
    }

    [Fact]
    public void OutputSize_ThrowsForNonInteger_ShowingTheDilatedArithmetic()
    {
        var spec = new ConvSpec(3, 3, 2, 2, name: "atrous", dilationH: 2, dilationW: 2);
        var e = Assert.Throws<ArgumentException>(() => spec.OutputSize(10, 9));
        Assert.Contains("atrous", e.Message, StringComparison.Ordinal);
        Assert.Contains("(H - (D·(F - 1) + 1) + 2P)/S + 1 = (10 - (2·(3 - 1) + 1) + 0)/2 + 1 = 3.5 is not an integer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputSize_AsymmetricPadding_AddsBothSides()
    {
        var spec = new ConvSpec(3, 3, 2, 2, new Padding2d(1, 0, 1, 0));
        Assert.Equal((4, 2), spec.OutputSize(7, 5));   // ONNX test_conv_with_strides_and_asymmetric_padding
        var e = Assert.Throws<ArgumentException>(() => new ConvSpec(3, 3, 2, 2, new Padding2d(0, 0, 1, 0)).OutputSize(7, 5));
        Assert.Contains("(H - F + P_begin + P_end)/S + 1 = (7 - 3 + 0 + 1)/2 + 1 = 3.5", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputSize_CeilRule_DropsLastWindowStartingInEndPadding()
    {
        // ONNX test_averagepool_2d_ceil_last_window_starts_on_pad: W=2, F=3, S=3, P=1+1: ceil gives 2, the second starts at 3 - 1 = 2 ≥ W.
        Assert.Equal(1, OutputSize.Compute("POOL", 'W', 2, 3, 3, 1, 1, 1, SizeRule.Ceil));
    }

    [Theory]
    [InlineData(3, 1, 3, "P < F")]
    [InlineData(3, 2, 5, "D·(F - 1) + 1 = 5")]
    public void ConvSpec_ThrowsForPaddingNotBelowEffectiveKernel(int f, int d, int p, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => new ConvSpec(f, f, 1, 1, p, p, name: "convP", dilationH: d, dilationW: d));
        Assert.Contains("convP", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 1, "dilation")]
    [InlineData(1, 0, "groups")]
    public void ConvSpec_ThrowsForBadDilationOrGroups(int dilation, int groups, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => new ConvSpec(3, 3, name: "convD", dilationH: dilation, groups: groups));
        Assert.Contains("convD", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PoolSpec_AllowsPaddingBelowTheWindow()
    {
        // ONNX test_maxpool_2d_pads: F=3, P=2 (over libtorch's F/2), 28 → 30.
        Assert.Equal((30, 30), PoolSpec.Square(PoolMode.Max, 3, 1, 2).OutputSize(28, 28));
    }

    [Fact]
    public void PoolSpec_ThrowsForDilatedWindowOnPaddingOnly()
    {
        // F=2, D=3, P=1 over 2 inputs: the window at −1 has taps −1 and 2, both outside [0, 2).
        var spec = new PoolSpec(PoolMode.Max, 2, 2, 1, 1, 1, 1, name: "poolD", dilationH: 3, dilationW: 3);
        var e = Assert.Throws<ArgumentException>(() => spec.OutputSize(2, 2));
        Assert.Contains("poolD", e.Message, StringComparison.Ordinal);
        Assert.Contains("only on padding", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PoolSpec_Global_IsOneWindowPerPlane()
    {
        var spec = PoolSpec.Global(PoolMode.Average, Shape.Nchw(2, 3, 5, 7));
        Assert.Equal((1, 1), spec.OutputSize(5, 7));
        Assert.Throws<ArgumentException>(() => PoolSpec.Global(PoolMode.Max, new Shape(2, 3)));
    }

    [Theory]
    [InlineData(6, 4, 1, 4, "groups = 4 must divide the input channels")]
    [InlineData(4, 6, 1, 4, "groups = 4 must divide the filters")]
    [InlineData(4, 6, 4, 2, "expect C/groups = 4, the input [2, 4, 5, 5] with groups = 2 gives C/groups = 2")]
    public void Conv2d_ThrowsForBadGroups(int c, int k, int weightChannels, int groups, string expected)
    {
        using var backend = new NaiveBackend();
        using var x = backend.Upload(new double[2 * c * 5 * 5], Shape.Nchw(2, c, 5, 5));
        using var w = backend.Upload(new double[k * weightChannels * 9], new Shape(k, weightChannels, 3, 3));
        var spec = new ConvSpec(3, 3, name: "gconv", groups: groups);
        var e = Assert.Throws<ArgumentException>(() => backend.Conv2d(x, w, null, spec));
        Assert.Contains("gconv", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
