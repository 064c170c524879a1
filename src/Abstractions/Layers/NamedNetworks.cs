namespace Lockstep.Layers;

/// <summary>The networks the notes discuss, by name, each written in the spec grammar (<see cref="NetworkSpec"/>).</summary>
public static class NamedNetworks
{
    /// <summary>The notes' INPUT [32×32×3] → CONV → RELU → POOL → FC-10 (5×5 convolution with 16 filters).</summary>
    public const string CifarSpec = "INPUT 32x32x3 -> CONV5-16 -> RELU -> POOL2 -> FC-10";

    /// <summary>LeNet-5 for 28×28 digits: CONV5-6 → POOL2 → CONV5-16 (no padding) → POOL2 → FC-120 → FC-84 → FC-10.</summary>
    public const string LeNetSpec =
        "INPUT 28x28x1 -> CONV5-6 -> RELU -> POOL2 -> CONV5-16/P0 -> RELU -> POOL2 -> FC-120 -> RELU -> FC-84 -> RELU -> FC-10";

    /// <summary>AlexNet as in the notes: 227×227×3, CONV11-96/S4 → 55×55×96, overlapping 3×3/2 pools.</summary>
    public const string AlexNetSpec =
        "INPUT 227x227x3 -> CONV11-96/S4/P0 -> RELU -> POOL3/S2 -> CONV5-256 -> RELU -> POOL3/S2 -> " +
        "[CONV3-384 -> RELU]*2 -> CONV3-256 -> RELU -> POOL3/S2 -> [FC-4096 -> RELU]*2 -> FC-1000";

    /// <summary>
    /// ZFNet (Zeiler &amp; Fergus, 2013). The paper's 224×224 input with a 7×7/2 conv1 gives (224 − 7)/2 + 1 = 109.5,
    /// and its 3×3/2 pools round up. Under the exact rule, as AlexNet's 227 fixes its 224, the input is 225×225 and
    /// conv1 and conv2 pad by 1: 111×111×96 → 55×55×96 → 27×27×256 → 13×13×256 (the paper: 110, 55, 26, 13);
    /// from pool2 on the volumes are the paper's: 13×13×384, 13×13×384, 13×13×256 → 6×6×256 → FC-4096 ×2 → FC-1000.
    /// </summary>
    public const string ZfNetSpec =
        "INPUT 225x225x3 -> CONV7-96/S2/P1 -> RELU -> POOL3/S2 -> CONV5-256/S2/P1 -> RELU -> POOL3/S2 -> " +
        "[CONV3-384 -> RELU]*2 -> CONV3-256 -> RELU -> POOL3/S2 -> [FC-4096 -> RELU]*2 -> FC-1000";

    /// <summary>VGG16 (configuration D): 13 CONV3 layers in five blocks, each closed by POOL2, then FC-4096, FC-4096, FC-1000.</summary>
    public const string Vgg16Spec =
        "INPUT 224x224x3 -> [CONV3-64 -> RELU]*2 -> POOL2 -> [CONV3-128 -> RELU]*2 -> POOL2 -> " +
        "[CONV3-256 -> RELU]*3 -> POOL2 -> [[CONV3-512 -> RELU]*3 -> POOL2]*2 -> [FC-4096 -> RELU]*2 -> FC-1000";

    private static readonly (string Name, string Spec)[] All =
    [
        ("cifar", CifarSpec), ("lenet", LeNetSpec), ("alexnet", AlexNetSpec), ("zfnet", ZfNetSpec), ("vgg16", Vgg16Spec),
    ];

    public static IReadOnlyList<string> Names { get; } = All.Select(n => n.Name).ToArray();

    /// <summary>
    /// The definition named <paramref name="nameOrSpec"/>, or parsed from it when it is a spec ("INPUT 32x32x3 -> ...").
    /// An unknown name lists the known ones; a bad spec points at the column (<see cref="SpecException"/>).
    /// </summary>
    public static NetworkDefinition Get(string nameOrSpec)
    {
        ArgumentNullException.ThrowIfNull(nameOrSpec);
        if (NetworkSpec.IsSpec(nameOrSpec)) return NetworkSpec.Parse(nameOrSpec.Trim());
        string key = nameOrSpec.Trim().ToLowerInvariant();
        foreach (var (name, spec) in All)
        {
            if (name == key) return NetworkSpec.Parse(spec, name);
        }
        throw new ArgumentException(
            $"unknown network '{nameOrSpec}'; known networks: {string.Join(", ", Names)}, or a spec such as '{CifarSpec}'");
    }

    public static NetworkDefinition Cifar() => Get("cifar");
    public static NetworkDefinition LeNet() => Get("lenet");
    public static NetworkDefinition AlexNet() => Get("alexnet");
    public static NetworkDefinition ZfNet() => Get("zfnet");
    public static NetworkDefinition Vgg16() => Get("vgg16");
}
