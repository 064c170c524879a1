namespace Lockstep.Layers;

/// <summary>A learnable tensor of a layer, its latest gradient and its SGD velocity, all on the layer's backend.</summary>
public sealed class Parameter : IDisposable
{
    internal Parameter(string name, ITensor value)
    {
        Name = name;
        Value = value;
    }

    /// <summary>e.g. "conv1.weight", "fc2.bias" (PyTorch's naming).</summary>
    public string Name { get; }
    public ITensor Value { get; private set; }

    /// <summary>The gradient from the latest backward pass; null before the first.</summary>
    public ITensor? Grad { get; private set; }

    /// <summary>The momentum buffer; created by the first SGD step.</summary>
    public ITensor? Velocity { get; private set; }

    public Shape Shape => Value.Shape;

    internal void SetGrad(ITensor grad)
    {
        if (grad.Shape != Value.Shape)
        {
            throw new InvalidOperationException($"{Name}: gradient {grad.Shape} does not match the parameter {Value.Shape}");
        }
        Grad?.Dispose();
        Grad = grad;
    }

    /// <summary>The gradient tensor a destination backward writes into: <see cref="Grad"/>, made on first use and kept.</summary>
    internal ITensor GradDestination() => Grad ??= Value.Backend.Zeros(Value.Shape, Value.DType);

    /// <summary>Replaces the value with host data (same shape), e.g. to start two backends from the same weights.</summary>
    public void Load(ReadOnlySpan<double> data)
    {
        var value = Value.Backend.Upload(data, Value.Shape, Value.DType);
        Value.Dispose();
        Value = value;
    }

    /// <summary>v = momentum·v − lr·(g + weightDecay·p); p = p + v.</summary>
    public void Step(double learningRate, double momentum, double weightDecay)
    {
        if (Grad is null) throw new InvalidOperationException($"{Name}: no gradient yet; run a backward pass before the SGD step");
        Velocity ??= Value.Backend.Zeros(Value.Shape, Value.DType);
        Value.Backend.SgdStep(Value, Grad, Velocity, learningRate, momentum, weightDecay);
    }

    public void Dispose()
    {
        Value.Dispose();
        Grad?.Dispose();
        Velocity?.Dispose();
    }
}
