using Lockstep.Layers;

namespace Lockstep.Tests;

public class NetworkSpecTests
{
    [Fact]
    public void Parse_NotesExample_ExpandsRepetition()
    {
        var net = NetworkSpec.Parse("INPUT 32x32x3 -> [CONV3-16 -> RELU -> POOL2]*2 -> FC-10");
        Assert.Equal(Shape.Nchw(1, 3, 32, 32), net.Input);
        Assert.Equal(["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc1"], net.LayerNames);
        var shapes = net.Shapes(1);
        Assert.Equal(Shape.Nchw(1, 16, 32, 32), shapes[0]);   // default P = (3 − 1)/2 = 1 keeps the size
        Assert.Equal(Shape.Nchw(1, 16, 8, 8), shapes[5]);
        Assert.Equal(new Shape(1, 10), shapes[^1]);
    }

    [Fact]
    public void Parse_ReadsStridePaddingAndPoolModes()
    {
        var net = NetworkSpec.Parse("input 227x227x3 → conv11-96/s4/p0 -> avgpool3/S2 -> L2POOL3/S1 -> POOL3/S2/P1 -> fc-7");
        var conv = Assert.IsType<ConvDefinition>(net.Layers[0]);
        Assert.Equal((96, 11, 4, 0), (conv.Filters, conv.Spec.KernelH, conv.Spec.StrideH, conv.Spec.PadH));
        Assert.Equal(Shape.Nchw(1, 96, 55, 55), net.Shapes(1)[0]);   // the notes' AlexNet example
        var avg = Assert.IsType<PoolDefinition>(net.Layers[1]);
        Assert.Equal((PoolMode.Average, 3, 2), (avg.Spec.Mode, avg.Spec.KernelH, avg.Spec.StrideH));
        var l2 = Assert.IsType<PoolDefinition>(net.Layers[2]);
        Assert.Equal((PoolMode.L2, 3, 1), (l2.Spec.Mode, l2.Spec.KernelH, l2.Spec.StrideH));
        var max = Assert.IsType<PoolDefinition>(net.Layers[3]);
        Assert.Equal((PoolMode.Max, 3, 2, 1), (max.Spec.Mode, max.Spec.KernelH, max.Spec.StrideH, max.Spec.PadH));
        Assert.Equal(7, net.Classes);
    }

    [Fact]
    public void Parse_ReadsDilationAndGroups_PaddingKeepsTheSizeByDefault()
    {
        var net = NetworkSpec.Parse("INPUT 32x32x16 -> CONV3-32/D2/G4 -> RELU -> CONV5-8/g2/d3/p1/s1 -> FC-10");

        var grouped = Assert.IsType<ConvDefinition>(net.Layers[0]);
        Assert.Equal((32, 3, 1, 2, 2, 4), (grouped.Filters, grouped.Spec.KernelH, grouped.Spec.StrideH, grouped.Spec.PadH, grouped.Spec.DilationW, grouped.Spec.Groups));
        Assert.Equal(Shape.Nchw(1, 32, 32, 32), net.Shapes(1)[0]);   // padding D·(F − 1)/2 = 2 keeps 32×32
        Assert.Equal((32L / 4 * 16 * 3 * 3, 32L), grouped.ParameterCount(Shape.Nchw(1, 16, 32, 32)));
        var dilated = Assert.IsType<ConvDefinition>(net.Layers[2]);
        Assert.Equal((1, 3, 2), (dilated.Spec.PadH, dilated.Spec.DilationH, dilated.Spec.Groups));
        Assert.Equal(Shape.Nchw(1, 8, 22, 22), net.Shapes(1)[2]);    // 32 + 2·1 − 3·(5 − 1) − 1 + 1
        Assert.Equal("INPUT 32x32x16 -> CONV3-32/D2/G4 -> RELU -> CONV5-8/P1/D3/G2 -> FC-10", NetworkSpec.Format(net));
        Assert.Equal(NetworkSpec.Format(net), NetworkSpec.Format(NetworkSpec.Parse(NetworkSpec.Format(net))));
    }

