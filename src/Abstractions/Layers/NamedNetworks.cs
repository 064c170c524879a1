namespace Lockstep.Layers;

/// <summary>The networks the notes discuss, by name.</summary>
public static class NamedNetworks
{
    public static IReadOnlyList<string> Names { get; } = ["cifar", "lenet", "alexnet", "vgg16"];

    /// <summary>The definition named <paramref name="name"/>; an unknown name lists the known ones.</summary>
    public static NetworkDefinition Get(string name) => name.Trim().ToLowerInvariant() switch
    {
        "cifar" => Cifar(),
        "lenet" => LeNet(),
        "alexnet" => AlexNet(),
        "vgg16" => Vgg16(),
        _ => throw new ArgumentException($"unknown network '{name}'; known networks: {string.Join(", ", Names)}"),
    };

    private static ConvDefinition Conv(int f, int k, int s = 1, int? p = null) => new(k, ConvSpec.Square(f, s, p ?? (f - 1) / 2));
    private static PoolDefinition MaxPool(int f, int? s = null) => new(PoolSpec.Square(PoolMode.Max, f, s));
    private static FcDefinition Fc(int n) => new(n);
    private static ReluDefinition Relu() => new();

    /// <summary>The notes' INPUT [32×32×3] → CONV → RELU → POOL → FC-10 (5×5 convolution with 16 filters).</summary>
    public static NetworkDefinition Cifar() =>
        new("cifar", 3, 32, 32, [Conv(5, 16), Relu(), MaxPool(2), Fc(10)]);

    /// <summary>LeNet-5 for 28×28 digits: CONV5-6 → POOL2 → CONV5-16 (no padding) → POOL2 → FC-120 → FC-84 → FC-10.</summary>
    public static NetworkDefinition LeNet() =>
        new("lenet", 1, 28, 28,
            [Conv(5, 6), Relu(), MaxPool(2), Conv(5, 16, p: 0), Relu(), MaxPool(2), Fc(120), Relu(), Fc(84), Relu(), Fc(10)]);

    /// <summary>AlexNet as in the notes: 227×227×3, CONV11-96/S4 → 55×55×96, overlapping 3×3/2 pools.</summary>
    public static NetworkDefinition AlexNet() =>
        new("alexnet", 3, 227, 227,
            [Conv(11, 96, 4, 0), Relu(), MaxPool(3, 2),
             Conv(5, 256), Relu(), MaxPool(3, 2),
             Conv(3, 384), Relu(), Conv(3, 384), Relu(), Conv(3, 256), Relu(), MaxPool(3, 2),
             Fc(4096), Relu(), Fc(4096), Relu(), Fc(1000)]);

    /// <summary>VGG16 (configuration D): 13 CONV3 layers in five blocks, each closed by POOL2, then FC-4096, FC-4096, FC-1000.</summary>
    public static NetworkDefinition Vgg16()
    {
        var layers = new List<LayerDefinition>();
        foreach (var (k, n) in new[] { (64, 2), (128, 2), (256, 3), (512, 3), (512, 3) })
        {
            for (int i = 0; i < n; i++) layers.AddRange([Conv(3, k), Relu()]);
            layers.Add(MaxPool(2));
        }
        layers.AddRange([Fc(4096), Relu(), Fc(4096), Relu(), Fc(1000)]);
        return new NetworkDefinition("vgg16", 3, 224, 224, layers);
    }
}
