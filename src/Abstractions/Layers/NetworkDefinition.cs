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

    /// <summary>The input volume for one image, [1, C, H, W].</summary>
    public Shape Input { get; }

    public IReadOnlyList<LayerDefinition> Layers { get; }
    public IReadOnlyList<string> LayerNames { get; }

    /// <summary>Number of classes (outputs of the last layer).</summary>
    public int Classes => checked((int)OutputShape(1).PerItem);

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