    [Fact]
    public void Parse_NestedRepetition()
    {
        var net = NetworkSpec.Parse("INPUT 16x16x1 -> [[CONV3-2 -> RELU]*2 -> POOL2]*2 -> FC-3");
        Assert.Equal(11, net.Layers.Count);
        Assert.Equal(Shape.Nchw(1, 2, 4, 4), net.Shapes(1)[^2]);
    }

    [Theory]
    [InlineData("cifar")]
    [InlineData("lenet")]
    [InlineData("alexnet")]
    [InlineData("zfnet")]
    [InlineData("vgg16")]
    public void Format_RoundTrips(string name)
    {
        var net = NamedNetworks.Get(name);
        var again = NetworkSpec.Parse(NetworkSpec.Format(net));
        Assert.Equal(net.Layers, again.Layers);
        Assert.Equal(net.Input, again.Input);
    }

    [Fact]
    public void Get_AcceptsNameOrSpec()
    {
        Assert.Equal("lenet", NamedNetworks.Get(" LeNet ").Name);
        var spec = NamedNetworks.Get("INPUT 8x8x1 -> FC-2");
        Assert.Equal("INPUT 8x8x1 -> FC-2", spec.Spec);
        Assert.Equal(2, spec.Classes);
    }

    // Each bad spec, the 1-based column the error must point at, and a fragment of its reason.
    [Theory]
    [InlineData("", 1, "starts with INPUT")]
    [InlineData("CONV3-16 -> FC-10", 1, "starts with INPUT")]
    [InlineData("INPUT 32x32 -> FC-10", 12, "'x' between the input's height and depth")]
    [InlineData("INPUT 32x32x3", 14, "no layers")]
    [InlineData("INPUT 32x32x3 -> ", 18, "expected a layer")]
    [InlineData("INPUT 32x32x3 -> CONV3 -> FC-10", 23, "'-' and the number of filters K")]
    [InlineData("INPUT 32x32x3 -> CONV3-0 -> FC-10", 24, "must be at least 1")]
    [InlineData("INPUT 32x32x3 -> CONV3-16/X2 -> FC-10", 27, "/S<stride>, /P<padding>, /D<dilation> or /G<groups>")]
    [InlineData("INPUT 32x32x3 -> POOL2/D2 -> FC-10", 24, "/S<stride> or /P<padding> after '/'")]
    [InlineData("INPUT 32x32x4 -> CONV3-16/D2/G2/D3 -> FC-10", 33, "dilation is given twice")]
    [InlineData("INPUT 32x32x4 -> CONV3-16/G2/G2 -> FC-10", 30, "number of groups is given twice")]
    [InlineData("INPUT 32x32x4 -> CONV3-16/D0 -> FC-10", 28, "the dilation after /D, e.g. /D2 must be at least 1, got 0")]
    [InlineData("INPUT 32x32x4 -> CONV3-16/G0 -> FC-10", 28, "the number of groups after /G, e.g. /G2 must be at least 1, got 0")]
    [InlineData("INPUT 32x32x3 -> CONV3-16/S2/S2 -> FC-10", 30, "stride is given twice")]
    [InlineData("INPUT 32x32x3 -> CONV3-16/P3 -> FC-10", 18, "padding must be smaller than the kernel")]
    [InlineData("INPUT 32x32x3 -> CONV3-16 FC-10", 27, "expected '->' between layers")]
    [InlineData("INPUT 32x32x3 -> SOFTMAX", 18, "unknown layer 'SOFTMAX'")]
    [InlineData("INPUT 32x32x3 -> FC10", 20, "'-' and the number of outputs")]
    [InlineData("INPUT 32x32x3 -> [CONV3-16 -> RELU -> FC-10", 18, "never closed")]
    [InlineData("INPUT 32x32x3 -> [CONV3-16 -> RELU] -> FC-10", 37, "'*N' after ']'")]
    [InlineData("INPUT 32x32x3 -> [CONV3-16]*0 -> FC-10", 29, "repetitions N must be at least 1")]
    [InlineData("INPUT 32x32x3 -> CONV3-99999999999 -> FC-10", 24, "too large")]
    public void Parse_ThrowsForMalformedSpec_AtTheColumn(string spec, int column, string fragment)
    {
        var e = Assert.Throws<SpecException>(() => NetworkSpec.Parse(spec));
        Assert.True(e.Column == column, $"'{spec}': expected column {column}, got {e.Column}: {e.Message}");
        Assert.Contains(fragment, e.Reason, StringComparison.Ordinal);
    }

