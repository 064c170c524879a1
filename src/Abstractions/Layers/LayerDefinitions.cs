namespace Lockstep.Layers;

/// <summary>
/// A backend-independent description of one layer: enough to compute shapes and parameter counts,
/// and to build the layer on any backend from host-initialised weights.
/// Shapes: activations [N, C, H, W] before the first FC, [N, features] after it.
/// </summary>
public abstract record LayerDefinition
{
    /// <summary>CONV, POOL, FC, RELU.</summary>
    public abstract string Kind { get; }

    /// <summary>The output shape for <paramref name="input"/>; throws naming <paramref name="name"/> if the input does not fit.</summary>
    public abstract Shape OutputShape(Shape input, string name);

    /// <summary>(weights, biases) for <paramref name="input"/>.</summary>
    public virtual (long Weights, long Biases) ParameterCount(Shape input) => (0, 0);

    internal abstract Layer Build(IBackend backend, string name, Shape input, DType dtype, Random rng);

    protected static Shape RequireNchw(Shape input, string name, string kind)
    {
        if (input.Rank != 4)
        {
            throw new ArgumentException($"{name} ({kind}): expects an [N, C, H, W] volume, got {input} (a {kind} cannot follow an FC layer)");
        }
        return input;
    }

    /// <summary>He initialisation: normal(0, sqrt(2 / fanIn)), drawn on the host so every backend gets the same numbers.</summary>
    protected static double[] HeNormal(Random rng, long count, long fanIn)
    {
        var data = new double[count];
        double std = Math.Sqrt(2.0 / fanIn);
        for (long i = 0; i < count; i += 2)
        {
            // Box–Muller: two independent normals from two uniforms.
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            data[i] = std * r * Math.Cos(2 * Math.PI * u2);
            if (i + 1 < count) data[i + 1] = std * r * Math.Sin(2 * Math.PI * u2);
        }
        return data;
    }
}

/// <summary>CONV with K filters of the spec's size.</summary>
public sealed record ConvDefinition(int Filters, ConvSpec Spec) : LayerDefinition
{
    public override string Kind => "CONV";

    public override Shape OutputShape(Shape input, string name)
    {
        RequireNchw(input, name, Kind);
        if (Filters < 1) throw new ArgumentException($"{name} (CONV): the number of filters K must be at least 1, got {Filters}");
        if (input.C % Spec.Groups != 0 || Filters % Spec.Groups != 0)
        {
            throw new ArgumentException($"{name} (CONV): {Spec.Groups} groups must divide both the input's {input.C} channels and the {Filters} filters");
        }
        var (h, w) = (Spec with { Name = name }).OutputSize(input.H, input.W);
        return Shape.Nchw(input.N, Filters, h, w);
    }

    public override (long Weights, long Biases) ParameterCount(Shape input) =>
        ((long)Filters * (input.C / Spec.Groups) * Spec.KernelH * Spec.KernelW, Filters);

    internal override Layer Build(IBackend backend, string name, Shape input, DType dtype, Random rng)
    {
        var spec = Spec with { Name = name };
        var wShape = new Shape(Filters, input.C / spec.Groups, spec.KernelH, spec.KernelW);
        var w = backend.Upload(HeNormal(rng, wShape.Count, wShape.PerItem), wShape, dtype);
        var b = backend.Upload(new double[Filters], new Shape(Filters), dtype);
        return new Conv2d(backend, spec, w, b);
    }
}

/// <summary>POOL (max, average or L2).</summary>
public sealed record PoolDefinition(PoolSpec Spec) : LayerDefinition
{
    public override string Kind => "POOL";

    public override Shape OutputShape(Shape input, string name)
    {
        RequireNchw(input, name, Kind);
        var (h, w) = (Spec with { Name = name }).OutputSize(input.H, input.W);
        return Shape.Nchw(input.N, input.C, h, w);
    }

    internal override Layer Build(IBackend backend, string name, Shape input, DType dtype, Random rng) =>
        new Pool2d(backend, Spec with { Name = name });
}

/// <summary>FC with the given number of outputs; its input is flattened.</summary>
public sealed record FcDefinition(int Outputs) : LayerDefinition
{
    public override string Kind => "FC";

    public override Shape OutputShape(Shape input, string name)
    {
        if (Outputs < 1) throw new ArgumentException($"{name} (FC): the number of outputs must be at least 1, got {Outputs}");
        return new Shape(input[0], Outputs);
    }

    public override (long Weights, long Biases) ParameterCount(Shape input) => (Outputs * input.PerItem, Outputs);

    internal override Layer Build(IBackend backend, string name, Shape input, DType dtype, Random rng)
    {
        var wShape = new Shape(Outputs, checked((int)input.PerItem));
        var w = backend.Upload(HeNormal(rng, wShape.Count, input.PerItem), wShape, dtype);
        var b = backend.Upload(new double[Outputs], new Shape(Outputs), dtype);
        return new Linear(backend, name, w, b);
    }
}

/// <summary>RELU.</summary>
public sealed record ReluDefinition : LayerDefinition
{
    public override string Kind => "RELU";

    public override Shape OutputShape(Shape input, string name) => input;

    internal override Layer Build(IBackend backend, string name, Shape input, DType dtype, Random rng) => new Relu(backend, name);
}
