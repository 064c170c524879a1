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
    public void Forward_ThrowsForWrongInputDType()
    {
        using var backend = new NaiveBackend();
        using var net = Tiny().Build(backend, DType.Float64, seed: 1);
        using var x = backend.Zeros(net.Definition.InputShape(2), DType.Float32);
        var e = Assert.Throws<ArgumentException>(() => net.Forward(x));
        Assert.Contains("tiny: input: expected Float64, got Float32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Backward_ThrowsBeforeForward()
    {
        using var backend = new NaiveBackend();
        using var net = Tiny().Build(backend, DType.Float64, seed: 1);
        Assert.Throws<InvalidOperationException>(() => net.Backward());
    }

    /// <summary>
    /// The network's step (destination ops into buffers kept across steps, activation gradients of one shape sharing a
    /// tensor) gives the same bits as the layers' allocating forms called one by one. The repeated CONV → RELU blocks
    /// give several activations of one shape, so shared gradient tensors are exercised.
    /// </summary>
    [Fact]
    public void Backward_MatchesTheLayersAllocatingForms()
    {
        using var backend = new NaiveBackend();
        var def = NetworkSpec.Parse("INPUT 6x6x2 -> [CONV3-4 -> RELU]*3 -> POOL2 -> FC-5 -> RELU -> FC-3", "shared");
        using var net = def.Build(backend, DType.Float64, seed: 3);
        using var x = backend.Upload<double>(HostData.Random(4, 3 * 72), def.InputShape(3));
        int[] labels = HostData.Labels(5, 3, 3);
        for (int step = 0; step < 2; step++)   // the second pass runs in the buffers the first one made
        {
            var scores = net.Forward(x).ToDoubles();
            net.ComputeLoss(labels);
            net.Backward();
            var grads = net.Parameters.Select(p => p.Grad!.ToDoubles()).ToList();

            var outputs = new List<ITensor>();
            var h = x;
            foreach (var layer in net.Layers) outputs.Add(h = layer.Forward(h));
            Assert.Equal(scores, h.ToDoubles());
            using var loss = backend.SoftmaxCrossEntropy(h, labels);
            var dy = loss.DScores;
            for (int i = net.Layers.Count - 1; i >= 0; i--)
            {
                var dx = net.Layers[i].Backward(dy, needDx: i > 0);
                if (!ReferenceEquals(dy, loss.DScores)) dy.Dispose();
                if (dx is null) break;
                dy = dx;
            }
            for (int p = 0; p < grads.Count; p++) Assert.Equal(grads[p], net.Parameters[p].Grad!.ToDoubles());
            foreach (var o in outputs) o.Dispose();
        }
    }

    [Fact]
    public void Forward_NewBatchShape_MatchesAFreshNetwork()
    {
        using var backend = new NaiveBackend();
        using var net = Tiny().Build(backend, DType.Float64, seed: 1);
        using var fresh = Tiny().Build(backend, DType.Float64, seed: 1);
        using var big = backend.Upload<double>(HostData.Random(6, 8 * 72), net.Definition.InputShape(8));
        using var small = backend.Upload<double>(HostData.Random(7, 3 * 72), net.Definition.InputShape(3));
        Assert.Equal(new Shape(8, 3), net.Forward(big).Shape);
        var scores = net.Forward(small);
        Assert.Equal(new Shape(3, 3), scores.Shape);
        Assert.Equal(fresh.Forward(small).ToDoubles(), scores.ToDoubles());
    }
}