    [Theory]
    // (10 − 3 + 0)/2 + 1 = 4.5: the notes' invalid example, at the CONV token.
    [InlineData("INPUT 10x10x3 -> CONV3-4/S2/P0 -> FC-10", 18, "conv1: (H - F + 2P)/S + 1 = (10 - 3 + 0)/2 + 1 = 4.5 is not an integer")]
    // The second expansion of the group fails: the error names pool2 and points at the POOL token inside the brackets.
    [InlineData("INPUT 6x6x1 -> [CONV3-2 -> POOL2]*2 -> FC-2", 28, "pool2: (H - F + 2P)/S + 1 = (3 - 2 + 0)/2 + 1 = 1.5")]
    [InlineData("INPUT 4x4x1 -> CONV5-2/P0 -> FC-2", 16, "does not fit")]
    [InlineData("INPUT 8x8x1 -> FC-4 -> CONV1-2", 24, "cannot follow an FC layer")]
    [InlineData("INPUT 8x8x6 -> CONV3-16/G4 -> FC-2", 16, "conv1 (CONV): 4 groups must divide both the input's 6 channels and the 16 filters")]
    public void Parse_ThrowsForGeometry_AtTheLayer_WithTheArithmetic(string spec, int column, string fragment)
    {
        var e = Assert.Throws<SpecException>(() => NetworkSpec.Parse(spec));
        Assert.True(e.Column == column, $"'{spec}': expected column {column}, got {e.Column}: {e.Message}");
        Assert.Contains(fragment, e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void SpecException_ShowsTheSpecWithACaretUnderTheColumn()
    {
        var e = Assert.Throws<SpecException>(() => NetworkSpec.Parse("INPUT 10x10x3 -> CONV3-4/S2/P0 -> FC-10"));
        string[] lines = e.Message.Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("spec, column 18: ", lines[0], StringComparison.Ordinal);
        Assert.Equal("  INPUT 10x10x3 -> CONV3-4/S2/P0 -> FC-10", lines[1]);
        Assert.Equal(lines[1].IndexOf("CONV", StringComparison.Ordinal), lines[2].IndexOf('^', StringComparison.Ordinal));
    }

    [Fact]
    public void ConvertFcToConv_FirstFcTakesTheInputSize_LaterOnesAreOneByOne()
    {
        var net = NetworkSpec.Parse("INPUT 224x224x3 -> [CONV2-4/S2 -> RELU -> POOL2]*2 -> CONV2-8/S2 -> RELU -> FC-16 -> RELU -> FC-10");
        var converted = net.ConvertFcToConv(384, 384);
        Assert.True(converted.IsFullyConvolutional);
        var fc1 = Assert.IsType<ConvDefinition>(converted.Layers[^3]);
        Assert.Equal((16, 7, 7, 1, 0), (fc1.Filters, fc1.Spec.KernelH, fc1.Spec.KernelW, fc1.Spec.StrideH, fc1.Spec.PadH));
        var fc2 = Assert.IsType<ConvDefinition>(converted.Layers[^1]);
        Assert.Equal((10, 1), (fc2.Filters, fc2.Spec.KernelH));
        var shapes = converted.Shapes(1);
        Assert.Equal(Shape.Nchw(1, 8, 12, 12), shapes[^4]);    // the notes: 7×7 → 12×12 volume
        Assert.Equal(Shape.Nchw(1, 10, 6, 6), shapes[^1]);     // 6×6 class scores
        Assert.Equal(10, converted.Classes);
        Assert.Equal(Parameters(net), Parameters(converted));
    }

    private static long Parameters(NetworkDefinition net)
    {
        var shapes = net.Shapes(1);
        long total = 0;
        for (int i = 0; i < net.Layers.Count; i++)
        {
            var (w, b) = net.Layers[i].ParameterCount(i == 0 ? net.Input : shapes[i - 1]);
            total += w + b;
        }
        return total;
    }
}
