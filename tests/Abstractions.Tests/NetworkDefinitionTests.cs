using Lockstep.Layers;

namespace Lockstep.Tests;

public class NetworkDefinitionTests
{
    [Fact]
    public void Vgg16_HasTheNotesParameterCount()
    {
        var vgg = NamedNetworks.Vgg16();
        var shapes = vgg.Shapes(1);
        long weights = 0, biases = 0, activations = 0;
        var input = vgg.InputShape(1);
        for (int i = 0; i < vgg.Layers.Count; i++)
        {
            var (w, b) = vgg.Layers[i].ParameterCount(input);
            weights += w;
            biases += b;
            if (vgg.Layers[i].Kind != "RELU") activations += shapes[i].Count;   // the notes count each volume once
            input = shapes[i];
        }
        Assert.Equal(138_357_544, weights + biases);
        Assert.Equal(new Shape(1, 1000), shapes[^1]);
        // Notes: ~24M activations per image, counting the input volume too.
        long total = activations + vgg.InputShape(1).Count;
        Assert.InRange(total, 15_000_000, 25_000_000);
    }

    [Theory]
    [InlineData("cifar", 10)]
    [InlineData("lenet", 10)]
    [InlineData("alexnet", 1000)]
    [InlineData("zfnet", 1000)]
    [InlineData("vgg16", 1000)]
    public void NamedNetworks_HaveValidGeometry(string name, int classes)
    {
        Assert.Equal(classes, NamedNetworks.Get(name).Classes);
    }

    [Fact]
    public void NamedNetworks_ThrowsForUnknownName_ListingKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => NamedNetworks.Get("resnet"));
        Assert.Contains("cifar", e.Message, StringComparison.Ordinal);
        Assert.Contains("vgg16", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NetworkDefinition_NamesLayersByKind()
    {
        var net = NamedNetworks.LeNet();
        Assert.Equal(["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc1", "relu3", "fc2", "relu4", "fc3"], net.LayerNames);
    }

    [Fact]
    public void NetworkDefinition_ThrowsForInvalidGeometry_NamingTheLayer()
    {
        var e = Assert.Throws<ArgumentException>(() => new NetworkDefinition("bad", 3, 10, 10,
            [new ConvDefinition(4, ConvSpec.Square(3, 1, 1)), new PoolDefinition(PoolSpec.Square(PoolMode.Max, 3, 2))]));
        Assert.Contains("pool1", e.Message, StringComparison.Ordinal);
        Assert.Contains("4.5", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NetworkDefinition_ThrowsForConvAfterFc()
    {
        var e = Assert.Throws<ArgumentException>(() => new NetworkDefinition("bad", 3, 8, 8,
            [new FcDefinition(10), new ConvDefinition(4, ConvSpec.Square(1))]));
        Assert.Contains("conv1", e.Message, StringComparison.Ordinal);
    }
}
