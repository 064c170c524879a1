namespace Lockstep.Layers;

/// <summary>
/// The notes' layer pattern INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC, as data:
/// an input volume C×H×W and a list of layers. Layers are named by kind and position (conv1, relu1, pool1, fc1).
/// </summary>
public sealed class NetworkDefinition
{
    public NetworkDefinition(string name, int channels, int height, int width, IEnumerable<LayerDefinition> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (channels < 1 || height < 1 || width < 1)
        {
            throw new ArgumentException($"{name}: the input volume must be at least 1×1×1, got {width}×{height}×{channels} (W×H×D)");
        }
        Name = name;
        Input = Shape.Nchw(1, channels, height, width);
        Layers = layers.ToArray();
        if (Layers.Count == 0) throw new ArgumentException($"{name}: a network needs at least one layer");
        LayerNames = NameLayers(Layers);
        OutputShape(1);   // validates the geometry of every layer
    }

    public string Name { get; }

    /// <summary>The spec this definition was parsed from (<see cref="NetworkSpec"/>), or null when built in code.</summary>
    public string? Spec { get; init; }

    /// <summary>The input volume for one image, [1, C, H, W].</summary>
    public Shape Input { get; }

    public IReadOnlyList<LayerDefinition> Layers { get; }
    public IReadOnlyList<string> LayerNames { get; }

    /// <summary>
    /// Number of classes: the outputs of the last layer, or its channels K when the network ends in a volume
    /// [N, K, H', W'] (a fully convolutional network gives a grid of class scores).
    /// </summary>
    public int Classes => OutputShape(1) is { Rank: 4 } volume ? volume.C : checked((int)OutputShape(1).PerItem);

    /// <summary>True when no FC layer is left: the network then gives a volume, and may accept other input sizes.</summary>
    public bool IsFullyConvolutional => Layers.All(l => l is not FcDefinition);

    /// <summary>Input shape for a batch of <paramref name="batch"/> images.</summary>
    public Shape InputShape(int batch) => Shape.Nchw(batch, Input.C, Input.H, Input.W);

    /// <summary>The shape flowing out of every layer, in order, for a batch.</summary>
    public IReadOnlyList<Shape> Shapes(int batch)
    {
        var shapes = new List<Shape>(Layers.Count);
        var shape = InputShape(batch);
        for (int i = 0; i < Layers.Count; i++)
        {
            shape = Layers[i].OutputShape(shape, LayerNames[i]);
            shapes.Add(shape);
        }
        return shapes;
    }

    public Shape OutputShape(int batch) => Shapes(batch)[^1];

    /// <summary>Builds the network on <paramref name="backend"/> with parameters drawn on the host from <paramref name="seed"/>.</summary>
    public Network Build(IBackend backend, DType dtype, int seed, ILoss? loss = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (!dtype.IsFloating()) throw new ArgumentException($"{Name}: dtype must be Float32 or Float64, got {dtype}");
        var rng = new Random(seed);
        var layers = new List<Layer>(Layers.Count);
        var shape = InputShape(1);
        try
        {
            for (int i = 0; i < Layers.Count; i++)
            {
                layers.Add(Layers[i].Build(backend, LayerNames[i], shape, dtype, rng));
                shape = Layers[i].OutputShape(shape, LayerNames[i]);
            }
        }
        catch
        {
            foreach (var layer in layers) layer.Dispose();
            throw;
        }
        return new Network(this, backend, dtype, layers, loss ?? new SoftmaxCrossEntropy());
    }

    /// <summary>
    /// The notes' FC→CONV conversion: every FC layer becomes a CONV layer with the same numbers — the first with
    /// F = the size of its input volume (P = 0, S = 1), the later ones with F = 1 — on an input of
    /// <paramref name="height"/>×<paramref name="width"/> (default: this network's). On a larger input the result
    /// slides the original over it in one pass and gives a grid of class scores [N, classes, H', W'].
    /// </summary>
    public NetworkDefinition ConvertFcToConv(int? height = null, int? width = null)
    {
        var shapes = Shapes(1);
        var layers = new List<LayerDefinition>(Layers.Count);
        for (int i = 0; i < Layers.Count; i++)
        {
            var input = i == 0 ? Input : shapes[i - 1];
            layers.Add(Layers[i] is FcDefinition fc
                ? new ConvDefinition(fc.Outputs, input.Rank == 4 ? new ConvSpec(input.H, input.W) : ConvSpec.Square(1))
                : Layers[i]);
        }
        return new NetworkDefinition(Name + " (FC as CONV)", Input.C, height ?? Input.H, width ?? Input.W, layers);
    }

    private static string[] NameLayers(IReadOnlyList<LayerDefinition> layers)
    {
        var counts = new Dictionary<string, int>();
        var names = new string[layers.Count];
        for (int i = 0; i < layers.Count; i++)
        {
            string kind = layers[i].Kind;
            counts[kind] = counts.GetValueOrDefault(kind) + 1;
            names[i] = kind.ToLowerInvariant() + counts[kind];
        }
        return names;
    }
}
