namespace Lockstep.Layers;

/// <summary>One row of the notes' table: a layer's output volume, its activations and its parameters.</summary>
/// <param name="Name">"input", "conv1", "relu1", ...</param>
/// <param name="Kind">INPUT, CONV, POOL, FC, RELU.</param>
/// <param name="Output">The output shape for the summary's batch.</param>
/// <param name="Activations">Output elements for the batch; 0 for RELU, which the notes count in place.</param>
public sealed record LayerSummary(string Name, string Kind, Shape Output, long Activations, long Weights, long Biases)
{
    public long Parameters => Weights + Biases;
}

/// <summary>
/// The notes' memory and parameter table (their VGGNet example) for any network: per layer the output volume,
/// activations and parameters; totals; and the memory a training step needs.
/// Activations are counted as the notes count them: the input and each CONV, POOL and FC output, RELU in place.
/// </summary>
public sealed class NetworkSummary
{
    private NetworkSummary(NetworkDefinition network, int batch, DType dtype, IReadOnlyList<LayerSummary> rows)
    {
        Network = network;
        Batch = batch;
        DType = dtype;
        Rows = rows;
    }

    public NetworkDefinition Network { get; }
    public int Batch { get; }
    public DType DType { get; }

    /// <summary>The input first, then every layer in order.</summary>
    public IReadOnlyList<LayerSummary> Rows { get; }

    public static NetworkSummary Of(NetworkDefinition network, int batch = 1, DType dtype = DType.Float32)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (batch < 1) throw new ArgumentException($"{network.Name}: the batch must be at least 1, got {batch}");
        if (!dtype.IsFloating()) throw new ArgumentException($"{network.Name}: dtype must be Float32 or Float64, got {dtype}");
        var rows = new List<LayerSummary> { new("input", "INPUT", network.InputShape(batch), network.InputShape(batch).Count, 0, 0) };
        var shapes = network.Shapes(batch);
        var input = network.InputShape(batch);
        for (int i = 0; i < network.Layers.Count; i++)
        {
            var layer = network.Layers[i];
            var (weights, biases) = layer.ParameterCount(input);
            rows.Add(new LayerSummary(network.LayerNames[i], layer.Kind, shapes[i], layer is ReluDefinition ? 0 : shapes[i].Count, weights, biases));
            input = shapes[i];
        }
        return new NetworkSummary(network, batch, dtype, rows);
    }

    /// <summary>Activations of one forward pass for the batch, the notes' count (input, CONV, POOL, FC; RELU in place).</summary>
    public long Activations => Rows.Sum(r => r.Activations);

    /// <summary>Activations as <see cref="Lockstep.Layers.Network"/> keeps them: RELU outputs stored apart from their inputs.</summary>
    public long StoredActivations => Rows.Sum(r => r.Kind == "RELU" ? r.Output.Count : r.Activations);

    public long Weights => Rows.Sum(r => r.Weights);
    public long Biases => Rows.Sum(r => r.Biases);
    public long Parameters => Weights + Biases;

    /// <summary>The row with the most parameters (VGG16: the first FC).</summary>
    public LayerSummary LargestLayer => Rows.MaxBy(r => r.Parameters)!;

    public int ElementSize => DType.SizeOf();

    /// <summary>Bytes of the forward activations.</summary>
    public long ForwardBytes => Activations * ElementSize;

    /// <summary>Bytes of the activations and their gradients (backward holds one gradient per activation).</summary>
    public long ActivationAndGradientBytes => 2 * ForwardBytes;

    /// <summary>Bytes of the parameters, their gradients and the SGD momentum buffers.</summary>
    public long ParameterTrainingBytes => 3 * Parameters * ElementSize;
}
