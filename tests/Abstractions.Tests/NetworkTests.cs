using Lockstep.Conformance;
using Lockstep.Conformance.Reference;
using Lockstep.Layers;

namespace Lockstep.Tests;

public class NetworkTests
{
    private static NetworkDefinition Tiny() => new("tiny", 2, 6, 6,
        [new ConvDefinition(4, ConvSpec.Square(3, 1, 1)), new ReluDefinition(), new PoolDefinition(PoolSpec.Square(PoolMode.Max, 2)), new FcDefinition(3)]);

    [Fact]
    public void TrainStep_LowersTheLossOnAFixedBatch()
    {
        using var backend = new NaiveBackend();
        using var net = Tiny().Build(backend, DType.Float64, seed: 1);
        using var x = backend.Upload<double>(HostData.Random(2, 8 * 72), net.Definition.InputShape(8));
        var labels = HostData.Labels(3, 8, 3);
        double first = net.TrainStep(x, labels, learningRate: 0.05);
        double last = first;
        for (int i = 0; i < 20; i++) last = net.TrainStep(x, labels, learningRate: 0.05);
        Assert.True(last < 0.5 * first, $"loss went from {first} to {last} in 20 steps on one batch");
        Assert.All(net.Parameters, p => Assert.NotNull(p.Grad));
    }

    [Fact]
    public void Build_SameSeed_GivesSameWeights_DifferentSeed_Different()
    {
        using var backend = new NaiveBackend();
        using var a = Tiny().Build(backend, DType.Float64, seed: 7);
        using var b = Tiny().Build(backend, DType.Float64, seed: 7);
        using var c = Tiny().Build(backend, DType.Float64, seed: 8);
        Assert.Equal(a.Parameters[0].Value.ToDoubles(), b.Parameters[0].Value.ToDoubles());
        Assert.NotEqual(a.Parameters[0].Value.ToDoubles(), c.Parameters[0].Value.ToDoubles());
        Assert.Equal(["conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias"], a.Parameters.Select(p => p.Name));
    }

    [Fact]
    public void CopyParametersFrom_CopiesValues()
    {
        using var backend = new NaiveBackend();
        using var a = Tiny().Build(backend, DType.Float32, seed: 7);
        using var b = Tiny().Build(backend, DType.Float32, seed: 9);
        b.CopyParametersFrom(a);
        for (int i = 0; i < a.Parameters.Count; i++) Assert.Equal(a.Parameters[i].Value.ToDoubles(), b.Parameters[i].Value.ToDoubles());
    }

    [Fact]
    public void Forward_ThrowsForWrongInputShape()
    {
        using var backend = new NaiveBackend();
        using var net = Tiny().Build(backend, DType.Float64, seed: 1);
        using var x = backend.Zeros(Shape.Nchw(2, 3, 6, 6), DType.Float64);
        var e = Assert.Throws<ArgumentException>(() => net.Forward(x));
        Assert.Contains("[2, 2, 6, 6]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 3, 6, 6]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Backward_ThrowsBeforeForward()
    {
        using var backend = new NaiveBackend();
        using var net = Tiny().Build(backend, DType.Float64, seed: 1);
        Assert.Throws<InvalidOperationException>(() => net.Backward());
    }
}
